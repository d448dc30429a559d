"""Small deterministic models for fast tests: importable as `toy_models:tiny_classifier` target factories."""

from __future__ import annotations

import time

import torch
from torch import nn


def tiny_classifier() -> tuple[nn.Module, object]:
    """A fixed random conv net with 5 classes and its own preprocessing (resize to 8×8, scale to [-1,1])."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(512, 5))
    with torch.no_grad():
        net[-1].weight.mul_(30)  # logits as steep as a trained net's, so MND's default λ suits it

    def preprocess(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False) * 2 - 1

    return net, preprocess


def slow_classifier() -> tuple[nn.Module, object]:
    """`tiny_classifier`, 0.1 s slower per call: its protection runs long enough to watch its progress."""
    net, preprocess = tiny_classifier()

    def slow(x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.1)
        return preprocess(x)

    return net, slow
