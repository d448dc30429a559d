"""Find faces with dlib (HOG detector + 5-point landmarks) and describe where each face chip comes from.

This is what `face_recognition` does before it describes a face: `detector(image, 1)`, the 5-point
shape predictor, then `get_face_chip_details(shape, 150, 0.25)`. For models aligned to the ArcFace template,
dlib's 68-point predictor gives the 5 ArcFace points in the same detector box. Detection runs once on the clean
photo; the chips it yields (`Face.chip`) are then cut, differentiably, from any candidate image.

Example:
    >>> import numpy as np, torch
    >>> detect_faces(np.zeros((64, 64, 3), np.uint8))
    []
    >>> face = find_faces(torch.rand(3, 218, 178), aligned=True)[0]
    >>> face.box, face.chip(torch.rand(1, 3, 218, 178), "arcface", 112).shape
    ((0, 0, 177, 217), torch.Size([1, 3, 112, 112]))
"""

from __future__ import annotations

import hashlib
import os
import queue
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import torch

from advpriv.faces.align import ALIGNMENTS, ChipWarp, arcface_chip, chip_warp, extract_chip, resize_chip
from advpriv.faces.dlib_resnet import CHIP_SIZE
from advpriv.faces.level_scan import UnknownDetectorFormat, borrowed, frontal_detector, scan_levels
from advpriv.faces.model_files import dlib_model_path

CHIP_PADDING = 0.25
UPSAMPLE = 1  # face_recognition's default number_of_times_to_upsample


Points = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Face:
    """One face: box (left, top, right, bottom), dlib's 5 landmarks (x, y), its dlib chip warp (None: the whole
    image is the face), and its 5 ArcFace points (eye centres, nose tip, mouth corners; image-left first)."""

    box: tuple[int, int, int, int]
    landmarks: Points
    warp: ChipWarp | None
    arcface_points: Points = ()

    def chip(
        self, image: torch.Tensor, alignment: str = "dlib", size: int = CHIP_SIZE, antialias: bool = False
    ) -> torch.Tensor:
        """This face's chips (N,3,S,S) from `image` (N,3,H,W): dlib's 150-pixel chip resized to `size`, or the
        ArcFace template at `size` (`antialias`: band-limited first, see `arcface_chip`); the whole image resized
        when the face has no warp."""
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
        if self.warp is None:
            return resize_chip(image, size)
        if alignment == "dlib":
            return resize_chip(extract_chip(image, self.warp), size)
        if not self.arcface_points:
            raise ValueError(f"the face at {self.box} has no ArcFace points; find it with advpriv.faces.detect")
        return arcface_chip(image, self.arcface_points, size, antialias)


class NoFaceError(ValueError):
    """dlib found no face where one was needed. `found_nothing`: what was not found and which photo to use instead,
    without the advice to treat the image as an aligned face, which the web service does not offer.

    >>> error = NoFaceError("no face found in a.jpg", "; or treat it as aligned")
    >>> str(error), error.found_nothing
    ('no face found in a.jpg; or treat it as aligned', 'no face found in a.jpg')
    """

    def __init__(self, found_nothing: str, aligned_advice: str = "") -> None:
        super().__init__(found_nothing, aligned_advice)

    @property
    def found_nothing(self) -> str:
        return self.args[0]

    def __str__(self) -> str:
        return "".join(self.args)


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
    return frontal_detector(), predictor


@lru_cache(maxsize=1)
def predictor68() -> Any:
    """dlib's 68-point shape predictor, loaded once."""
    return import_dlib().shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))


