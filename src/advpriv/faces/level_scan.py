"""dlib's HOG face detector, its pyramid levels scanned side by side, with exactly the boxes of dlib's own scan.

dlib scans an image's whole pyramid on one core: the image upsampled (4× the pixels once), then levels each
5/6 the size of the one before, its 5 face filters at every level, then one overlap suppression over all windows.
On a 12-megapixel photo that takes 4.3–4.5 s. Here dlib builds the same level images, copies of its detector
limited to one level and with the suppression switched off score the levels side by side (one task per level,
one thread per core), and the windows of all levels are suppressed together the way dlib does it. The boxes and
their order equal dlib's (tests/test_faces_detect.py; `bench/speed_checks.py level_boxes`: 270 of 270 shared
photos); on 2 cores the 12-megapixel scan takes 2.5–2.6 s (`bench/speed_checks.py levels`).

Example:
    >>> import numpy as np
    >>> scan_levels(np.zeros((120, 90, 3), np.uint8))
    []
"""

from __future__ import annotations

import math
import os
import queue
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

_NO_SUPPRESSION = b"\x01\x01\x01\x00" * 2  # two doubles of 1.0 (mantissa 1, exponent 0): no window overlaps another
_ONE_LEVEL = b"\x01\x01"
_UPSAMPLE_PYRAMID = 2  # dlib's Python binding upsamples with pyramid_down<2>
_LEVEL_PYRAMID = 6  # its frontal face detector scans with pyramid_down<6>


class UnknownDetectorFormat(RuntimeError):
    """The installed dlib saves its face detector in a layout this module does not know."""


@dataclass(frozen=True)
class _Layout:
    """The saved detector changed to scan one level and report every window it scores, and what the change
    takes away that the scan must still do: the smallest level dlib scans, and its overlap thresholds."""

    one_level_unsuppressed: bytes
    min_layer: tuple[int, int]
    iou: float
    covered: float


def _read_int(data: bytes, at: int) -> tuple[int, int]:
    """dlib's serialised integer at `at` (a byte with the length and sign bit, then little-endian bytes), and
    where the next field starts."""
    length = data[at] & 0x7F
    value = int.from_bytes(data[at + 1 : at + 1 + length], "little")
    return (-value if data[at] & 0x80 else value), at + 1 + length


def _read_double(data: bytes, at: int) -> tuple[float, int]:
    mantissa, at = _read_int(data, at)
    exponent, at = _read_int(data, at)
    return math.ldexp(mantissa, exponent), at


def _parse(saved: bytes) -> _Layout:
    """dlib's saved `object_detector<scan_fhog_pyramid<pyramid_down<6>>>` (format versions 2 and 1) changed to scan
    one level without overlap suppression, and the settings the change takes away."""
    at = 0
    fields = []
    for _ in range(8):  # versions of detector and scanner, feature cache size ×2, cell size, padding, window w×h
        value, at = _read_int(saved, at)
        fields.append(value)
    if fields[:2] != [2, 1]:
        raise UnknownDetectorFormat(f"dlib's face detector is saved as format {fields[:2]}, not [2, 1]")
    levels_start = at
    _, levels_end = _read_int(saved, at)
    at = levels_end
    min_width, at = _read_int(saved, at)
    min_height, at = _read_int(saved, at)
    _, at = _read_double(saved, at)  # nuclear norm regularisation, training only
    _, at = _read_int(saved, at)  # feature dimensions
    overlap_start = at
    iou, at = _read_double(saved, at)
    covered, at = _read_double(saved, at)
    if not (0 < iou <= 1 and 0 < covered <= 1):
        raise UnknownDetectorFormat(f"dlib's face detector has overlap thresholds {iou}, {covered}, not in (0, 1]")
    changed = saved[:levels_start] + _ONE_LEVEL + saved[levels_end:overlap_start] + _NO_SUPPRESSION + saved[at:]
    return _Layout(changed, (min_width, min_height), iou, covered)


def _parsed(saved: bytes) -> _Layout:
    try:
        return _parse(saved)
    except IndexError as error:
        raise UnknownDetectorFormat(f"dlib's saved face detector ends early ({len(saved)} bytes)") from error


