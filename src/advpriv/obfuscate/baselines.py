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


class _NoiseWrapper(nn.Module):
    """An encoder whose noise a subclass's `add_noise` replaces: its features are `add_noise(clean(x))`."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def clean(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped encoder's features before any noise."""
        return getattr(self.encoder, "clean", self.encoder)(x)

    def add_noise(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add_noise(self.clean(x))


class NoisyEncoder(_NoiseWrapper):
    """`encoder` followed by additive N(0, std²) noise, in training and in eval mode alike (it is the defence)."""

    def __init__(self, encoder: nn.Module, std: float) -> None:
        super().__init__(encoder)
        self.std = std

    def add_noise(self, z: torch.Tensor) -> torch.Tensor:
        """z plus the wrapped encoder's own noise, if any, plus fresh N(0, std²) noise."""
        return getattr(self.encoder, "add_noise", lambda v: v)(z) + self.std * torch.randn_like(z)


class Averaged(_NoiseWrapper):
    """The averaging attack: the mean of `k` noisy copies of each image's features, as an attacker who receives
    the same face `k` times gets (its noise std falls by √k). A deterministic encoder is unchanged.

    >>> from advpriv.obfuscate.networks import Encoder, SplitPoint, Widths
    >>> E = Encoder(Widths(0.125), SplitPoint(4, 8, (1, 1), noise=1.0)).eval()
    >>> z = torch.zeros(4000, 8, 1, 1)
    >>> 0.23 < float(Averaged(E, 16).add_noise(z).std()) < 0.27   # 1/√16
    True
    """

    def __init__(self, encoder: nn.Module, k: int) -> None:
        super().__init__(encoder)
        self.k = k

    def add_noise(self, z: torch.Tensor) -> torch.Tensor:
        noisy = getattr(self.encoder, "add_noise", None)
        return z if noisy is None else sum(noisy(z) for _ in range(self.k)) / self.k


@torch.no_grad()
def task_accuracies(encoder: nn.Module, head: nn.Module, data: AttributeData, idx: torch.Tensor,
                    labels: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """Accuracy of sigmoid(head(encoder(x))) > 0.5 against 0/1 `labels` (N,) or (N,k) over the images `idx`:
    one number per task (a tensor of 1 or k)."""
    encoder.eval(), head.eval()
    correct = 0
    for b in idx.split(batch_size):
        hits = (head(encoder(data.batch(b))) > 0) == (labels[b] > 0.5)
        correct = correct + hits.reshape(len(b), -1).sum(0)
    return correct / len(idx)


def accuracy(encoder: nn.Module, head: nn.Module, data: AttributeData, idx: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 128) -> float:
    """`task_accuracies` averaged over the tasks."""
    return float(task_accuracies(encoder, head, data, idx, labels, batch_size).mean())


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
