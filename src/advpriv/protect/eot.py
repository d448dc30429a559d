"""Expectation over transformations (EOT): the re-encoding a posted photo meets, as differentiable random samples.

A platform resizes a photo with its own kernel and rounds it to 8 bits, re-encodes it as JPEG, and a scraper may
blur or crop it a little differently. `EOT` draws one such transformation per call; `Robust` wraps an objective so
that a candidate counts as protected only when it fools the model on the image itself *and* on a fresh draw, and
its gradient comes from the draw (Athalye et al., 2018). Every transformation maps (N,3,H,W) in [0,1] to images
of the same size (`resize_to` excepted), so faces found on the photo stay where they were.

Example:
    >>> import torch
    >>> eot = EOT(EOTConfig(jpeg=(80, 90), jpeg_p=1.0), seed=0)
    >>> x = torch.rand(2, 3, 40, 48, requires_grad=True)
    >>> y = eot(x)
    >>> y.shape, bool((y - x).abs().max() > 0)
    (torch.Size([2, 3, 40, 48]), True)
    >>> y.sum().backward(); bool(x.grad.abs().sum() > 0)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..targets.preprocess import short_side_shape
from .objectives import Objective

KERNELS = ("bilinear", "bicubic")


def round_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels in the forward pass, identity in the backward pass (straight-through)."""
    return x + (x.mul(255).round().div(255) - x).detach()