@lru_cache(maxsize=1)
def frontal_detector() -> Any:
    """dlib's frontal face detector, built once per process (about 0.3 s).

    >>> frontal_detector().num_detectors
    5
    """
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def _read_once() -> _Layout | str:
    """The changed detector, or why it cannot be made (kept, so that an unknown layout is read only once)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "frontal.svm"
        frontal_detector().save(str(path))
        try:
            return _parsed(path.read_bytes())
        except UnknownDetectorFormat as error:
            return str(error)


def _layout() -> _Layout:
    layout = _read_once()
    if isinstance(layout, str):
        raise UnknownDetectorFormat(layout)
    return layout


def prepare() -> bool:
    """Read dlib's saved detector now instead of in the first scan (about 0.3 s): True if the levels can be
    scanned side by side, False if detection will use dlib's own scan.

    >>> prepare()
    True
    """
    return not isinstance(_read_once(), str)


@contextmanager
def borrowed(idle: queue.SimpleQueue, make: Callable[[], Any]) -> Iterator[Any]:
    """An object from `idle`, or a new one from `make` when none is idle, put back afterwards: a dlib detector
    keeps the image it scans inside it, so two threads must not use one at the same time.

    >>> idle = queue.SimpleQueue()
    >>> with borrowed(idle, list) as made:
    ...     made.append(1)
    >>> idle.get_nowait()
    [1]
    """
    try:
        item = idle.get_nowait()
    except queue.Empty:
        item = make()
    try:
        yield item
    finally:
        idle.put(item)


@lru_cache(maxsize=1)
def _idle_level_detectors() -> queue.SimpleQueue:
    return queue.SimpleQueue()


def _level_detector() -> Any:
    """dlib's frontal face detector limited to the first level of its pyramid and reporting every window it
    scores."""
    import dlib

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "one_level.svm"
        path.write_bytes(_layout().one_level_unsuppressed)
        return dlib.fhog_object_detector(str(path))


def _windows(level: np.ndarray, index: int) -> list[tuple[Any, float]]:
    """Every window scoring at least 0 at pyramid level `index` (the image `level`), in the upsampled image's
    coordinates."""
    with borrowed(_idle_level_detectors(), _level_detector) as detector:
        boxes, scores, _ = detector.run(level, 0, 0.0)
    pyramid = _pyramid(_LEVEL_PYRAMID)
    return [(_mapped(pyramid.point_up, box, index), score) for box, score in zip(boxes, scores)]


@lru_cache(maxsize=None)
def _pyramid(rate: int) -> Any:
    import dlib

    return dlib.pyramid_down(rate)


def _mapped(step: Any, box: Any, times: int) -> Any:
    """`box` moved `times` pyramid levels by `step` (point_up or point_down), in floating point and then rounded,
    as dlib's `rect_up(rect, levels)` and `rect_down(rect, levels)` do."""
    import dlib

    corners = [dlib.dpoint(box.left(), box.top()), dlib.dpoint(box.right(), box.bottom())]
    for _ in range(times):
        corners = [step(corner) for corner in corners]
    (left, top), (right, bottom) = ((math.floor(c.x + 0.5), math.floor(c.y + 0.5)) for c in corners)
    return dlib.rectangle(left, top, right, bottom)


def _upsampled(pixels: np.ndarray, times: int) -> np.ndarray:
    """`pixels` upsampled `times` times the way dlib's Python binding does before it scans."""
    import dlib

    for _ in range(times):
        size = _pyramid(_UPSAMPLE_PYRAMID).rect_up(dlib.rectangle(0, 0, pixels.shape[1] - 1, pixels.shape[0] - 1))
        pixels = dlib.resize_image(pixels, size.bottom() + 1, size.right() + 1)
    return pixels


def _level_count(height: int, width: int, min_layer: tuple[int, int]) -> int:
    """How many pyramid levels dlib's scanner builds for an image of this size."""
    import dlib

    box, levels = dlib.rectangle(0, 0, width - 1, height - 1), 0
    while True:
        box, levels = _pyramid(_LEVEL_PYRAMID).rect_down(box), levels + 1
        if box.width() < min_layer[0] or box.height() < min_layer[1]:
            return levels


def _suppressed(windows: list[tuple[Any, float]], iou: float, covered: float) -> list[Any]:
    """dlib's overlap suppression: best score first, a window is dropped if it overlaps one kept."""

    def overlaps(a: Any, b: Any) -> bool:
        inner = a.intersect(b).area()
        if inner == 0:
            return False
        return inner / (a + b).area() > iou or inner / a.area() > covered or inner / b.area() > covered

    kept: list[Any] = []
    for box, _ in sorted(windows, key=lambda window: -window[1]):
        if not any(overlaps(box, other) for other in kept):
            kept.append(box)
    return kept


def scan_levels(pixels: np.ndarray, upsample: int = 1, workers: int | None = None) -> list[Any]:
    """dlib's frontal face detector boxes in `pixels` ((H,W,3) uint8), equal to `detector(pixels, upsample)`,
    with the pyramid's levels scanned on `workers` threads (default: one per CPU).

    Raises UnknownDetectorFormat when the installed dlib saves its detector in another layout.
    """
    layout = _layout()
    image = _upsampled(np.ascontiguousarray(pixels), upsample)
    count = _level_count(image.shape[0], image.shape[1], layout.min_layer)
    level_down = _pyramid(_LEVEL_PYRAMID)
    with ThreadPoolExecutor(max_workers=max(1, min(workers or os.cpu_count() or 1, count))) as pool:
        scans = []
        for index in range(count):
            if index:
                image = level_down(image)
            scans.append(pool.submit(_windows, image, index))
        windows = [window for scan in scans for window in scan.result()]
    return [_mapped(_pyramid(_UPSAMPLE_PYRAMID).point_down, box, upsample)
            for box in _suppressed(windows, layout.iou, layout.covered)]
