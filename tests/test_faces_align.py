"""Detection with dlib-bin and the differentiable chip warp, checked against dlib's own chips on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from advpriv.faces.align import chip_warp, extract_chip, pyramid_down, resize_chip

dlib = pytest.importorskip("dlib", reason="face detection needs dlib-bin (pip install dlib-bin)")

from advpriv.faces.detect import detect_faces, dlib_models  # noqa: E402
from advpriv.faces.dlib_resnet import MODEL_FILE, dlib_resnet  # noqa: E402
from advpriv.faces.model_files import dlib_model_path  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WILD = SHARED / "data" / "faces-wild" / "images"
CELEBA_ID = SHARED / "data" / "celeba-id"
needs_shared = pytest.mark.skipif(not WILD.is_dir(), reason=f"{WILD} is absent")


def _photo(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).copy()


def _tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(2, 0, 1).float()[None] / 255


def test_pyramid_down_matches_dlib_sizes_and_filter() -> None:
    x = torch.full((1, 3, 21, 16), 100.0)
    assert pyramid_down(x).shape == (1, 3, 9, 6)
    assert torch.all(pyramid_down(x) == 100)


def test_chip_warp_gradients_reach_the_photo() -> None:
    photo = torch.rand(1, 3, 600, 500, requires_grad=True)
    warp = chip_warp((50.0, 60.0, 449.0, 459.0), 0.2, 150, (600, 500))
    assert warp.levels == 1
    extract_chip(photo, warp).sum().backward()
    assert photo.grad is not None and photo.grad[0, :, 250, 250].abs().sum() > 0


def test_resize_chip_treats_the_whole_image_as_the_face() -> None:
    assert resize_chip(torch.rand(2, 3, 218, 178)).shape == (2, 3, 150, 150)


def test_no_face_in_noise() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    assert detect_faces(noise) == []


@needs_shared
@pytest.mark.parametrize(
    "path",
    [WILD / "000565.jpg", WILD / "001085.jpg", WILD / "008064.jpg", CELEBA_ID / "10010" / "000351.jpg"],
    ids=["1600px-pyramid", "500px", "group-of-two", "celeba-crop"],
)
def test_chips_and_descriptors_match_dlib(path: Path) -> None:
    pixels = _photo(path)
    detector, predictor = dlib_models()
    recogniser = dlib.face_recognition_model_v1(str(dlib_model_path(MODEL_FILE)))
    faces, boxes = detect_faces(pixels), detector(pixels, 1)
    assert len(faces) == len(boxes) >= 1
    model = dlib_resnet()
    for face, box in zip(faces, boxes):
        shape = predictor(pixels, box)
        expected_chip = dlib.get_face_chip(pixels, shape, size=150, padding=0.25).astype(int)
        chip = extract_chip(_tensor(pixels), face.warp)
        got_chip = (chip[0].permute(1, 2, 0) * 255).round().int().numpy()
        assert np.abs(got_chip - expected_chip).max() <= 1
        assert (got_chip != expected_chip).mean() < 1e-3
        with torch.no_grad():
            descriptor = model(chip)[0].numpy()
        assert np.linalg.norm(descriptor - np.array(recogniser.compute_face_descriptor(pixels, shape))) < 2e-3


@needs_shared
def test_group_photo_has_two_faces() -> None:
    assert len(detect_faces(_photo(WILD / "008064.jpg"))) == 2
