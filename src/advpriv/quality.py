"""Image quality: PSNR, SSIM, MS-SSIM, gradient-magnitude similarity and visual information fidelity, as metrics
and as differentiable losses.

All functions take float RGB batches (N,3,H,W) in [0,1] and return one value per image (N,).
SSIM and MS-SSIM are pytorch-msssim's (its Gaussian window, the same values), image gradients kornia's Sobel
(the same values), VIF torchmetrics' (up to float rounding). SSIM, MS-SSIM and GMSD are computed only around the
pixels that changed: elsewhere their maps are exactly 1, so a photo whose faces alone were protected is measured at
the cost of the faces.

Example:
    >>> x = torch.rand(2, 3, 64, 64); y = (x + 0.01).clamp(0, 1)
    >>> psnr(x, y).shape
    torch.Size([2])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pytorch_msssim.ssim import _fspecial_gauss_1d

from .filters import symmetric_filter

Box = tuple[int, int, int, int]  # top, left, bottom, right; ends excluded
GMS_C = 170.0 / 255.0**2
"""The GMSD stability constant of Xue et al. (2014), 170 on 0–255 images, rescaled to [0,1]."""


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB; infinite for identical images."""
    return _decibels((x - y).pow(2).flatten(1).mean(1))


def _decibels(mse: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(1.0 / mse)


def _window(x: torch.Tensor, largest: int = 11, scales: int = 1) -> int:
    """The largest odd Gaussian window ≤ `largest` that fits the image at the coarsest scale."""
    side = min(x.shape[-2:])
    win = largest
    while win > 3 and side <= (win - 1) * 2 ** (scales - 1):
        win -= 2
    return win


SSIM_K = (0.01, 0.03)  # pytorch-msssim's (and Wang et al.'s) constants, for data range 1
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_taps(size: int, sigma: float = 1.5) -> tuple[float, ...]:
    """pytorch-msssim's Gaussian window of `size` taps (sigma 1.5 for SSIM), summing to 1; symmetric."""
    return tuple(_fspecial_gauss_1d(size, sigma).flatten().tolist())


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N,C,H,W) blurred by a Gaussian of `sigma` pixels reaching 3σ each way, edges replicated, same shape.

    >>> gaussian_blur(torch.rand(1, 3, 20, 24), 1.0).shape
    torch.Size([1, 3, 20, 24])
    """
    taps = gaussian_taps(2 * math.ceil(3 * sigma) + 1, sigma)
    return symmetric_filter(F.pad(x, [len(taps) // 2] * 4, mode="replicate"), taps)


def _blur(images: torch.Tensor, taps: Sequence[float]) -> torch.Tensor:
    """pytorch-msssim's `gaussian_filter` (valid, separable; an axis shorter than the window is left unfiltered),
    as `advpriv.filters.symmetric_filter`: the same values, faster on a CPU.

    >>> import warnings; from pytorch_msssim.ssim import gaussian_filter
    >>> x = torch.rand(1, 3, 40, 9, requires_grad=True); win = _fspecial_gauss_1d(11, 1.5).repeat(3, 1, 1, 1)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     reference = gaussian_filter(x, win)
    >>> g = torch.rand_like(reference); ours = _blur(x, gaussian_taps(11))
    >>> float((ours - reference).detach().abs().max()) < 1e-6
    True
    >>> mine, = torch.autograd.grad(ours, x, g); theirs, = torch.autograd.grad(reference, x, g)
    >>> float((mine - theirs).abs().max()) < 1e-6
    True
    """
    dims = tuple(dim for dim in (-2, -1) if images.shape[dim] >= len(taps))
    return symmetric_filter(images, taps, dims=dims) if dims else images


def _ssim_maps(mu_x: torch.Tensor, mu_y: torch.Tensor, sigma_xx: torch.Tensor, sigma_yy: torch.Tensor,
               sigma_xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The SSIM map and its contrast-structure part from local means, variances and covariance."""
    c1, c2 = SSIM_K[0] ** 2, SSIM_K[1] ** 2
    cs = (2 * sigma_xy + c2) / (sigma_xx + sigma_yy + c2)
    return (2 * mu_x * mu_y + c1) / (mu_x.pow(2) + mu_y.pow(2) + c1) * cs, cs


