"""DeepObfuscator training: utility pretraining, adversary pretraining, then the five-step adversarial rotation.

Stages, each checkpointed after every epoch so an interrupted run resumes where it stopped:
  1. utility:     E and C minimise L_C = BCE(C(E(x)), utility label).
  2. decoder:     R minimises L_R = 1 − MS-SSIM(R(E(x)), x) on the frozen E.
  3. attribute:   P, initialised from C, minimises L_P = BCE(P(E(x)), private label) on the frozen E.
  4. adversarial: minibatch i runs step i mod 5:
       0: E minimises L_C + λ·(1 − MS-SSIM(R(E(x)), N)), N a fixed noise image;
       1: E minimises L_C − λ·L_R;   2: E minimises L_C − λ·L_P (or, with private_loss="entropy",
          L_C + λ·BCE(P(E(x)), ½));
       3: R minimises L_R and P minimises L_P;   4: C minimises L_C.
     With refresh_every=k, every k-th adversarial epoch starts with one epoch of stage 2 and one of stage 3
     (P restarted from C) on the frozen E, at the pretraining learning rate.
With vib = β > 0, every loss that trains E also gets β·KL(N(z, σ²) ‖ N(0, 1)) of its clean bottleneck features z.

Under `torchrun --nproc-per-node N` every party that a step updates runs in DistributedDataParallel, each process
takes its share of every (global) minibatch, and rank 0 alone writes the run folder (see `distributed`).

Example:
    >>> data = load_attributes("../shared/data/celeba-attr", image_size=(64, 52))        # doctest: +SKIP
    >>> train(data, TrainConfig(width=0.25, fc=256, epochs=4, lam_hold=2), "runs/small")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from advpriv.obfuscate.checkpoint import (
    CHECKPOINT, CONFIG, NOPEEK, OBFUSCATOR, UTILITY_ONLY, build_parties, load_checkpoint, save_checkpoint,
    save_weights,
)
from advpriv.obfuscate.config import TrainConfig
from advpriv.obfuscate.data import AttributeData, DataError
from advpriv.obfuscate.distributed import Distributed
from advpriv.obfuscate.networks import Encoder
from advpriv.quality import ms_ssim

STAGES = ("utility", "decoder", "attribute", "adversarial")
StepHook = Callable[[str, int, int, int, dict[str, float]], None]
"""Called after every minibatch with (stage, epoch, batch number from 1, batches in the epoch, losses)."""


class ConfigMismatch(ValueError):
    """A run folder already holds a checkpoint made with a different configuration."""


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L_R = mean over the batch of 1 − MS-SSIM."""
    return (1 - ms_ssim(x_hat, x)).mean()


def noise_image(seed: int, size: tuple[int, int]) -> torch.Tensor:
    """The fixed uniform random image N (3,H,W) that step 0 pulls reconstructions toward."""
    return torch.rand(3, *size, generator=torch.Generator().manual_seed(seed + 7919))


class _EncodeStep(nn.Module):
    """E's forward in an update of E: the features it sends, and the β-weighted rate term (0 without vib)."""

    def __init__(self, encoder: Encoder, vib: float) -> None:
        super().__init__()
        self.encoder, self.vib = encoder, vib

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.vib:
            return self.encoder(x), x.new_zeros(())
        clean = self.encoder.clean(x)
        return self.encoder.add_noise(clean), self.vib * self.encoder.bottleneck.rate(clean)