class _Clamped8bit(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return x.clamp(0, 1).mul_(255).round_().div_(255)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return torch.where((x < 0) | (x > 1), 0.0, grad)


def clamped_8bit(x: torch.Tensor) -> torch.Tensor:
    """`round_8bit(x.clamp(0, 1))` with the same gradient, in fewer passes over the image (MND calls it every step).

    >>> x = torch.linspace(-0.1, 1.1, 999, requires_grad=True); g = torch.rand(999)
    >>> bool(torch.equal(clamped_8bit(x), round_8bit(x.clamp(0, 1))))
    True
    >>> ours, = torch.autograd.grad(clamped_8bit(x), x, g)
    >>> bool(torch.equal(ours, torch.autograd.grad(round_8bit(x.clamp(0, 1)), x, g)[0]))
    True
    """
    return _Clamped8bit.apply(x)


def jpeg(x: torch.Tensor, quality: float) -> torch.Tensor:
    """Differentiable JPEG encode-decode at `quality` (kornia's codec: 4:2:0, standard tables).

    >>> jpeg(torch.full((1, 3, 16, 16), 0.5), 85).sub(0.5).abs().max() < 0.01
    tensor(True)
    """
    from kornia.enhance import jpeg_codec_differentiable

    quality_t = torch.tensor([float(quality)], device=x.device, dtype=x.dtype)
    return jpeg_codec_differentiable(x.clamp(0, 1), quality_t).clamp(0, 1)


def resize(x: torch.Tensor, size: tuple[int, int], kernel: str = "bilinear") -> torch.Tensor:
    """Resize to `size` (H,W) as Pillow does: antialiased when shrinking, then rounded to 8 bits.

    >>> resize(torch.rand(1, 3, 64, 80), (32, 40), "bicubic").shape
    torch.Size([1, 3, 32, 40])
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    out = F.interpolate(x, size=size, mode=kernel, align_corners=False, antialias=shrink)
    return clamped_8bit(out)


def resize_roundtrip(x: torch.Tensor, scale: float, kernel: str = "bilinear") -> torch.Tensor:
    """Shrink by `scale` (8-bit, as a platform would) and enlarge back, so coordinates on the photo still hold.

    >>> resize_roundtrip(torch.rand(1, 3, 50, 60), 0.5).shape
    torch.Size([1, 3, 50, 60])
    """
    height, width = x.shape[-2:]
    small = resize(x, (max(1, round(height * scale)), max(1, round(width * scale))), kernel)
    return F.interpolate(small, size=(height, width), mode=kernel, align_corners=False).clamp(0, 1)


def resize_short_side_to(x: torch.Tensor, short: int, kernel: str = "bilinear") -> torch.Tensor:
    """Resize so the shorter side is `short` pixels, Pillow-style (the view of a classifier's deployment)."""
    return resize(x, short_side_shape(*x.shape[-2:], short), kernel)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur with standard deviation `sigma` pixels (reflect padding)."""
    from kornia.filters import gaussian_blur2d

    radius = max(1, math.ceil(3 * sigma))
    return gaussian_blur2d(x, (2 * radius + 1, 2 * radius + 1), (sigma, sigma), border_type="reflect")


def translate(x: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """Shift by (dx, dy) pixels, bilinear, edges repeated: a crop taken a little off where the optimiser took it."""
    height, width = x.shape[-2:]
    theta = torch.tensor([[1.0, 0.0, -2 * dx / width], [0.0, 1.0, -2 * dy / height]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta[None].expand(len(x), -1, -1), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass(frozen=True)
class EOTConfig:
    """Which transformations are drawn, and how often (each applied independently, in this order).

    resize_to: classifiers: resize the shorter side to this many pixels (Pillow-style, random kernel) every time,
        as the deployment in front of the model does; None for faces, which get `scale` round trips instead.
    scale, scale_p: shrink by a factor drawn in `scale` and enlarge back, with probability `scale_p`.
    jpeg, jpeg_p: JPEG at a quality drawn in `jpeg`, with probability `jpeg_p`.
    blur, blur_p: Gaussian blur with sigma drawn in `blur`, with probability `blur_p`.
    shift: a translation of up to this many pixels each way (input diversity); 0 for none.
    """

    resize_to: int | None = None
    scale: tuple[float, float] | None = (0.5, 1.0)
    scale_p: float = 0.5
    jpeg: tuple[float, float] | None = (70.0, 95.0)
    jpeg_p: float = 0.5
    blur: tuple[float, float] | None = (0.3, 1.0)
    blur_p: float = 0.2
    shift: float = 0.0


class EOT:
    """Draws one random transformation per call from an `EOTConfig`; seeded, so runs repeat."""

    def __init__(self, config: EOTConfig = EOTConfig(), seed: int = 0) -> None:
        self.config = config
        self.generator = torch.Generator().manual_seed(seed)

    def _uniform(self, low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=self.generator))

    def _happens(self, p: float) -> bool:
        return float(torch.rand((), generator=self.generator)) < p

    def _kernel(self) -> str:
        return KERNELS[int(torch.randint(len(KERNELS), (), generator=self.generator))]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.shift > 0:
            x = translate(x, self._uniform(-c.shift, c.shift), self._uniform(-c.shift, c.shift))
        if c.scale is not None and self._happens(c.scale_p):
            x = resize_roundtrip(x, self._uniform(*c.scale), self._kernel())
        if c.jpeg is not None and self._happens(c.jpeg_p):
            x = jpeg(x, self._uniform(*c.jpeg))
        if c.blur is not None and self._happens(c.blur_p):
            x = blur(x, self._uniform(*c.blur))
        if c.resize_to is not None:
            x = resize_short_side_to(x, c.resize_to, self._kernel())
        return x


class Robust:
    """An objective that holds only when it holds on the image and, with its full margin, on one fresh EOT draw.

    The loss (and so the gradient) is the draw's, and the draw counts only at zero loss: a classifier's top-1 must
    be wrong by κ, not just wrong, or MND's search, which trades every spare margin back for quality, keeps images
    that sit on the boundary and fall back over it at the next re-encoding. The image itself is checked without
    gradient, so a kept result always fools the models exactly as written.

    >>> from advpriv.protect.objectives import Misclassify
    >>> from advpriv.targets import ClassifierTarget
    >>> target = ClassifierTarget(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(768, 3)))
    >>> robust = Robust(Misclassify(target, torch.tensor([0])), EOT(EOTConfig(jpeg_p=1.0)))
    >>> loss, success = robust(torch.rand(1, 3, 16, 16))
    >>> loss.shape, success.dtype
    (torch.Size([1]), torch.bool)
    """

    def __init__(self, objective: Objective, eot: EOT) -> None:
        self.objective, self.eot = objective, eot

    @property
    def select(self) -> Callable[[torch.Tensor], Robust] | None:
        """The same goal for the images `index` of the batch only, drawing from the same EOT stream; None when
        the objective inside cannot select."""
        inner = getattr(self.objective, "select", None)
        return None if inner is None else lambda index: Robust(inner(index), self.eot)

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss, transformed = self.objective(self.eot(images))
        success = transformed & (loss <= 0)
        if bool(success.any()):  # the image itself matters only where the draw succeeded: a forward pass saved
            with torch.no_grad():
                success &= self.objective(images)[1]
        return loss, success
