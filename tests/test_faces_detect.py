"""dlib's face detector scanned level by level on several threads (`level_scan`) gives exactly dlib's own boxes, in
dlib's order, and detection falls back to dlib's own scan when the detector's saved layout is unknown."""

from __future__ import annotations

import numpy as np
import pytest

dlib = pytest.importorskip("dlib", reason="face detection needs dlib-bin (pip install dlib-bin)")

from conftest import shared_path  # noqa: E402

from advpriv.faces import detect, level_scan  # noqa: E402
from advpriv.images import load_image  # noqa: E402


def _boxes(rectangles) -> list[tuple[int, int, int, int]]:
    return [(r.left(), r.top(), r.right(), r.bottom()) for r in rectangles]


def _dlibs_own(pixels: np.ndarray, upsample: int) -> list[tuple[int, int, int, int]]:
    return _boxes(dlib.get_frontal_face_detector()(pixels, upsample))


def _photo(name: str) -> np.ndarray:
    return detect.to_uint8(load_image(shared_path("data", "faces-wild", "images", name)))


@pytest.fixture(scope="module")
def mosaic() -> np.ndarray:
    """Six celeba faces side by side, 4 pixels apart: windows of neighbouring faces and levels overlap."""
    folder = shared_path("data", "celeba-id")
    faces = [detect.to_uint8(load_image(sorted(person.glob("*.jpg"))[0])) for person in sorted(folder.iterdir())[:6]]
    height, width = faces[0].shape[:2]
    canvas = np.full((2 * height + 4, 3 * width + 8, 3), 127, np.uint8)
    for i, face in enumerate(faces):
        top, left = (i // 3) * (height + 4), (i % 3) * (width + 4)
        canvas[top : top + height, left : left + width] = face
    return canvas


@pytest.mark.parametrize("name", ["006282.jpg", "008064.jpg", "000565.jpg", "004623.jpg", "006155.jpg"])
def test_level_scan_gives_dlibs_boxes_in_dlibs_order(name: str) -> None:
    pixels = _photo(name)
    assert _boxes(level_scan.scan_levels(pixels, 1)) == _dlibs_own(pixels, 1)


@pytest.mark.parametrize("upsample", [0, 1, 2])
def test_level_scan_equals_dlib_where_many_faces_and_levels_overlap(mosaic: np.ndarray, upsample: int) -> None:
    expected = _dlibs_own(mosaic, upsample)
    assert len(expected) >= 4, "the mosaic should show dlib several faces"
    assert _boxes(level_scan.scan_levels(mosaic, upsample)) == expected
    assert _boxes(level_scan.scan_levels(mosaic, upsample, workers=1)) == expected


@pytest.mark.parametrize("shape", [(1, 1, 3), (63, 200, 3), (300, 64, 3)])
def test_level_scan_of_images_smaller_than_a_level(shape: tuple[int, int, int]) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert _boxes(level_scan.scan_levels(pixels, 1)) == _dlibs_own(pixels, 1)


def test_an_unknown_detector_layout_falls_back_to_dlibs_own_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(level_scan.UnknownDetectorFormat, match="format"):
        level_scan._parsed(b"\x01\x03\x01\x01" + bytes(60))
    with pytest.raises(level_scan.UnknownDetectorFormat, match="ends early"):
        level_scan._parsed(b"\x01\x02\x01\x01\x01")
    pixels = _photo("006155.jpg")

    def unknown(*_):
        raise level_scan.UnknownDetectorFormat("a layout from another dlib")

    monkeypatch.setattr(detect, "scan_levels", unknown)
    assert _boxes(detect._scan(pixels, 1)) == _dlibs_own(pixels, 1) != []


def test_an_unknown_layout_is_read_once_and_reported_by_every_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = []

    def unknown(saved: bytes):
        reads.append(len(saved))
        raise level_scan.UnknownDetectorFormat("a layout from another dlib")

    monkeypatch.setattr(level_scan, "_parsed", unknown)
    level_scan._read_once.cache_clear()
    try:
        assert level_scan.prepare() is False
        for _ in range(2):
            with pytest.raises(level_scan.UnknownDetectorFormat, match="another dlib"):
                level_scan.scan_levels(np.zeros((64, 64, 3), np.uint8))
        assert len(reads) == 1
    finally:
        level_scan._read_once.cache_clear()