def arcface_points(pixels: np.ndarray, box: Any) -> np.ndarray:
    """Eye centres, nose tip and mouth corners (5,2), image-left first, from dlib's 68 landmarks in `box`."""
    p = np.array([(q.x, q.y) for q in predictor68()(pixels, box).parts()], dtype=np.float64)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """An (H,W,3) uint8 array from a (3,H,W) float tensor in [0,1], or an (H,W,3) uint8 array as is."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H,W,3) uint8 RGB array, got {image.dtype} {image.shape}")
        return np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3,H,W) RGB tensor in [0,1], got shape {tuple(image.shape)}")
    pixels = image.detach().cpu().permute(1, 2, 0).clone(memory_format=torch.contiguous_format)  # never the caller's
    pixels.clamp_(0, 1).mul_(255).round_()
    return pixels.to(torch.uint8).numpy()


def find_faces(image: torch.Tensor, aligned: bool = False, what: str = "the photo", arcface: bool = True) -> list[Face]:
    """The faces of a (3,H,W) image: detected by dlib, or the whole image when `aligned`; never empty. `arcface`:
    find each face's ArcFace points too (dlib's 68-point predictor; only ArcFace-aligned models read them)."""
    if aligned:
        height, width = image.shape[-2:]
        return [Face((0, 0, width - 1, height - 1), (), None)]
    faces = detect_faces(image, arcface=arcface)
    if not faces:
        raise NoFaceError(
            f"no face found in {what} by dlib's HOG detector; use a photo where the face is frontal and at least "
            "about 40 pixels wide",
            ", or, if the image is already a cropped and aligned face, treat it as one "
            "(--aligned on the command line, aligned=True in Python)",
        )
    return faces


def _face_in_box(pixels: np.ndarray, box: Any, arcface: bool = True) -> Face:
    dlib = import_dlib()
    shape = dlib_models()[1](pixels, box)
    details = dlib.get_face_chip_details(shape, size=CHIP_SIZE, padding=CHIP_PADDING)
    rect = details.rect
    warp = chip_warp((rect.left(), rect.top(), rect.right(), rect.bottom()), details.angle, CHIP_SIZE, pixels.shape[:2])
    points = tuple((float(p.x), float(p.y)) for p in shape.parts())
    arcface_at = tuple((float(x), float(y)) for x, y in arcface_points(pixels, box)) if arcface else ()
    return Face((box.left(), box.top(), box.right(), box.bottom()), points, warp, arcface_at)


_REMEMBERED = 8
_boxes_seen: OrderedDict[tuple, list[Any]] = OrderedDict()


@lru_cache(maxsize=1)
def _idle_detectors() -> queue.SimpleQueue:
    detectors: queue.SimpleQueue = queue.SimpleQueue()
    detectors.put(frontal_detector())
    return detectors


def _scan(pixels: np.ndarray, upsample: int) -> list[Any]:
    """dlib's detector boxes in `pixels`: its pyramid levels on all cores (`scan_levels`), or, if this dlib saves
    its detector in an unknown layout, dlib's own scan on one core."""
    try:
        return scan_levels(pixels, upsample)
    except UnknownDetectorFormat:
        return _scan_whole(pixels, upsample)


def _scan_whole(pixels: np.ndarray, upsample: int) -> list[Any]:
    """dlib's detector boxes in `pixels`, from dlib's own scan."""
    with borrowed(_idle_detectors(), import_dlib().get_frontal_face_detector) as detector:
        return list(detector(pixels, upsample))


def _key(pixels: np.ndarray, upsample: int) -> tuple:
    digest = hashlib.blake2b(memoryview(np.ascontiguousarray(pixels)).cast("B"), digest_size=16).digest()
    return digest, pixels.shape, upsample


def _remember(key: tuple, boxes: list[Any]) -> None:
    _boxes_seen[key] = boxes
    while len(_boxes_seen) > _REMEMBERED:
        _boxes_seen.popitem(last=False)


def forget_boxes() -> None:
    """Forget every remembered scan, so that the next `face_boxes` scans afresh (to time detection).

    >>> forget_boxes()
    """
    _boxes_seen.clear()


def scan_faces(images: Sequence[np.ndarray], upsample: int = UPSAMPLE) -> None:
    """Run dlib's detector on several (H,W,3) uint8 images at once, one thread each up to the CPU count (dlib
    lets go of Python's lock while it scans), so that `face_boxes` then finds their boxes remembered.

    >>> scan_faces([np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 9, np.uint8)])
    """
    keys = {_key(pixels, upsample): pixels for pixels in images}
    todo = [(key, pixels) for key, pixels in keys.items() if key not in _boxes_seen]
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 1)) as pool:
        found = list(pool.map(lambda item: _scan(item[1], upsample), todo))
    for (key, _), boxes in zip(todo, found):
        _remember(key, boxes)


def face_boxes(pixels: np.ndarray, upsample: int = UPSAMPLE) -> list[Any]:
    """dlib's HOG detector boxes (dlib rectangles) in `pixels` (H,W,3 uint8), in dlib's order.

    The boxes of the last few images are remembered by content: protecting a photo and judging it ask about the
    same pixels (each judge, and the protection itself), and on a 12-megapixel photo one scan takes 2.5–2.6 s on
    2 cores.

    >>> face_boxes(np.zeros((64, 64, 3), np.uint8))
    []
    """
    key = _key(pixels, upsample)
    if key not in _boxes_seen:
        _remember(key, _scan(pixels, upsample))
    _boxes_seen.move_to_end(key)
    return _boxes_seen[key]


def detect_faces(image: torch.Tensor | np.ndarray, upsample: int = UPSAMPLE, arcface: bool = True) -> list[Face]:
    """Every face dlib finds in `image` ((3,H,W) float in [0,1], or (H,W,3) uint8), in dlib's order; `arcface` as
    in `find_faces`."""
    pixels = to_uint8(image)
    return [_face_in_box(pixels, box, arcface) for box in face_boxes(pixels, upsample)]


def relandmark(image: torch.Tensor | np.ndarray, faces: list[Face], arcface: bool = True) -> list[Face]:
    """The same detector boxes, with landmarks, chip warps and (if `arcface`) ArcFace points found again on `image`
    (as a judge would)."""
    pixels = to_uint8(image)
    dlib = import_dlib()
    return [_face_in_box(pixels, dlib.rectangle(*face.box), arcface) if face.warp else face for face in faces]
