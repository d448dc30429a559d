"""Saving and loading a run: a resumable training checkpoint, and the final weights as safetensors.

A run folder holds `config.json`, `checkpoint.pt` (all networks, optimisers and the position reached; loaded with
`weights_only=True`), `utility_only.safetensors` (E, C after utility pretraining) and `obfuscator.safetensors`
(E, C, R, P after adversarial training), and `nopeek.safetensors` (E, C of the optional NoPeek baseline).

Example:
    >>> run = load_run("runs/celeba")                       # doctest: +SKIP
    >>> run.encoder("obfuscator")(torch.rand(1, 3, 109, 89)).shape   # doctest: +SKIP
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from advpriv.images import atomic_write
from advpriv.obfuscate.config import ConfigError, TrainConfig
from advpriv.obfuscate.networks import Classifier, Decoder, Encoder

CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
UTILITY_ONLY = "utility_only.safetensors"
OBFUSCATOR = "obfuscator.safetensors"
NOPEEK = "nopeek.safetensors"
ENCODERS = {"utility_only": UTILITY_ONLY, "obfuscator": OBFUSCATOR, "nopeek": NOPEEK}
MAX_PARAMETERS = 2_000_000_000
"""Most parameters E, C, R and P of a loaded run may have together (8 GB as float32; the paper's run has 0.2 G)."""


class RunError(ValueError):
    """A run folder is missing or incomplete; the message says which command to run first."""


def build_parties(cfg: TrainConfig) -> dict[str, torch.nn.Module]:
    """Fresh E, C, R, P for a config whose image_size is set."""
    w, size, cut = cfg.widths, cfg.image_size, cfg.split_point
    return {"E": Encoder(w, cut), "C": Classifier(w, size, split=cut, outputs=cfg.utility_count),
            "R": Decoder(w, size, split=cut),
            "P": Classifier(w, size, split=cut)}


def save_weights(path: Path, modules: dict[str, torch.nn.Module]) -> None:
    """All state tensors of `modules` in one safetensors file, keys prefixed by the module name."""
    tensors = {f"{k}.{n}": t.detach().contiguous().clone()
               for k, m in modules.items() for n, t in m.state_dict().items()}
    atomic_write(path, save(tensors))


def load_weights(path: Path, modules: dict[str, torch.nn.Module]) -> None:
    """Load a file written by `save_weights` into the modules of the same names; a RunError names a file that is
    not safetensors or does not fit the modules (missing keys, wrong shapes)."""
    try:
        tensors = load_file(path)
        for k, m in modules.items():
            m.load_state_dict({n[len(k) + 1:]: t for n, t in tensors.items() if n.startswith(k + ".")})
    except (SafetensorError, RuntimeError, OSError) as e:
        reason = str(e).strip().splitlines()[0][:300]
        raise RunError(f"{path} does not hold this run's weights ({reason}); restore it or train the run "
                       "again.") from None


def save_checkpoint(path: Path, modules: dict[str, torch.nn.Module], optims: dict[str, torch.optim.Optimizer],
                    position: tuple[int, int]) -> None:
    """Everything needed to resume: networks, optimisers, and (stage, next epoch)."""
    buf = io.BytesIO()
    torch.save({"position": list(position),
                "models": {k: m.state_dict() for k, m in modules.items()},
                "optims": {k: o.state_dict() for k, o in optims.items()}}, buf)
    atomic_write(path, buf.getvalue())


def load_checkpoint(path: Path, modules: dict[str, torch.nn.Module],
                    optims: dict[str, torch.optim.Optimizer]) -> tuple[int, int]:
    """Restore networks and optimisers in place; returns the (stage, next epoch) to continue from."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for k, m in modules.items():
        m.load_state_dict(state["models"][k])
    for k, o in optims.items():
        o.load_state_dict(state["optims"][k])
    return tuple(state["position"])


@dataclass
class Run:
    """A finished run: its config and, per encoder name, the frozen encoder with its cloud classifier."""

    config: TrainConfig
    folder: Path

    def parties(self, name: str) -> dict[str, torch.nn.Module]:
        """E and C of encoder `name` ("utility_only", "obfuscator" or "nopeek"), in eval mode."""
        path = self.folder / ENCODERS[name]
        if not path.is_file():
            raise RunError(f"{path} is missing; finish training first "
                           f"(advpriv obfuscator train ... --out {self.folder}).")
        parts = build_parties(self.config)
        modules = {"E": parts["E"], "C": parts["C"]}
        load_weights(path, modules)
        return {k: m.eval() for k, m in modules.items()}

    def encoder(self, name: str = "obfuscator") -> Encoder:
        return self.parties(name)["E"]

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of the features the encoders send."""
        return self.config.split_point.feature_shape(self.config.widths, self.config.image_size)


def load_run(folder: str | Path) -> Run:
    """Open a run folder written by `advpriv obfuscator train`."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file():
        raise RunError(f"{folder} is not a training run (no {CONFIG}); run advpriv obfuscator train first.")
    try:
        config = TrainConfig.load(folder / CONFIG)
    except ConfigError as e:
        raise RunError(str(e)) from None
    if config.image_size is None:
        raise RunError(f"{folder / CONFIG} has no image_size; restore the file or train the run again.")
    with torch.device("meta"):
        parameters = sum(p.numel() for m in build_parties(config).values() for p in m.parameters())
    if parameters > MAX_PARAMETERS:
        raise RunError(f"{folder / CONFIG} describes networks of {parameters:,} parameters, more than "
                       f"{MAX_PARAMETERS:,}; restore the file or train the run again.")
    return Run(config, folder)
