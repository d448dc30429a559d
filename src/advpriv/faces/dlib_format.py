"""Read a serialised dlib DNN (`dlib::serialize(net)`) in pure Python, following dlib's own source.

dlib writes a network from the loss layer inwards: each `add_layer` writes its version, then its
sub-network, then its layer details and cached state. Tags and skips write only a version and their
sub-network. The layer details therefore appear in input-to-output order, after all the versions.
Which wrapper sits where is not in the file, so the caller passes the network's wrapper chain.

Primitive encodings (dlib/serialize.h, dlib/cuda/tensor.h, dlib/float_details.h):
  integer: one control byte (size in the low 4 bits, 0x80 = negative), then `size` little-endian bytes;
  bool: ASCII '0' / '1'; string: integer length, then the bytes;
  float/double: integer mantissa and integer exponent, value = mantissa * 2**exponent;
  tensor: version 2, four integer dims (n, k, nr, nc), then little-endian float32 data;
  alias_tensor: version 1 and four integer dims, no data (a view into a layer's `params`).

Example:
    >>> from advpriv.faces.dlib_resnet import WRAPPERS
    >>> from advpriv.faces.model_files import dlib_model_path
    >>> net = read_dlib_net(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat"), WRAPPERS)
    >>> net.layers[0].kind, net.layers[0].tensors["weight"].shape
    ('con', (32, 3, 7, 7))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

_FLOAT_INF = 32000  # float_details exponents at and above this code inf, -inf and nan


class DlibFormatError(ValueError):
    """The bytes do not follow dlib's serialisation of the expected network."""


@dataclass
class DlibLayer:
    """One layer's details: `kind` (con, affine, relu, max_pool, avg_pool, add_prev, fc), scalars, arrays."""

    kind: str
    attrs: dict[str, float | int | bool] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class DlibNet:
    """The input layer's settings, the computational layers in input-to-output order, and the loss."""

    input: DlibLayer
    layers: list[DlibLayer]
    loss: DlibLayer


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"unexpected end of file at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8:
            raise DlibFormatError(f"bad integer control byte {control:#x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def bool(self) -> bool:
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {ch!r} at byte {self.pos - 1}")
        return ch == b"1"

    def float(self) -> float:
        if self.data[self.pos] & 0x70:
            raise DlibFormatError(f"old ASCII float encoding at byte {self.pos} is not supported")
        mantissa, exponent = self.int(), self.int()
        if exponent >= _FLOAT_INF:
            return {0: math.inf, 1: -math.inf}.get(exponent - _FLOAT_INF, math.nan)
        return math.ldexp(mantissa, exponent)

    def string(self) -> str:
        return self._take(self.int()).decode("latin-1")

    def version(self, allowed: Sequence[int], what: str) -> int:
        version = self.int()
        if version not in allowed:
            raise DlibFormatError(f"{what}: version {version}, expected one of {list(allowed)}")
        return version

    def tensor(self) -> np.ndarray:
        self.version([2], "tensor")
        shape = tuple(self.int() for _ in range(4))
        count = math.prod(shape)
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, ...]:
        self.version([1], "alias_tensor")
        return tuple(self.int() for _ in range(4))


def _split(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Cut a layer's flat `params` into its alias views, in order."""
    flat, out, offset = params.reshape(-1), [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(flat[offset : offset + size].reshape(shape))
        offset += size
    if offset != flat.size:
        raise DlibFormatError(f"params hold {flat.size} values, the views use {offset}")
    return out


def _con(r: _Reader, version: str) -> DlibLayer:
    params, num_filters = r.tensor(), r.int()
    nr, nc, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(6))
    filters, biases = r.alias(), r.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float()
    use_bias = r.bool() if version in ("con_5", "con_6") else True
    use_relu = r.bool() if version == "con_6" else False
    if use_relu:
        raise DlibFormatError("con_ with a fused ReLU is not supported")
    shapes = [filters, (num_filters,)] if use_bias and math.prod(biases) else [filters]
    weight, *bias = _split(params, *shapes)
    tensors = {"weight": weight} | ({"bias": bias[0]} if bias else {})
    attrs = {"filters": num_filters, "size": (nr, nc), "stride": (stride_y, stride_x), "padding": (pad_y, pad_x)}
    return DlibLayer("con", attrs, tensors)


def _affine(r: _Reader, version: str) -> DlibLayer:
    params, gamma, beta = r.tensor(), r.alias(), r.alias()
    mode = r.int()
    if version == "affine_2" and r.bool():
        raise DlibFormatError("a disabled affine_ layer is not supported")
    g, b = _split(params, gamma, beta)
    return DlibLayer("affine", {"mode": mode}, {"gamma": g.reshape(-1), "beta": b.reshape(-1)})


def _batch_norm(r: _Reader, version: str) -> DlibLayer:
    """A trained bn_ layer, folded into an affine one exactly as dlib's affine_(const bn_&) does."""
    params, gamma, beta = r.tensor(), r.alias(), r.alias()
    _means, _invstds, running_means, running_vars = (r.tensor() for _ in range(4))
    r.int(), r.int()  # num_updates, running_stats_window_size
    for _ in range(4):
        r.float()
    eps = r.float()
    g, b = (v.reshape(-1) for v in _split(params, gamma, beta))
    scale = g / np.sqrt(running_vars.reshape(-1) + eps)
    shift = b - scale * running_means.reshape(-1)
    mode = 0 if version == "bn_con2" else 1  # dlib layer_mode: CONV_MODE = 0, FC_MODE = 1
    return DlibLayer("affine", {"mode": mode}, {"gamma": scale.astype(np.float32), "beta": shift.astype(np.float32)})


def _relu(r: _Reader, version: str) -> DlibLayer:
    if version == "relu_2" and r.bool():
        raise DlibFormatError("a disabled relu_ layer is not supported")
    return DlibLayer("relu")


def _pool(r: _Reader, version: str) -> DlibLayer:
    nr, nc, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(6))
    kind = version.removesuffix("_2")
    return DlibLayer(kind, {"size": (nr, nc), "stride": (stride_y, stride_x), "padding": (pad_y, pad_x)})


