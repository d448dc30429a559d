"""Image quality: PSNR, SSIM, MS-SSIM, gradient-magnitude similarity and visual information fidelity, as metrics
and as differentiable losses.

All functions take float RGB batches (N,3,H,W) in [0,1] and return one value per image (N,).
SSIM and MS-SSIM come from pytorch-msssim, image gradients from kornia, VIF from torchmetrics.

Example:
    >>> x = torch.rand(2, 3, 64, 64); y = (x + 0.01).clamp(0, 1)
    >>> psnr(x, y).shape
    torch.Size([2])
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import kornia
import torch
from pytorch_msssim import ms_ssim as _ms_ssim
from pytorch_msssim import ssim as _ssim
from pytorch_msssim.ssim import _fspecial_gauss_1d, gaussian_filter

GMS_C = 170.0 / 255.0**2
"""The GMSD stability constant of Xue et al. (2014), 170 on 0–255 images, rescaled to [0,1]."""


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB; infinite for identical images."""
    mse = (x - y).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


def _window(x: torch.Tensor, largest: int = 11, scales: int = 1) -> int:
    """The largest odd Gaussian window ≤ `largest` that fits the image at the coarsest scale."""
    side = min(x.shape[-2:])
    win = largest
    while win > 3 and side <= (win - 1) * 2 ** (scales - 1):
        win -= 2
    return win


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004), 11×11 Gaussian window, smaller for tiny images."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipping Gaussian Smoothing")  # images under 3 px: no window fits
        return _ssim(x, y, data_range=1.0, size_average=False, win_size=_window(x))


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM with the standard five scales; the window shrinks for small images.

    Images whose short side is under 49 pixels are too small for five scales: plain SSIM is returned.
    """
    win = _window(x, scales=5)
    if min(x.shape[-2:]) <= (win - 1) * 16:
        return ssim(x, y)
    return _ms_ssim(x, y, data_range=1.0, size_average=False, win_size=win)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma, (N,1,H,W)."""
    return kornia.color.rgb_to_grayscale(x)


