"""The wire format of obfuscated features sent from a device to the cloud: `.npy` or safetensors bytes.

A body holds one float32 or float16 array (N,C,h,w). Safetensors bodies carry it under the key "features".
Decoding never unpickles and checks shape and dtype against what the cloud model expects.

Example:
    >>> import numpy as np
    >>> z = np.zeros((2, 16, 16, 13), np.float16)
    >>> decode_features(encode_features(z, "safetensors"), expected=(16, 16, 13)).shape
    (2, 16, 16, 13)
"""

from __future__ import annotations

import io

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
        try:
            return np.load(io.BytesIO(body), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise FeatureError(f"the .npy body could not be read ({e}); send an array saved with numpy.save.") from None
    try:
        tensors = load_safetensors(body)
    except (SafetensorError, ValueError, OSError) as e:
        raise FeatureError(f"the body is neither .npy nor safetensors ({e}); encode features with "
                           "advpriv.feature_wire.encode_features.") from None
    if KEY not in tensors and len(tensors) != 1:
        raise FeatureError(f"the safetensors body holds {sorted(tensors)}; put the features under the key {KEY!r}.")
    return tensors.get(KEY, next(iter(tensors.values())))
