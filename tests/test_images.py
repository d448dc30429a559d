"""Decoding every colour mode, EXIF orientation, metadata stripping, damaged files and the size guard."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from advpriv.images import ImageError, atomic_write, encode_image, find_images, load_image, quantize, save_image


def decode(source, **options):
    """`load_image` without the smallest-side limit: these tests decode toy images of a few pixels."""
    return load_image(source, **{"min_side": 1, **options})


def _save(im: Image.Image, path, **kw):
    im.save(path, **kw)
    return path


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "RGB"])
def test_modes_become_rgb_in_unit_range(tmp_path, mode):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8))
    im = rgb.convert(mode)
    path = _save(im, tmp_path / ("x.tif" if mode == "CMYK" else "x.png"))
    x = decode(path)
    assert x.shape == (3, 7, 5) and x.dtype == torch.float32
    assert 0 <= float(x.min()) and float(x.max()) <= 1


def test_alpha_is_composited_on_white(tmp_path):
    path = _save(Image.new("RGBA", (3, 3), (0, 0, 0, 0)), tmp_path / "clear.png")
    assert torch.allclose(decode(path), torch.ones(3, 3, 3))


def test_16_bit_grey_keeps_its_scale(tmp_path):
    arr = np.full((4, 4), 65535 // 2, dtype=np.uint16)
    path = _save(Image.fromarray(arr), tmp_path / "deep.png")
    assert decode(path).mean().item() == pytest.approx(0.5, abs=1e-3)


def test_exif_orientation_is_applied_and_not_written_back(tmp_path):
    im = Image.new("RGB", (4, 2), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 0.0)}  # GPS
    path = _save(im, tmp_path / "phone.jpg", exif=exif.tobytes())
    x = decode(path)
    assert x.shape == (3, 4, 2)
    out = save_image(x, tmp_path / "out.jpg")
    with Image.open(out) as written:
        assert not written.getexif() and "exif" not in written.info


def test_truncated_file_names_the_file(tmp_path):
    good = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(good, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    with pytest.raises(ImageError, match="cut.jpg.*truncated"):
        decode(path)


@pytest.mark.parametrize("content", [b"", b"hello, not an image", b"\x89PNG\r\n\x1a\nbroken"])
def test_non_image_names_the_file(tmp_path, content):
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="notes.png"):
        decode(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        decode(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        decode(tmp_path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = _save(Image.new("L", (300, 300)), tmp_path / "big.png")
    with pytest.raises(ImageError, match="big.png.*decompression-bomb"):
        decode(path, max_pixels=10_000)


def test_tiny_image_round_trips(tmp_path):
    x = quantize(torch.rand(3, 1, 1))
    assert torch.equal(decode(save_image(x, tmp_path / "dot.png")), x)


def test_png_is_lossless_and_quantize_is_what_png_stores(tmp_path):
    x = torch.rand(3, 9, 11)
    assert torch.equal(decode(io.BytesIO(encode_image(x))), quantize(x))


def test_atomic_write_leaves_nothing_when_it_fails(tmp_path, monkeypatch):
    def boom(*_):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write(tmp_path / "out.png", b"data")
    assert list(tmp_path.iterdir()) == []


def test_find_images_expands_folders_and_keeps_named_files(tmp_path):
    (tmp_path / "a").mkdir()
    _save(Image.new("RGB", (2, 2)), tmp_path / "a" / "one.png")
    (tmp_path / "a" / "readme.txt").write_text("x")
    named = tmp_path / "named.dat"
    named.write_text("x")
    assert find_images([tmp_path / "a", named, tmp_path / "a" / "one.png"]) == [tmp_path / "a" / "one.png", named]