def gradient_magnitude(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Sobel gradient magnitude of the luminance, smooth at zero so it can be differentiated."""
    g = kornia.filters.spatial_gradient(luminance(x), mode="sobel", normalized=True)
    return (g.pow(2).sum(2) + eps).sqrt()


def gms_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel gradient-magnitude similarity in (0,1]; 1 where the edges are unchanged."""
    return _gms(gradient_magnitude(x), gradient_magnitude(y))


def _gms(mx: torch.Tensor, my: torch.Tensor) -> torch.Tensor:
    return (2 * mx * my + GMS_C) / (mx.pow(2) + my.pow(2) + GMS_C)


def _deviation(gms: torch.Tensor, eps: float) -> torch.Tensor:
    return (gms.flatten(1).var(1, unbiased=False) + eps).sqrt()


def gmsd(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Gradient-magnitude-similarity deviation (Xue et al. 2014): 0 for identical images, larger is worse.

    >>> x = torch.rand(1, 3, 32, 32); float(gmsd(x, x)) < 1e-4
    True
    """
    return _deviation(gms_map(x, y), eps)


@dataclass(frozen=True)
class QualityWeights:
    """Weights of the perceptual quality loss L_q = α·MSE(δ) + β·(1 − SSIM) + γ·GMSD.

    The defaults put each term near 1 at the edge of visibility: MSE 1e-4 is PSNR 40 dB, SSIM 0.99 and GMSD 0.01
    are where a careful viewer starts to see structure and edges change. No term can then dominate by units alone.
    """

    alpha: float = 1e4
    beta: float = 100.0
    gamma: float = 100.0


def quality_loss(x: torch.Tensor, x_adv: torch.Tensor, w: QualityWeights = QualityWeights()) -> torch.Tensor:
    """L_q per image: perturbation energy plus structural and gradient change, lower is better."""
    return QualityLoss(x, w)(x_adv)


SSIM_K = (0.01, 0.03)  # pytorch-msssim's (and Wang et al.'s) constants, for data range 1


class QualityLoss:
    """`quality_loss` against a fixed clean batch `x`, whose own SSIM statistics and gradient magnitudes are
    computed once instead of at every step of an optimisation.

    >>> x = torch.rand(2, 3, 32, 32); y = (x + 0.02 * torch.randn_like(x)).clamp(0, 1)
    >>> loss = QualityLoss(x); w = QualityWeights()
    >>> bool(torch.allclose(loss(y), w.alpha * (x - y).pow(2).mean((1, 2, 3)) + w.beta * (1 - ssim(x, y)) + w.gamma * gmsd(x, y)))
    True
    >>> loss.select(torch.tensor([1]))(y[1:]).shape
    torch.Size([1])
    """

    def __init__(self, x: torch.Tensor, weights: QualityWeights = QualityWeights()) -> None:
        self.x, self.weights = x, weights
        self.win = _fspecial_gauss_1d(_window(x), 1.5).repeat(x.shape[1], 1, 1, 1).to(x)
        self.mu = self._blur(x)
        self.sigma_sq = self._blur(x * x) - self.mu.pow(2)
        self.edges = gradient_magnitude(x)

    def _blur(self, images: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipping Gaussian Smoothing")
            return gaussian_filter(images, self.win)

    def select(self, index: torch.Tensor) -> QualityLoss:
        """The same loss against the clean images `index` only."""
        chosen = object.__new__(QualityLoss)
        chosen.weights, chosen.win = self.weights, self.win
        chosen.x, chosen.mu, chosen.sigma_sq, chosen.edges = (t[index] for t in (self.x, self.mu, self.sigma_sq, self.edges))
        return chosen

    def ssim(self, y: torch.Tensor) -> torch.Tensor:
        """SSIM of `y` against the clean images, exactly as `ssim` computes it."""
        c1, c2 = SSIM_K[0] ** 2, SSIM_K[1] ** 2
        mu_y = self._blur(y)
        sigma_y_sq = self._blur(y * y) - mu_y.pow(2)
        sigma_xy = self._blur(self.x * y) - self.mu * mu_y
        cs = (2 * sigma_xy + c2) / (self.sigma_sq + sigma_y_sq + c2)
        return ((2 * self.mu * mu_y + c1) / (self.mu.pow(2) + mu_y.pow(2) + c1) * cs).flatten(2).mean(-1).mean(1)

    def gmsd(self, y: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
        """GMSD of `y` against the clean images, as `gmsd` computes it."""
        return _deviation(_gms(self.edges, gradient_magnitude(y)), eps)

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        w = self.weights
        mse = (y - self.x).pow(2).flatten(1).mean(1)
        return w.alpha * mse + w.beta * (1 - self.ssim(y)) + w.gamma * self.gmsd(y)


def box_quality(x: torch.Tensor, x_adv: torch.Tensor, box: Sequence[int]) -> dict[str, float]:
    """PSNR and SSIM inside one box [left, top, right, bottom] (inclusive, clipped to the image) of two images (3,H,W).

    >>> x = torch.zeros(3, 64, 64); y = x.clone(); y[:, 10:20, 10:20] = 0.1
    >>> round(box_quality(x, y, [0, 0, 31, 31])["psnr"], 1), box_quality(x, y, [32, 32, 63, 63])["ssim"]
    (30.1, 1.0)
    """
    height, width = x.shape[-2:]
    left, top = max(0, int(box[0])), max(0, int(box[1]))
    right, bottom = min(width, int(box[2]) + 1), min(height, int(box[3]) + 1)
    crop, crop_adv = x[None, :, top:bottom, left:right], x_adv[None, :, top:bottom, left:right]
    with torch.no_grad():
        return {"psnr": float(psnr(crop, crop_adv)[0]), "ssim": float(ssim(crop, crop_adv)[0])}


VIF_MIN_SIDE = 41
"""VIF's four-scale pyramid needs images at least this many pixels on each side."""
VIF_MAX_PIXELS = 3_000_000
"""Above this the report leaves VIF out: it costs about 1.2 s per megapixel on one CPU thread."""


def vif(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Visual information fidelity (pixel domain, VIFp; Sheikh & Bovik, 2006) of `y` against the reference `x`,
    on luma in 0–255 units as it was defined and validated: 1 for identical images, lower as information is lost.

    >>> x = torch.rand(1, 3, 64, 64); float(vif(x, x))
    1.0
    """
    from torchmetrics.functional.image import visual_information_fidelity

    def luma(images: torch.Tensor) -> torch.Tensor:
        return 255 * luminance(images)

    return visual_information_fidelity(luma(y), luma(x), sigma_n_sq=2.0, reduction="none")


def quality_report(x: torch.Tensor, x_adv: torch.Tensor) -> list[dict[str, float]]:
    """Per-image metrics: PSNR, SSIM, MS-SSIM, GMSD, VIF (left out for images under 41 pixels a side or over
    `VIF_MAX_PIXELS`), and the L2 and L∞ norms of the change (in [0,1] units)."""
    with torch.no_grad():
        d = (x_adv - x).flatten(1)
        cols = {
            "psnr": psnr(x, x_adv),
            "ssim": ssim(x, x_adv),
            "ms_ssim": ms_ssim(x, x_adv),
            "gmsd": gmsd(x, x_adv),
            "l2": d.norm(dim=1),
            "linf": d.abs().amax(1),
        }
        if min(x.shape[-2:]) >= VIF_MIN_SIDE and x.shape[-2] * x.shape[-1] <= VIF_MAX_PIXELS:
            cols["vif"] = vif(x, x_adv)
    return [{k: float(v[i]) for k, v in cols.items()} for i in range(x.shape[0])]
