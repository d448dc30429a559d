"""Face embedders: a model from face chips to descriptors, with its own distance and match threshold.

An embedder takes dlib-aligned chips (N,3,150,150) in [0,1] (dlib's `get_face_chip`, padding 0.25),
resizes them to its `input_size` and returns descriptors; two faces match when `distance` < `threshold`.

Example:
    >>> import torch
    >>> dlib = dlib_embedder()
    >>> d = dlib(torch.rand(2, 3, 150, 150))
    >>> dlib.distance(d[:1], d[1:]).shape, dlib.threshold
    (torch.Size([1]), 0.6)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from advpriv.faces.align import resize_chip
from advpriv.faces.dlib_resnet import CHIP_SIZE, MATCH_THRESHOLD, dlib_resnet

METRICS = ("l2", "cosine")


class FaceEmbedder(nn.Module):
    """Wrap `model` (chips in [0,1] at `input_size` → (N,D)) with its metric ("l2" or "cosine") and threshold."""

    def __init__(
        self, model: nn.Module, threshold: float, metric: str = "l2", input_size: int = CHIP_SIZE, name: str = "face"
    ) -> None:
        super().__init__()
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.threshold, self.metric, self.input_size, self.name = threshold, metric, input_size, name

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.model(resize_chip(chips, self.input_size))

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Row-wise distance between descriptors (N,D) and (N,D) or (1,D): L2, or 1 − cosine similarity."""
        if self.metric == "l2":
            return (a - b).square().sum(1).add(1e-12).sqrt()
        return 1 - F.cosine_similarity(a, b, dim=1)

    def train(self, mode: bool = True) -> "FaceEmbedder":
        """Embedders stay in eval mode during attacks."""
        return super().train(False)


@lru_cache(maxsize=4)
def _dlib_embedder(device: str) -> FaceEmbedder:
    return FaceEmbedder(dlib_resnet(device), MATCH_THRESHOLD, "l2", CHIP_SIZE, name="dlib")


def dlib_embedder(device: torch.device | str = "cpu") -> FaceEmbedder:
    """dlib's ResNet (the model behind `face_recognition`): L2 distance, match below 0.6. Loaded once per device."""
    return _dlib_embedder(str(torch.device(device)))


def torchscript_embedder(
    path: str | Path, threshold: float, metric: str = "cosine", input_size: int = 112, name: str | None = None
) -> FaceEmbedder:
    """A user's TorchScript face embedder taking [0,1] RGB chips of `input_size` (dlib alignment)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no TorchScript face embedder at {path}")
    model = torch.jit.load(str(path), map_location="cpu")
    return FaceEmbedder(model, threshold, metric, input_size, name=name or path.stem)