def _local_ssim(x: torch.Tensor, y: torch.Tensor, window: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    mu_x, mu_y = _blur(x, window), _blur(y, window)
    return _ssim_maps(mu_x, mu_y, _blur(x * x, window) - mu_x.pow(2), _blur(y * y, window) - mu_y.pow(2),
                      _blur(x * y, window) - mu_x * mu_y)


def _changed_box(x: torch.Tensor, y: torch.Tensor, within: Box | None = None) -> Box | None:
    """(top, left, bottom, right), ends excluded, of the pixels where any image or channel of x and y differ;
    only the box `within` is searched when given (x and y are known to be equal outside it)."""
    top, left = within[:2] if within else (0, 0)
    if within:
        x, y = (t[..., within[0] : within[2], within[1] : within[3]] for t in (x, y))
    changed = (x != y).reshape(-1, *x.shape[-2:]).any(0)
    rows, cols = changed.any(1).nonzero().flatten(), changed.any(0).nonzero().flatten()
    if not len(rows):
        return None
    return top + int(rows[0]), left + int(cols[0]), top + int(rows[-1]) + 1, left + int(cols[-1]) + 1


def _around_changes(map_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                    reach: int, shrink: int, full_hw: tuple[int, int] | None = None,
                    within: Box | None = None) -> tuple[torch.Tensor, int]:
    """`map_of(x, y) − 1` in float64 where it can be non-zero, and the number of positions of the whole map.

    `map_of` must be exactly 1 wherever x and y are equal within `reach` pixels, and its map `shrink` pixels
    shorter than its input on each axis (a valid convolution) or 0 (a padded one). Only a crop around the pixels
    that differ is computed, unless that crop is over half the image. `full_hw`: x and y are a crop, holding every
    change with `reach` to spare, of images this size. `within`: as in `_changed_box`.
    """
    height, width = x.shape[-2:]
    full_height, full_width = full_hw or (height, width)
    full = max(full_height - shrink, 1) * max(full_width - shrink, 1)
    top, left, bottom, right = _changed_box(x, y, within) or (0, 0, 1, 1)
    top, left, bottom, right = max(0, top - reach), max(0, left - reach), min(height, bottom + reach), min(width, right + reach)
    if 2 * (bottom - top) * (right - left) > height * width or min(height, width) <= 2 * reach:
        top, left, bottom, right = 0, 0, height, width
    crop = (slice(None), slice(None), slice(top, bottom), slice(left, right))
    return map_of(x[crop], y[crop]).double() - 1, full


def _mean_map(map_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
              window: int, full_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """Per image and channel (..., N, C), the mean of an SSIM-style map (a valid `window`-pixel Gaussian filter);
    `full_hw` as in `_around_changes`."""
    shrink = window - 1 if min(full_hw or x.shape[-2:]) >= window else 0
    excess, full = _around_changes(map_of, x, y, window - 1, shrink, full_hw)
    return (1 + excess.flatten(-2).sum(-1) / full).float()


def _pyramid_windows(sides: Sequence[int], start: int, end: int, reach: int) -> list[tuple[int, int]]:
    """Per level of a halving pyramid with these `sides` (F.avg_pool2d(·, 2, padding=side % 2)), on one axis, a
    window [a, b) of that level such that pooling level k's window, zero-padded where it runs one past the image,
    gives level k+1's exactly, and each holds the changes [start, end) of level 0, as they spread, with `reach`
    to spare.

    >>> _pyramid_windows([101, 51, 26], 40, 45, 3)
    [(25, 57), (13, 29), (7, 15)]
    """
    changes = [(start, end)]
    for side in sides[:-1]:
        lo, hi = changes[-1]
        changes.append(((lo + side % 2) // 2, (hi - 1 + side % 2) // 2 + 1))
    lo, hi = changes[-1]
    top, bottom = max(0, lo - reach), min(sides[-1], hi + reach)
    while True:
        windows = [(top, bottom)]
        for side in reversed(sides[:-1]):
            a, b = windows[0]
            windows.insert(0, (2 * max(a, 0) - side % 2, 2 * b - side % 2))  # -1: the zero pad, not level data
        low = [a <= max(0, lo - reach) for (a, _), (lo, _) in zip(windows, changes)]
        high = [b >= min(side, hi + reach) for (_, b), (_, hi), side in zip(windows, changes, sides)]
        if all(low) and all(high):
            return windows
        top, bottom = top - (not all(low)), bottom + (not all(high))


def _pool_window(x: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
    """`x[..., rows, cols]` of an image, zero where the window runs one past a border, halved by 2×2 means."""
    (top, bottom), (left, right) = rows, cols
    height, width = x.shape[-2:]
    crop = x[..., max(top, 0) : min(bottom, height), max(left, 0) : min(right, width)]
    crop = F.pad(crop, (max(-left, 0), max(right - width, 0), max(-top, 0), max(bottom - height, 0)))
    return F.avg_pool2d(crop, 2)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004), 11×11 Gaussian window, smaller for tiny images.

    >>> x = torch.rand(1, 3, 300, 300); y = x.clone(); y[:, :, 100:120, 200:230] += 0.05
    >>> from pytorch_msssim import ssim as reference
    >>> abs(float(ssim(x, y) - reference(x, y, data_range=1.0, size_average=False))) < 1e-6
    True
    """
    win = _window(x)
    window = gaussian_taps(win)
    return _mean_map(lambda a, b: _local_ssim(a, b, window)[0], x, y, win).mean(1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM with the standard five scales; the window shrinks for small images.

    Images whose short side is under 49 pixels are too small for five scales: plain SSIM is returned.

    >>> x = torch.rand(1, 3, 300, 300); y = x.clone(); y[:, :, 100:120, 200:230] += 0.05
    >>> from pytorch_msssim import ms_ssim as reference
    >>> abs(float(ms_ssim(x, y) - reference(x, y, data_range=1.0, size_average=False))) < 1e-6
    True
    """
    return _ssim_and_ms_ssim(x, y)[1]


def _ssim_and_ms_ssim(x: torch.Tensor, y: torch.Tensor, within: Box | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`ssim(x, y)` and `ms_ssim(x, y)`, sharing the finest scale's local statistics where their windows agree
    (`within`: as in `_changed_box`).

    Every scale is measured on a window of it that holds the changes with the filter's reach to spare; the rest of
    each map is exactly 1 (see `_around_changes`).

    >>> x = torch.rand(2, 3, 200, 170); y = x.clone(); y[:, :, 100:120, 0:30] += 0.05
    >>> both = _ssim_and_ms_ssim(x, y)
    >>> bool(torch.allclose(both[0], ssim(x, y))), bool(torch.allclose(both[1], ms_ssim(x, y)))
    (True, True)
    """
    win = _window(x, scales=5)
    if min(x.shape[-2:]) <= (win - 1) * 16:
        plain = ssim(x, y)
        return plain, plain
    shared = win == _window(x)
    window = gaussian_taps(win)
    sides = [x.shape[-2:]]
    for _ in MS_SSIM_WEIGHTS[1:]:
        sides.append(tuple((side + side % 2) // 2 for side in sides[-1]))
    box = _changed_box(x, y, within) or (0, 0, 1, 1)
    rows = _pyramid_windows([h for h, _ in sides], box[0], box[2], win - 1)
    cols = _pyramid_windows([w for _, w in sides], box[1], box[3], win - 1)
    plain = None if shared else ssim(x, y)
    x, y = (t[..., max(rows[0][0], 0) : rows[0][1], max(cols[0][0], 0) : cols[0][1]] for t in (x, y))
    levels = []
    for level, full_hw in enumerate(sides):
        last = level == len(MS_SSIM_WEIGHTS) - 1
        if level == 0 and shared:
            both = _mean_map(lambda a, b: torch.stack(_local_ssim(a, b, window)), x, y, win, full_hw)
            plain, scale = both[0].mean(1), both[1]
        else:
            scale = _mean_map(lambda a, b: _local_ssim(a, b, window)[0 if last else 1], x, y, win, full_hw)
        levels.append(torch.relu(scale))
        if not last:
            # x, y hold this level's window clipped to the image; pool it, padded as the whole level would be
            (top, bottom), (left, right) = rows[level], cols[level]
            here_rows = (top - max(top, 0), bottom - max(top, 0))
            here_cols = (left - max(left, 0), right - max(left, 0))
            x, y = (_pool_window(t, here_rows, here_cols) for t in (x, y))
    weights = torch.tensor(MS_SSIM_WEIGHTS).view(-1, 1, 1)
    return plain, torch.prod(torch.stack(levels) ** weights, dim=0).mean(1)  # type: ignore[return-value]


def luminance(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma, (N,1,H,W): kornia's `rgb_to_grayscale`, up to float rounding.

    >>> from kornia.color import rgb_to_grayscale
    >>> x = torch.rand(2, 3, 5, 6); bool(torch.allclose(luminance(x), rgb_to_grayscale(x), atol=1e-7))
    True
    """
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def gradient_magnitude(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Sobel gradient magnitude of the luminance (kornia's normalised Sobel, replicated border), smooth at zero so
    it can be differentiated; (N,1,H,W). Shifted slices, not kornia's convolution: the same values, faster.

    >>> from kornia.filters import spatial_gradient
    >>> x = torch.rand(2, 3, 20, 30)
    >>> g = spatial_gradient(luminance(x), mode="sobel", normalized=True)
    >>> bool(torch.allclose(gradient_magnitude(x), (g.pow(2).sum(2) + 1e-12).sqrt(), atol=1e-6))
    True
    """
    p = F.pad(luminance(x), (1, 1, 1, 1), mode="replicate")
    rows = p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]
    cols = p[..., :-2] + 2 * p[..., 1:-1] + p[..., 2:]
    gx, gy = rows[..., 2:] - rows[..., :-2], cols[..., 2:, :] - cols[..., :-2, :]
    return ((gx.pow(2) + gy.pow(2)) / 64 + eps).sqrt()


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
    return _gmsd(x, y, eps)


def _gmsd(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-10, within: Box | None = None) -> torch.Tensor:
    excess, full = _around_changes(gms_map, x, y, reach=2, shrink=0, within=within)
    total, squares = excess.flatten(1).sum(1) / full, excess.pow(2).flatten(1).sum(1) / full
    return ((squares - total.pow(2)).clamp(min=0) + eps).sqrt().float()


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


STRUCTURE_PIXELS = 2**19
"""Above this many pixels per image (about 724×724), `QualityLoss` weighs structure (SSIM, GMSD) on a copy
downscaled by a power of two to at most this size; the energy term (MSE) stays at full resolution."""


def structure_scale(height: int, width: int) -> int:
    """The power-of-two factor `QualityLoss` downscales a height×width image by for its structural terms.

    >>> structure_scale(218, 178), structure_scale(1163, 1033), structure_scale(3000, 4000)
    (1, 2, 8)
    """
    factor = 1
    while height * width > STRUCTURE_PIXELS * factor * factor:
        factor *= 2
    return factor


class _BoxDown(torch.autograd.Function):
    """`F.avg_pool2d(x, factor)` with a gradient that copies blocks instead of scattering (faster on a CPU).

    >>> x = torch.rand(1, 3, 9, 14, requires_grad=True); g = torch.rand(1, 3, 4, 7)
    >>> ours, = torch.autograd.grad(_BoxDown.apply(x, 2), x, g); theirs, = torch.autograd.grad(F.avg_pool2d(x, 2), x, g)
    >>> bool(torch.equal(ours, theirs))
    True
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: int) -> torch.Tensor:  # type: ignore[override]
        ctx.shape, ctx.factor = x.shape, factor
        return F.avg_pool2d(x, factor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        f, (height, width) = ctx.factor, grad.shape[-2:]
        spread = grad.new_zeros(ctx.shape) if ctx.shape[-2] % f or ctx.shape[-1] % f else grad.new_empty(ctx.shape)
        blocks = (grad / f**2)[..., :, None, :, None].expand(*grad.shape[:-2], height, f, width, f)
        spread[..., : height * f, : width * f] = blocks.reshape(*grad.shape[:-2], height * f, width * f)
        return spread, None


class _MeanSquare(torch.autograd.Function):
    """Per image (N,), the mean squared difference of y and x (N,...), differentiable in y; its gradient in one pass.

    >>> y = torch.rand(2, 3, 4, 5, requires_grad=True); x = torch.rand(2, 3, 4, 5); g = torch.rand(2)
    >>> ours, = torch.autograd.grad(_MeanSquare.apply(y, x), y, g)
    >>> bool(torch.allclose(ours, torch.autograd.grad((y - x).pow(2).flatten(1).mean(1), y, g)[0]))
    True
    """

    @staticmethod
    def forward(ctx, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        difference = y - x
        ctx.save_for_backward(difference)
        return difference.pow(2).flatten(1).mean(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (difference,) = ctx.saved_tensors
        scale = grad * (2 / difference[0].numel())
        return difference * scale.view(-1, *[1] * (difference.ndim - 1)), None


class QualityLoss:
    """`quality_loss` against a fixed clean batch `x`, whose own SSIM statistics and gradient magnitudes are
    computed once instead of at every step of an optimisation.

    Images over `STRUCTURE_PIXELS` (a large face region of a 12-megapixel photo) have their structural terms
    weighed at a `structure_scale` box-downscaled size, where they cost a quarter per halving: the perturbation
    that fools a face model is cut from a pyramid-downscaled chip anyway. Smaller images are weighed as they are.

    >>> x = torch.rand(2, 3, 32, 32); y = (x + 0.02 * torch.randn_like(x)).clamp(0, 1)
    >>> loss = QualityLoss(x); w = QualityWeights()
    >>> bool(torch.allclose(loss(y), w.alpha * (x - y).pow(2).mean((1, 2, 3)) + w.beta * (1 - ssim(x, y)) + w.gamma * gmsd(x, y)))
    True
    >>> loss.select(torch.tensor([1]))(y[1:]).shape
    torch.Size([1])
    """

    def __init__(self, x: torch.Tensor, weights: QualityWeights = QualityWeights()) -> None:
        self.x, self.weights = x, weights
        self.factor = structure_scale(*x.shape[-2:])
        self.seen = self._view(x)
        self.win = gaussian_taps(_window(self.seen))
        self.mu = _blur(self.seen, self.win)
        self.sigma_sq = _blur(self.seen * self.seen, self.win) - self.mu.pow(2)
        self.edges = gradient_magnitude(self.seen)

    def _view(self, images: torch.Tensor) -> torch.Tensor:
        return _BoxDown.apply(images, self.factor) if self.factor > 1 else images

    def select(self, index: torch.Tensor) -> QualityLoss:
        """The same loss against the clean images `index` only."""
        chosen = object.__new__(QualityLoss)
        chosen.weights, chosen.win, chosen.factor = self.weights, self.win, self.factor
        chosen.x, chosen.seen, chosen.mu, chosen.sigma_sq, chosen.edges = (
            t[index] for t in (self.x, self.seen, self.mu, self.sigma_sq, self.edges))
        return chosen

    def ssim(self, y: torch.Tensor, seen: bool = False) -> torch.Tensor:
        """SSIM of `y` against the clean images, as `ssim` computes it (at `structure_scale`; `seen`: `y` is
        already at that scale)."""
        y = y if seen else self._view(y)
        mu_y = _blur(y, self.win)
        sigma_y_sq, sigma_xy = _blur(y * y, self.win) - mu_y.pow(2), _blur(self.seen * y, self.win) - self.mu * mu_y
        return _ssim_maps(self.mu, mu_y, self.sigma_sq, sigma_y_sq, sigma_xy)[0].flatten(2).mean(-1).mean(1)

    def gmsd(self, y: torch.Tensor, eps: float = 1e-10, seen: bool = False) -> torch.Tensor:
        """GMSD of `y` against the clean images, as `gmsd` computes it (at `structure_scale`; `seen` as in `ssim`)."""
        return _deviation(_gms(self.edges, gradient_magnitude(y if seen else self._view(y))), eps)

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        w, seen = self.weights, self._view(y)
        mse = _MeanSquare.apply(y, self.x)
        return w.alpha * mse + w.beta * (1 - self.ssim(seen, seen=True)) + w.gamma * self.gmsd(seen, seen=True)


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
"""Above this the report leaves VIF out: it costs about 0.2 s per megapixel on one CPU thread
(`bench/speed_checks.py vif`)."""


def vif(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Visual information fidelity (pixel domain, VIFp; Sheikh & Bovik, 2006) of `y` against the reference `x`,
    on luma in 0–255 units as it was defined and validated: 1 for identical images, lower as information is lost.
    torchmetrics' `visual_information_fidelity(luma(y), luma(x), sigma_n_sq=2.0)` up to float rounding, without
    importing torchmetrics (1.5 s: scipy and matplotlib come with it).

    >>> from torchmetrics.functional.image import visual_information_fidelity
    >>> x = torch.rand(2, 3, 64, 80); y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    >>> float(vif(x, x)[0])
    1.0
    >>> theirs = visual_information_fidelity(255 * luminance(y), 255 * luminance(x), reduction="none")
    >>> bool(torch.allclose(vif(x, y), theirs, rtol=1e-4))
    True
    """
    if min(x.shape[-2:]) < VIF_MIN_SIDE:
        raise ValueError(f"VIF needs images at least {VIF_MIN_SIDE} pixels on each side, got "
                         f"{x.shape[-2]}×{x.shape[-1]}; measure a larger image, or leave VIF out")
    reference, distorted, noise, eps = 255 * luminance(x), 255 * luminance(y), 2.0, 1e-10
    kept, total = torch.zeros(x.shape[0]), torch.zeros(x.shape[0])
    for scale in range(4):
        size = 2 ** (4 - scale) + 1
        taps = gaussian_taps(size, size / 5)
        if scale:
            reference, distorted = (_blur(image, taps)[..., ::2, ::2] for image in (reference, distorted))
        mu_r, mu_d = _blur(reference, taps), _blur(distorted, taps)
        var_r = (_blur(reference * reference, taps) - mu_r * mu_r).clamp(min=0)
        var_d = (_blur(distorted * distorted, taps) - mu_d * mu_d).clamp(min=0)
        cov = _blur(reference * distorted, taps) - mu_r * mu_d
        gain = cov / (var_r + eps)
        var_v = var_d - gain * cov
        flat, blank = var_r < eps, var_d < eps
        gain = torch.where(flat | blank, 0.0, gain)
        var_v = torch.where(blank, 0.0, torch.where(flat, var_d, var_v))
        var_r = torch.where(flat, 0.0, var_r)
        negative = gain < 0
        var_v = torch.where(negative, var_d, var_v).clamp(min=eps)
        gain = torch.where(negative, 0.0, gain)
        kept += torch.log10(1 + gain * gain * var_r / (var_v + noise)).sum((1, 2, 3))
        total += torch.log10(1 + var_r / noise).sum((1, 2, 3))
    return kept / total


def quality_report(x: torch.Tensor, x_adv: torch.Tensor, within: Box | None = None) -> list[dict[str, float]]:
    """Per-image metrics: PSNR, SSIM, MS-SSIM, GMSD, VIF (left out for images under 41 pixels a side or over
    `VIF_MAX_PIXELS`), and the L2 and L∞ norms of the change (in [0,1] units).

    within: a box (top, left, bottom, right; ends excluded) outside which x and x_adv are known to be equal, such
    as the region a face protection changed: only it is searched for changes (the metrics are the whole images').

    >>> x = torch.rand(1, 3, 200, 300); y = x.clone(); y[:, :, 50:60, 70:90] += 0.02
    >>> quality_report(x, y, within=(40, 60, 100, 120)) == quality_report(x, y)
    True
    """
    with torch.no_grad():
        top, left, bottom, right = _changed_box(x, x_adv, within) or (0, 0, 1, 1)
        d = (x_adv - x)[..., top:bottom, left:right].flatten(1)  # zero elsewhere
        cols = {
            "psnr": _decibels(d.pow(2).sum(1) / x[0].numel()),
            **dict(zip(("ssim", "ms_ssim"), _ssim_and_ms_ssim(x, x_adv, within))),
            "gmsd": _gmsd(x, x_adv, within=within),
            "l2": d.norm(dim=1),
            "linf": d.abs().amax(1),
        }
        if min(x.shape[-2:]) >= VIF_MIN_SIDE and x.shape[-2] * x.shape[-1] <= VIF_MAX_PIXELS:
            cols["vif"] = vif(x, x_adv)
    return [{k: float(v[i]) for k, v in cols.items()} for i in range(x.shape[0])]
