"""The wire format of obfuscated features sent from a device to the cloud: `.npy` or safetensors bytes.

A body holds one float32 or float16 array (N,C,h,w). Safetensors bodies carry it under the key "features".
Decoding never unpickles, allocates nothing beyond the body's own size (a `.npy` header must agree with the bytes
that follow it), and checks shape and dtype against what the cloud model expects.

Example:
    >>> import numpy as np
    >>> z = np.zeros((2, 16, 16, 13), np.float16)
    >>> decode_features(encode_features(z, "safetensors"), expected=(16, 16, 13)).shape
    (2, 16, 16, 13)
"""

from __future__ import annotations

import io
import math

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

FORMATS = {"npy": "application/x-npy", "safetensors": "application/octet-stream"}
KEY = "features"
DTYPES = (np.float32, np.float16)
NPY_MAGIC = b"\x93NUMPY"


class FeatureError(ValueError):
    """A features body that cannot be used; `shape_mismatch` tells a wrong shape or dtype from an unreadable body."""

    def __init__(self, message: str, shape_mismatch: bool = False) -> None:
        super().__init__(message)
        self.shape_mismatch = shape_mismatch


def encode_features(features: np.ndarray, fmt: str = "npy") -> bytes:
    """Bytes of `features` as `.npy` or as a safetensors file with one tensor named "features"."""
    features = np.ascontiguousarray(features)
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, features, allow_pickle=False)
        return buf.getvalue()
    if fmt == "safetensors":
        return save_safetensors({KEY: features})
    raise ValueError(f"unknown features format {fmt!r}; choose one of {', '.join(FORMATS)}.")


def decode_features(body: bytes, expected: tuple[int, ...], max_batch: int = 256) -> np.ndarray:
    """The float32 array (N, *expected) in `body`; FeatureError says what is wrong and what was expected."""
    array = _read(body)
    if array.dtype not in DTYPES:
        raise FeatureError(f"features have dtype {array.dtype}; send float32 or float16.", shape_mismatch=True)
    if array.ndim == len(expected):
        array = array[None]
    if tuple(array.shape[1:]) != tuple(expected) or array.shape[0] < 1:
        raise FeatureError(f"features have shape {tuple(array.shape)}; this model expects (N, "
                           f"{', '.join(map(str, expected))}): run the encoder exported from the same training run.",
                           shape_mismatch=True)
    if array.shape[0] > max_batch:
        raise FeatureError(f"{array.shape[0]} images in one request; send at most {max_batch} at a time.",
                           shape_mismatch=True)
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise FeatureError("features contain NaN or infinity; check the encoder's input.", shape_mismatch=True)
    return array


def _read(body: bytes) -> np.ndarray:
    if body.startswith(NPY_MAGIC):
        return _read_npy(body)
    try:
        tensors = load_safetensors(body)
    except (SafetensorError, ValueError, OSError) as e:
        raise FeatureError(f"the body is neither .npy nor safetensors ({e}); encode features with "
                           "advpriv.feature_wire.encode_features.") from None
    if KEY not in tensors and len(tensors) != 1:
        raise FeatureError(f"the safetensors body holds {sorted(tensors)}; put the features under the key {KEY!r}.")
    return tensors.get(KEY, next(iter(tensors.values())))


def _read_npy(body: bytes) -> np.ndarray:
    """The array of a `.npy` body, read in place: its header's dtype and shape are checked against the bytes that
    follow before anything is allocated (a crafted header may announce terabytes)."""
    stream = io.BytesIO(body)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        version = np.lib.format.read_magic(stream)
    except (ValueError, OSError, EOFError) as e:
        raise FeatureError(f"the .npy body could not be read ({e}); send an array saved with numpy.save.") from None
    if version not in readers:
        raise FeatureError(f"the .npy body has format version {version[0]}.{version[1]}; only 1.0 and 2.0 are read "
                           "here: send an array saved with numpy.save.")
    try:
        shape, fortran_order, dtype = readers[version](stream)
    except (ValueError, OSError, EOFError, SyntaxError):  # numpy's message may show the header's parse tree
        raise FeatureError("the .npy header could not be read: it must be a dict literal of descr, fortran_order and "
                           "shape, as numpy.save writes; send an array saved with numpy.save.") from None
    if any(side < 0 for side in shape):
        raise FeatureError(f"the .npy header announces shape {shape}, with a negative dimension; send an array saved "
                           "with numpy.save.")
    if dtype not in DTYPES:
        raise FeatureError(f"features have dtype {dtype}; send float32 or float16.", shape_mismatch=True)
    data = memoryview(body)[stream.tell():]
    announced = math.prod(shape) * dtype.itemsize
    if announced != len(data):
        raise FeatureError(f"the .npy header announces shape {shape} ({announced:,} bytes) but {len(data):,} bytes "
                           "follow it; send an array saved with numpy.save.")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C")