class Parties:
    """The four networks, their Adam optimisers, and the per-batch updates of every stage.

    `nets` are the plain networks (what checkpoints hold); `updated` the forms a step calls for the parties it
    updates, in DistributedDataParallel when there are several processes. The other parties are called plain, so
    each DDP module's backward reaches every one of its parameters and only the updated parties' gradients travel.
    """

    def __init__(self, cfg: TrainConfig, ctx: Distributed = Distributed()) -> None:
        # channels-last: 14–17 % less time per epoch on one CPU thread (bench/results/obfuscator_speed.md)
        self.nets = {k: m.to(ctx.device, memory_format=torch.channels_last) for k, m in build_parties(cfg).items()}
        self.updated = {"E": ctx.wrap(_EncodeStep(self.nets["E"], cfg.vib)),
                        **{k: ctx.wrap(self.nets[k]) for k in "CRP"}}
        self.opts = {k: torch.optim.Adam(m.parameters(), lr=cfg.lr) for k, m in self.nets.items()}
        self.noise = noise_image(cfg.seed, cfg.image_size).to(ctx.device)
        self.private_loss, self.vib = cfg.private_loss, cfg.vib

    def __getattr__(self, name: str) -> nn.Module:
        return self.__dict__["nets"][name]

    def _update(self, loss: torch.Tensor, *names: str) -> None:
        for opt in self.opts.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for n in names:
            self.opts[n].step()

    def _modes(self, *training: str) -> None:
        for k, m in self.nets.items():
            m.train(k in training)

    def set_lr(self, lr: float) -> None:
        """Every optimiser's learning rate (each stage trains at its own)."""
        for opt in self.opts.values():
            for group in opt.param_groups:
                group["lr"] = lr

    def restart_P(self) -> None:
        """P starts again from the current C (but for C's last layer when C has several tasks), with a fresh
        optimiser, as in its pretraining."""
        own = self.P.state_dict()
        self.P.load_state_dict({k: v for k, v in self.C.state_dict().items() if v.shape == own[k].shape}, strict=False)
        self.opts["P"] = torch.optim.Adam(self.P.parameters(), lr=self.opts["P"].param_groups[0]["lr"])

    def _frozen_features(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.E(x)

    def utility(self, x, yu, yp, i, lam) -> dict[str, float]:
        self._modes("E", "C")
        z, rate = self.updated["E"](x)
        loss = F.binary_cross_entropy_with_logits(self.updated["C"](z), yu)
        self._update(loss + rate, "E", "C")
        return {"L_C": loss.item(), **({"rate": rate.item()} if self.vib else {})}

    def decoder(self, x, yu, yp, i, lam) -> dict[str, float]:
        self._modes("R")
        loss = reconstruction_loss(self.updated["R"](self._frozen_features(x)), x)
        self._update(loss, "R")
        return {"L_R": loss.item()}

    def attribute(self, x, yu, yp, i, lam) -> dict[str, float]:
        self._modes("P")
        loss = F.binary_cross_entropy_with_logits(self.updated["P"](self._frozen_features(x)), yp)
        self._update(loss, "P")
        return {"L_P": loss.item()}

    def adversarial(self, x, yu, yp, i, lam) -> dict[str, float]:
        step = i % 5
        if step == 3:
            self._modes("R", "P")
            z = self._frozen_features(x)
            R, P = self.updated["R"], self.updated["P"]
            l_r, l_p = reconstruction_loss(R(z), x), F.binary_cross_entropy_with_logits(P(z), yp)
            self._update(l_r + l_p, "R", "P")
            return {"L_R": l_r.item(), "L_P": l_p.item()}
        if step == 4:
            self._modes("C")
            l_c = F.binary_cross_entropy_with_logits(self.updated["C"](self._frozen_features(x)), yu)
            self._update(l_c, "C")
            return {"L_C": l_c.item()}
        self._modes("E")
        z, rate = self.updated["E"](x)
        l_c = F.binary_cross_entropy_with_logits(self.C(z), yu)
        if step == 0:
            term = reconstruction_loss(self.R(z), self.noise.expand_as(x))
            loss, key = l_c + lam * term, "L_noise"
        elif step == 1:
            term = reconstruction_loss(self.R(z), x)
            loss, key = l_c - lam * term, "L_R"
        elif self.private_loss == "entropy":
            term = F.binary_cross_entropy_with_logits(self.P(z), torch.full_like(yp, 0.5))
            loss, key = l_c + lam * term, "L_P_unsure"
        else:
            term = F.binary_cross_entropy_with_logits(self.P(z), yp)
            loss, key = l_c - lam * term, "L_P"
        self._update(loss + rate, "E")
        return {"L_C": l_c.item(), key: term.item()}


def resolve_config(cfg: TrainConfig, data: AttributeData) -> TrainConfig:
    """Check the attribute names against the data and fix image_size to the data's size."""
    if cfg.private.lower() in [u.strip().lower() for u in cfg.utility.split(",")]:
        raise DataError(f"{cfg.private!r} is both a utility and the private attribute; choose different ones.")
    data.labels_of(cfg.utility), data.labels_of(cfg.private)
    if min(data.image_size) < 32:
        raise DataError(f"the images are {data.image_size[0]}×{data.image_size[1]}; the networks need at least "
                        "32×32, so resize them (--image-size).")
    if cfg.image_size is not None and tuple(cfg.image_size) != data.image_size:
        raise DataError(f"the images are {data.image_size}, the config asks for {cfg.image_size}; "
                        "load them at that size.")
    return replace(cfg, image_size=data.image_size)


def train(data: AttributeData, cfg: TrainConfig, out_dir: str | Path, on_step: StepHook | None = None,
          restart: bool = False, ctx: Distributed | None = None) -> Path:
    """Train all stages (resuming from `out_dir/checkpoint.pt` if present) and return the run folder.

    ctx: this process's place in a distributed run; by default read from torchrun's environment (one process
    when there is none). Every process calls `train` alike; rank 0 alone writes and calls `on_step`.
    """
    ctx = ctx or Distributed.from_env()
    with ctx.joined():
        return _train(data, resolve_config(cfg, data), Path(out_dir), on_step if ctx.is_main else None, restart, ctx)


def _train(data: AttributeData, cfg: TrainConfig, out: Path, on_step: StepHook | None, restart: bool,
           ctx: Distributed) -> Path:
    ctx.per_process_batch(cfg.batch_size)
    if restart and out.exists() and ctx.is_main:
        for name in (CHECKPOINT, CONFIG, UTILITY_ONLY, OBFUSCATOR, NOPEEK):
            (out / name).unlink(missing_ok=True)
    ctx.barrier()
    torch.manual_seed(cfg.seed)
    parties = Parties(cfg, ctx)
    start = (0, 0)
    if (out / CHECKPOINT).is_file():
        saved = TrainConfig.load(out / CONFIG) if (out / CONFIG).is_file() else None
        if saved != cfg:
            raise ConfigMismatch(
                f"{out} holds a checkpoint of a different configuration; use another --out folder, the same "
                "options as before to resume, or --restart to start over."
            )
        start = load_checkpoint(out / CHECKPOINT, parties.nets, parties.opts)
    ctx.barrier()
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / CONFIG)

    train_idx = cfg.splits(data)["train"]
    y_u, y_p = data.labels_of(cfg.utility), data.labels_of(cfg.private)
    epochs = dict(zip(STAGES, (cfg.pretrain_epochs, cfg.attacker_epochs, cfg.attacker_epochs, cfg.epochs)))

    def run_epoch(stage: str, epoch: int, lam: float) -> None:
        step = getattr(parties, stage)
        parties.set_lr(cfg.lr_of(stage))
        order = train_idx[torch.randperm(len(train_idx))]
        ctx.seed_own_draws()
        batches = ctx.shard(order, cfg.batch_size)
        for i, idx in enumerate(batches):
            x = data.batch(idx).to(ctx.device, memory_format=torch.channels_last)
            losses = step(x, y_u[idx].to(ctx.device), y_p[idx].to(ctx.device), i, lam)
            if on_step:
                on_step(stage, epoch, i + 1, len(batches), losses)

    for s, stage in enumerate(STAGES):
        if stage == "attribute" and (s, 0) >= start:
            parties.restart_P()
        for epoch in range(epochs[stage]):
            if (s, epoch) < start:
                continue
            torch.manual_seed(cfg.seed * 1_000_003 + s * 1009 + epoch)
            if stage == "adversarial" and cfg.refreshes_at(epoch):
                parties.restart_P()
                run_epoch("decoder", epoch, 0.0)
                run_epoch("attribute", epoch, 0.0)
            run_epoch(stage, epoch, cfg.lam_at(epoch))
            ctx.check_in_sync(parties.nets)
            if ctx.is_main:
                save_checkpoint(out / CHECKPOINT, parties.nets, parties.opts, (s, epoch + 1))
        if stage == "utility" and start[0] < 3 and ctx.is_main:  # E is unchanged until the adversarial stage
            save_weights(out / UTILITY_ONLY, {"E": parties.E, "C": parties.C})
    if ctx.is_main:
        save_weights(out / OBFUSCATOR, parties.nets)
    ctx.barrier()
    return out
