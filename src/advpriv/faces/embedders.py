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
    """A user's TorchScript face embedder taking [0,1] RGB chips of `input_size` (dlib alignment), checked once.

    Raises FileNotFoundError when there is no file, ValueError when it is not TorchScript or does not map a batch
    of chips to one descriptor each.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no TorchScript face embedder at {path}; give the path of your model file")
    try:
        model = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"{path} is not a TorchScript file ({_first_line(error)}); save your model with "
            "torch.jit.script(model).save(path) or torch.jit.trace"
        ) from None
    embedder = FaceEmbedder(model, threshold, metric, input_size, name=name or path.stem)
    _check_output(embedder, path)
    return embedder


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _check_output(embedder: FaceEmbedder, path: Path) -> None:
    """Run the embedder once on two grey chips: it must return (2,D) descriptors."""
    size = embedder.input_size
    try:
        with torch.no_grad():
            out = embedder(torch.full((2, 3, CHIP_SIZE, CHIP_SIZE), 0.5))
    except Exception as error:  # noqa: BLE001 - any failure of the user's model is reported with its file
        raise ValueError(
            f"{path} failed on a batch of (2,3,{size},{size}) RGB chips in [0,1] ({_first_line(error)}); "
            "check the input size it expects"
        ) from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{path} returned {shape} for 2 chips; a face embedder must return one descriptor per chip, (N,D)")
