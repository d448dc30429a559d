"""Find faces with dlib (HOG detector + 5-point landmarks) and describe where each face chip comes from.

This is what `face_recognition` does before it describes a face: `detector(image, 1)`, the 5-point
shape predictor, then `get_face_chip_details(shape, 150, 0.25)`. Detection runs once on the clean photo;
the chip warps it yields are then applied, differentiably, to any candidate image.

Example:
    >>> import numpy as np
    >>> detect_faces(np.zeros((64, 64, 3), np.uint8))
    []
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from advpriv.faces.align import ChipWarp, chip_warp
from advpriv.faces.model_files import dlib_model_path

CHIP_SIZE = 150
CHIP_PADDING = 0.25
UPSAMPLE = 1  # face_recognition's default number_of_times_to_upsample


@dataclass(frozen=True)
class Face:
    """One detected face: detector box (left, top, right, bottom), 5 landmarks (x, y) and its chip warp."""

    box: tuple[int, int, int, int]
    landmarks: tuple[tuple[float, float], ...]
    warp: ChipWarp


def _dlib() -> Any:
    try:
        import dlib
    except ImportError as error:
        raise ImportError("face detection needs dlib; install it with: pip install dlib-bin") from error
    return dlib


@lru_cache(maxsize=1)
def dlib_models() -> tuple[Any, Any]:
    """dlib's HOG face detector and 5-point shape predictor, loaded once."""
    dlib = _dlib()
    predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
    return dlib.get_frontal_face_detector(), predictor


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """An (H,W,3) uint8 array from a (3,H,W) float tensor in [0,1], or an (H,W,3) uint8 array as is."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H,W,3) uint8 RGB array, got {image.dtype} {image.shape}")
        return np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3,H,W) RGB tensor in [0,1], got shape {tuple(image.shape)}")
    return np.ascontiguousarray((image.detach().cpu().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())


def detect_faces(image: torch.Tensor | np.ndarray, upsample: int = UPSAMPLE) -> list[Face]:
    """Every face dlib finds in `image` ((3,H,W) float in [0,1], or (H,W,3) uint8), in dlib's order."""
    pixels = to_uint8(image)
    detector, predictor = dlib_models()
    faces = []
    for box in detector(pixels, upsample):
        shape = predictor(pixels, box)
        details = _dlib().get_face_chip_details(shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        rect = details.rect
        warp = chip_warp((rect.left(), rect.top(), rect.right(), rect.bottom()), details.angle, CHIP_SIZE, pixels.shape[:2])
        points = tuple((float(p.x), float(p.y)) for p in shape.parts())
        faces.append(Face((box.left(), box.top(), box.right(), box.bottom()), points, warp))
    return faces
