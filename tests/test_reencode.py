"""The platform re-encodings: what each does to an image, and that reports judge the re-encoded copies."""

from __future__ import annotations

import pytest
import torch

from advpriv.images import quantize
from advpriv.protect.reencode import REENCODINGS, judge_reencoded, reencode


@pytest.fixture
def photo() -> torch.Tensor:
    """A smooth 8-bit gradient with noise on it, 40×30: JPEG changes it a little, not beyond recognition."""
    torch.manual_seed(0)
    ramp = torch.linspace(0, 1, 40)[None, None, :].expand(3, 30, 40)
    return quantize((ramp + 0.05 * torch.randn(3, 30, 40)).clamp(0, 1))


def test_jpeg85_changes_the_pixels_but_keeps_the_size_and_8_bit_levels(photo) -> None:
    copy = reencode(photo, "jpeg85")
    assert copy.shape == photo.shape and copy.dtype == torch.float32
    assert torch.equal(copy, quantize(copy))
    assert 0 < (copy - photo).abs().mean() < 0.05


def test_half_halves_width_and_height_on_8_bit_levels(photo) -> None:
    copy = reencode(photo, "half")
    assert copy.shape == (3, 15, 20)
    assert torch.equal(copy, quantize(copy))
    assert abs(float(copy.mean() - photo.mean())) < 0.01


def test_every_reencoding_is_named_once_and_an_unknown_name_is_refused(photo) -> None:
    assert list(REENCODINGS) == ["jpeg85", "half"]
    assert list(judge_reencoded(lambda copy: copy.shape[-1], photo).values()) == [40, 20]
    with pytest.raises(ValueError, match="choose one of jpeg85, half"):
        reencode(photo, "webp")
