"""Quality metrics agree with their definitions and the losses are differentiable where the search starts."""

from __future__ import annotations

import math

import pytest
import torch

from advpriv.quality import gmsd, ms_ssim, psnr, quality_loss, quality_report, ssim, vif


def test_psnr_of_one_level_everywhere():
    x = torch.full((1, 3, 8, 8), 0.5)
    assert abs(psnr(x, x + 1 / 255).item() - 20 * math.log10(255)) < 0.01
    assert psnr(x, x).item() == math.inf


def test_identical_images_are_perfect():
    x = torch.rand(2, 3, 200, 200)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert torch.allclose(ms_ssim(x, x), torch.ones(2), atol=1e-5)
    assert gmsd(x, x).max() < 1e-4


def test_metrics_order_small_and_large_changes():
    x = torch.rand(1, 3, 64, 64)
    small, large = (x + 0.01 * torch.randn_like(x)).clamp(0, 1), (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    for metric in (psnr, ssim, ms_ssim):
        assert metric(x, small) > metric(x, large)
    assert gmsd(x, small) < gmsd(x, large)


def test_small_images_fall_back_gracefully():
    x = torch.rand(1, 3, 12, 9)
    y = (x + 0.05).clamp(0, 1)
    assert 0 < ms_ssim(x, y).item() < 1 and 0 < ssim(x, y).item() < 1


def test_quality_loss_has_finite_gradient_at_zero_perturbation():
    x = torch.rand(1, 3, 32, 32)
    delta = torch.zeros_like(x, requires_grad=True)
    quality_loss(x, x + delta).sum().backward()
    assert torch.isfinite(delta.grad).all()


def test_quality_report_fields():
    x = torch.rand(2, 3, 40, 40)
    report = quality_report(x, (x + 2 / 255).clamp(0, 1))
    assert len(report) == 2 and set(report[0]) == {"psnr", "ssim", "ms_ssim", "gmsd", "l2", "linf"}
    assert abs(report[0]["linf"] * 255 - 2) < 1e-3


def test_vif_is_one_for_identical_images_and_falls_with_noise_on_a_real_photo():
    from skimage import data

    x = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255
    torch.manual_seed(0)
    noise = torch.randn_like(x)
    scores = [float(vif(x, (x + sigma * noise).clamp(0, 1))) for sigma in (0.0, 0.005, 0.02, 0.08)]
    assert abs(scores[0] - 1) < 1e-5
    assert scores == sorted(scores, reverse=True) and scores[-1] < 0.5


def test_vif_equals_torchmetrics_on_a_photo_with_flat_blank_and_inverted_parts():
    from skimage import data
    from torchmetrics.functional.image import visual_information_fidelity

    from advpriv.quality import luminance

    x = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255
    x[..., :60, :80] = 0.5  # flat in the reference
    torch.manual_seed(0)
    ys = [(x + sigma * torch.randn_like(x)).clamp(0, 1) for sigma in (0.005, 0.05)]
    ys[1][..., 100:160, 100:200] = 0.2  # blank in the distorted image
    ys.append(x.clone())
    ys[2][..., 200:300, 200:300] = 1 - ys[2][..., 200:300, 200:300]  # negative gain
    for y in ys:
        theirs = visual_information_fidelity(255 * luminance(y), 255 * luminance(x), sigma_n_sq=2.0, reduction="none")
        assert torch.allclose(vif(x, y), theirs, rtol=1e-5), (vif(x, y), theirs)


def test_the_report_has_vif_where_it_is_defined():
    x = torch.rand(1, 3, 64, 64)
    assert 0 < quality_report(x, (x + 0.02).clamp(0, 1))[0]["vif"] <= 1
    small = torch.rand(1, 3, 32, 40)
    assert "vif" not in quality_report(small, small)[0]
    with pytest.raises(ValueError, match="at least 41 pixels"):
        vif(small, small)


@pytest.mark.parametrize("box", [(0, 0, 9, 14), (150, 170, 200, 240), (40, 60, 120, 160), None])
def test_metrics_measured_around_the_change_equal_the_whole_photo(box):
    from pytorch_msssim import ms_ssim as reference_ms_ssim
    from pytorch_msssim import ssim as reference_ssim

    from advpriv.quality import gms_map

    torch.manual_seed(0)
    x = torch.rand(2, 3, 200, 240)
    y = x.clone()
    if box:
        top, left, bottom, right = box
        y[..., top:bottom, left:right] = (y[..., top:bottom, left:right] + 0.03 * torch.randn(2, 3, bottom - top, right - left)).clamp(0, 1)
    whole_gmsd = (gms_map(x, y).flatten(1).var(1, unbiased=False) + 1e-10).sqrt()
    assert torch.allclose(ssim(x, y), reference_ssim(x, y, data_range=1.0, size_average=False), atol=1e-6)
    assert torch.allclose(ms_ssim(x, y), reference_ms_ssim(x, y, data_range=1.0, size_average=False), atol=1e-6)
    assert torch.allclose(gmsd(x, y), whole_gmsd, atol=1e-6)


@pytest.mark.parametrize("seed", range(12))
def test_ms_ssim_on_a_window_of_every_scale_equals_the_whole_pyramid(seed):
    """Odd and even sides at every scale, changes at the borders and inside: the windowed pyramid must pool
    exactly as the whole one does."""
    from pytorch_msssim import ms_ssim as reference_ms_ssim

    generator = torch.Generator().manual_seed(seed)

    def draw(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (), generator=generator))

    height, width = draw(170, 420), draw(170, 420)
    h, w = draw(1, 60), draw(1, 60)
    top = [0, height - h, draw(0, height - h)][seed % 3]
    left = [draw(0, width - w), 0, width - w][seed % 3]
    x = torch.rand(1 + seed % 2, 3, height, width, generator=generator)
    y = x.clone()
    y[..., top : top + h, left : left + w] = (y[..., top : top + h, left : left + w] + 0.1).clamp(0, 1)
    reference = reference_ms_ssim(x, y, data_range=1.0, size_average=False)
    assert torch.allclose(ms_ssim(x, y), reference, atol=1e-5), (height, width, top, left, h, w)
    within = (max(0, top - 3), max(0, left - 3), top + h + 3, left + w + 3)
    assert quality_report(x, y, within=within) == quality_report(x, y)
