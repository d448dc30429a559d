"""Find faces with dlib (HOG detector + 5-point landmarks) and describe where each face chip comes from.

This is what `face_recognition` does before it describes a face: `detector(image, 1)`, the 5-point
shape predictor, then `get_face_chip_details(shape, 150, 0.25)`. Detection runs once on the clean photo;
the chip warps it yields are then applied, differentiably, to any candidate image.

Example:
    >>> import numpy as np, torch
    >>> detect_faces(np.zeros((64, 64, 3), np.uint8))
    []
    >>> find_faces(torch.rand(3, 218, 178), aligned=True)[0].box
    (0, 0, 177, 217)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from advpriv.faces.align import ChipWarp, chip_warp
from advpriv.faces.dlib_resnet import CHIP_SIZE
from advpriv.faces.model_files import dlib_model_path

CHIP_PADDING = 0.25
UPSAMPLE = 1  # face_recognition's default number_of_times_to_upsample


@dataclass(frozen=True)
class Face:
    """One face: box (left, top, right, bottom), 5 landmarks (x, y), and its chip warp (None: the whole image)."""

    box: tuple[int, int, int, int]
    landmarks: tuple[tuple[float, float], ...]
    warp: ChipWarp | None


class NoFaceError(ValueError):
    """dlib found no face where one was needed."""


def import_dlib() -> Any:
    """The dlib module, or an error saying how to install it."""
    try:
        import dlib
    except ImportError as error:
        raise ImportError("face detection needs dlib; install it with: pip install dlib-bin") from error
    return dlib


@lru_cache(maxsize=1)
def dlib_models() -> tuple[Any, Any]:
    """dlib's HOG face detector and 5-point shape predictor, loaded once."""
    dlib = import_dlib()
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


def find_faces(image: torch.Tensor, aligned: bool = False, what: str = "the photo") -> list[Face]:
    """The faces of a (3,H,W) image: detected by dlib, or the whole image when `aligned`; never empty."""
    if aligned:
        height, width = image.shape[-2:]
        return [Face((0, 0, width - 1, height - 1), (), None)]
    faces = detect_faces(image)
    if not faces:
        raise NoFaceError(
            f"no face found in {what} by dlib's HOG detector; use a photo where the face is frontal and at least "
            "about 40 pixels wide, or, if the image is already a cropped and aligned face, treat it as one "
            "(--aligned on the command line, aligned=True in Python)"
        )
    return faces


def _face_in_box(pixels: np.ndarray, box: Any) -> Face:
    dlib = import_dlib()
    shape = dlib_models()[1](pixels, box)
    details = dlib.get_face_chip_details(shape, size=CHIP_SIZE, padding=CHIP_PADDING)
    rect = details.rect
    warp = chip_warp((rect.left(), rect.top(), rect.right(), rect.bottom()), details.angle, CHIP_SIZE, pixels.shape[:2])
    points = tuple((float(p.x), float(p.y)) for p in shape.parts())
    return Face((box.left(), box.top(), box.right(), box.bottom()), points, warp)


def detect_faces(image: torch.Tensor | np.ndarray, upsample: int = UPSAMPLE) -> list[Face]:
    """Every face dlib finds in `image` ((3,H,W) float in [0,1], or (H,W,3) uint8), in dlib's order."""
    pixels = to_uint8(image)
    return [_face_in_box(pixels, box) for box in dlib_models()[0](pixels, upsample)]


def relandmark(image: torch.Tensor | np.ndarray, faces: list[Face]) -> list[Face]:
    """The same detector boxes, with landmarks and chip warps found again on `image` (as a judge would)."""
    pixels = to_uint8(image)
    return [_face_in_box(pixels, import_dlib().rectangle(*face.box)) if face.warp else face for face in faces]
