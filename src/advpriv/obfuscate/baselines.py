"""Baseline encoders: Gaussian noise added to the utility-only features, at a noise level matched on utility.

Example:
    >>> E = torch.nn.Conv2d(3, 4, 3)
    >>> NoisyEncoder(E, std=0.5).eval()(torch.rand(1, 3, 8, 8)).shape
    torch.Size([1, 4, 6, 6])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from advpriv.obfuscate.data import AttributeData


class NoisyEncoder(nn.Module):
    """`encoder` followed by additive N(0, std²) noise, in training and in eval mode alike (it is the defence)."""

    def __init__(self, encoder: nn.Module, std: float) -> None:
        super().__init__()
        self.encoder, self.std = encoder, std

    def clean(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped encoder's features before any noise."""
        return getattr(self.encoder, "clean", self.encoder)(x)

    def add_noise(self, z: torch.Tensor) -> torch.Tensor:
        """z plus the wrapped encoder's own noise, if any, plus fresh N(0, std²) noise."""
        return getattr(self.encoder, "add_noise", lambda v: v)(z) + self.std * torch.randn_like(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add_noise(self.clean(x))


@torch.no_grad()
def accuracy(encoder: nn.Module, head: nn.Module, data: AttributeData, idx: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 128) -> float:
    """Accuracy of sigmoid(head(encoder(x))) > 0.5 against 0/1 `labels` over the images `idx`."""
    encoder.eval(), head.eval()
    correct = 0
    for b in idx.split(batch_size):
        correct += int(((head(encoder(data.batch(b))) > 0) == (labels[b] > 0.5)).sum())
    return correct / len(idx)


@torch.no_grad()
def feature_rms(encoder: nn.Module, data: AttributeData, idx: torch.Tensor, batch_size: int = 128) -> float:
    """Root-mean-square value of the encoder's features over the images `idx`."""
    encoder.eval()
    total, count = 0.0, 0
    for b in idx.split(batch_size):
        z = encoder(data.batch(b))
        total, count = total + float(z.pow(2).sum()), count + z.numel()
    return math.sqrt(total / count)


def calibrate_noise(encoder: nn.Module, cloud: nn.Module, data: AttributeData, idx: torch.Tensor,
                    labels: torch.Tensor, target: float, steps: int = 10, seed: int = 0) -> float:
    """The noise std at which the cloud classifier's accuracy on `idx` falls to `target` (bisection in log σ).

    σ is searched between 0.01 and 100 times the features' RMS; the accuracy is assumed to fall with σ.
    """
    rms = feature_rms(encoder, data, idx)
    lo, hi = math.log(0.01 * rms), math.log(100 * rms)

    def acc(log_std: float) -> float:
        torch.manual_seed(seed)
        return accuracy(NoisyEncoder(encoder, math.exp(log_std)), cloud, data, idx, labels)

    if acc(lo) <= target:
        return math.exp(lo)
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if acc(mid) > target else (lo, mid)
    return math.exp(hi)
