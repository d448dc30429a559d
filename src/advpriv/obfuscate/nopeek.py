"""NoPeek baseline (Vepakomma et al., 2020): train E and C on the utility task while minimising the distance
correlation between the images and the transmitted features, with no adversary at all.

Example:
    >>> x, z = torch.rand(8, 3, 4, 4), torch.rand(8, 5)
    >>> 0 <= float(distance_correlation(x, z)) <= 1
    True
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from advpriv.obfuscate.checkpoint import NOPEEK, build_parties, save_weights
from advpriv.obfuscate.config import TrainConfig
from advpriv.obfuscate.data import AttributeData
from advpriv.obfuscate.train import resolve_config


def _centred_distances(x: torch.Tensor) -> torch.Tensor:
    d = torch.cdist(x, x)
    return d - d.mean(0, keepdim=True) - d.mean(1, keepdim=True) + d.mean()


def distance_correlation(x: torch.Tensor, z: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Sample distance correlation (Székely et al. 2007) between two batches, each flattened per sample; in [0,1]."""
    a, b = _centred_distances(x.flatten(1)), _centred_distances(z.flatten(1))
    dcov2 = (a * b).mean()
    return (dcov2.clamp_min(0) / ((a * a).mean() * (b * b).mean()).sqrt().clamp_min(eps)).sqrt()


def train_nopeek(data: AttributeData, cfg: TrainConfig, out_dir: str | Path, alpha: float = 1.0,
                 on_step: Callable[[int, int, int, dict[str, float]], None] | None = None) -> Path:
    """Train a fresh E and C for `cfg.pretrain_epochs` on L_C + alpha·dCor(x, E(x)); write RUN/nopeek.safetensors."""
    cfg = resolve_config(cfg, data)
    torch.manual_seed(cfg.seed + 1)
    nets = build_parties(cfg)
    E, C = nets["E"].train(), nets["C"].train()
    opt = torch.optim.Adam([*E.parameters(), *C.parameters()], lr=cfg.lr_of("utility"))
    train_idx, y = cfg.splits(data)["train"], data.labels_of(cfg.utility)
    for epoch in range(cfg.pretrain_epochs):
        batches = train_idx[torch.randperm(len(train_idx))].split(cfg.batch_size)
        for i, idx in enumerate(batches):
            x = data.batch(idx)
            z = E(x)
            l_c, dcor = F.binary_cross_entropy_with_logits(C(z), y[idx]), distance_correlation(x, z)
            opt.zero_grad(set_to_none=True)
            (l_c + alpha * dcor).backward()
            opt.step()
            if on_step:
                on_step(epoch, i + 1, len(batches), {"L_C": l_c.item(), "dCor": dcor.item()})
    path = Path(out_dir) / NOPEEK
    save_weights(path, {"E": E, "C": C})
    return path