def _add_prev(r: _Reader, version: str) -> DlibLayer:
    return DlibLayer("add_prev")


def _fc(r: _Reader, version: str) -> DlibLayer:
    num_outputs, num_inputs = r.int(), r.int()
    params, weights, biases = r.tensor(), r.alias(), r.alias()
    bias_mode = r.int()
    for _ in range(4):
        r.float()
    use_bias = r.bool() if version == "fc_3" else True
    shapes = [weights, (num_outputs,)] if use_bias and math.prod(biases) else [weights]
    weight, *bias = _split(params, *shapes)
    # dlib computes x @ W with W of shape (inputs, outputs); torch's Linear stores W transposed
    tensors = {"weight": np.ascontiguousarray(weight.reshape(num_inputs, num_outputs).T)}
    tensors |= {"bias": bias[0]} if bias else {}
    return DlibLayer("fc", {"outputs": num_outputs, "inputs": num_inputs, "bias_mode": bias_mode}, tensors)


def _input_rgb_image_sized(r: _Reader, version: str) -> DlibLayer:
    mean = [r.float() for _ in range(3)]
    nr, nc = r.int(), r.int()
    return DlibLayer("input", {"mean": tuple(mean), "size": (nr, nc)})


def _loss_metric(r: _Reader, version: str) -> DlibLayer:
    margin, threshold = (r.float(), r.float()) if version == "loss_metric_2" else (0.1, 0.75)
    return DlibLayer("loss_metric", {"margin": margin, "distance_threshold": threshold})


_DETAILS = {
    "con_4": _con, "con_5": _con, "con_6": _con,
    "affine_": _affine, "affine_2": _affine, "bn_con2": _batch_norm, "bn_fc2": _batch_norm,
    "relu_": _relu, "relu_2": _relu,
    "max_pool_2": _pool, "avg_pool_2": _pool,
    "add_prev_": _add_prev,
    "fc_2": _fc, "fc_3": _fc,
    "input_rgb_image_sized": _input_rgb_image_sized,
    "loss_metric_": _loss_metric, "loss_metric_2": _loss_metric,
}  # fmt: skip


def _details(r: _Reader) -> DlibLayer:
    version = r.string()
    if version not in _DETAILS:
        raise DlibFormatError(f"unsupported dlib layer {version!r} at byte {r.pos}")
    return _DETAILS[version](r, version)


def read_dlib_net(path: str | Path, wrappers: Sequence[str]) -> DlibNet:
    """Read a dlib network file whose layers wrap each other as `wrappers` says.

    `wrappers` lists the network from the layer next to the input to the layer under the loss, each
    "layer" (dlib `add_layer`), "tag" (`add_tag_layer`) or "skip" (`add_skip_layer`); the first must be
    a "layer" sitting directly on the input.
    """
    if not wrappers or wrappers[0] != "layer":
        raise ValueError("the first wrapper must be the layer on the input")
    r = _Reader(Path(path).read_bytes())
    r.version([1], "add_loss_layer")
    loss = _details(r)
    versions = [r.version([1, 2] if kind == "layer" else [1], kind) for kind in reversed(wrappers[1:])]
    first_version = r.version([2, 3], "input add_layer")
    input_layer = _details(r)
    layers = [_details(r)]
    r.bool(), r.bool(), r.bool(), r.tensor(), r.tensor(), r.tensor()  # cached state and gradients
    if first_version == 3:
        r.int()  # sample expansion factor
    for kind, version in zip(wrappers[1:], reversed(versions)):
        if kind != "layer":
            continue
        layers.append(_details(r))
        r.bool(), r.bool(), r.bool(), r.tensor(), r.tensor()
        if version == 2:
            r.tensor()
    if r.pos != len(r.data):
        raise DlibFormatError(f"{len(r.data) - r.pos} bytes left after the network; is this the right file?")
    return DlibNet(input_layer, layers, loss)
