"""A classifier's deployment as a few fixed views, judged together in one batched forward pass.

In front of a deployed classifier sits a resize of the shorter side (Pillow, bilinear or bicubic, to 8 bits), often
after the platform's JPEG re-save of the file. Those resizes are few and deterministic, so instead of drawing one at
random per step (as `advpriv.protect.eot.Robust` does) `Views` shows the model the resize with one kernel and, with
the other kernel, the resize of a JPEG of the file at a quality drawn per step, both in one batch (`rotate`: the
kernels swap every step; otherwise every kernel is shown both ways, four views). A candidate counts only when every
view of the step misclassifies it by the margin κ; the loss, and so the gradient, is the mean over views.

The JPEG is Pillow's own in the forward pass, so a margin is reached on the codec a platform runs; its gradient is
kornia's differentiable codec on photos up to `SOFT_JPEG_PIXELS` and the identity above (a differentiable JPEG of a
3-megapixel photo takes seconds per step, where Pillow's takes milliseconds).

Example:
    >>> import torch
    >>> from advpriv.protect.objectives import Misclassify
    >>> from advpriv.targets import ClassifierTarget
    >>> target = ClassifierTarget(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(),
    ...                                               torch.nn.Linear(48, 3)))
    >>> views = Views(Misclassify(target, torch.tensor([0, 2])), ViewsConfig(short_side=20))
    >>> loss, success = views(torch.rand(2, 3, 24, 30))
    >>> loss.shape, success.dtype, views.count
    (torch.Size([2]), torch.bool, 2)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .eot import KERNELS, jpeg, resize_short_side_to
from .objectives import Misclassify
from .reencode import pillow_jpeg

SOFT_JPEG_PIXELS = 512 * 512
"""Largest image (H·W) whose JPEG gradient comes from kornia's differentiable codec, whose cost grows with the
photo's pixels (bench/results/classifier_profile_wild.md: the JPEG view is 12 % of a full-size photo's time even
with the identity gradient)."""


def exact_jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    """Pillow's JPEG at `quality` in the forward pass (what a platform writes). The gradient is kornia's
    differentiable codec's for images up to `SOFT_JPEG_PIXELS`, the identity above: kornia's own forward softens
    the rounding, and a margin reached on the soft codec is partly lost on the real one.

    >>> x = torch.rand(1, 3, 16, 16, requires_grad=True)
    >>> y = exact_jpeg(x, 85); y.sum().backward()
    >>> bool(torch.equal(y.detach()[0], pillow_jpeg(x.detach()[0], 85))), bool(x.grad.abs().sum() > 0)
    (True, True)
    """
    soft = jpeg(images, quality) if images.shape[-2] * images.shape[-1] <= SOFT_JPEG_PIXELS else images
    with torch.no_grad():
        real = torch.stack([pillow_jpeg(image, quality) for image in images])
    return real + (soft - soft.detach())


@dataclass(frozen=True)
class ViewsConfig:
    """short_side: the deployment's resize of the shorter side (None: the model reads the image at its own size,
    and the views are the image and its JPEG); kernels: the resize kernels; jpeg: the range the
    JPEG quality is drawn from, per step; rotate: two views per step, the kernels taking turns (see the module's
    docstring), else every kernel with and without JPEG; seed: the JPEG qualities' random stream, so runs repeat."""

    short_side: int | None
    kernels: tuple[str, ...] = KERNELS
    jpeg: tuple[int, int] = (70, 95)
    rotate: bool = True
    seed: int = 0


class Views:
    """`Misclassify` judged on the deployment's views of each image (see the module's docstring)."""

    def __init__(self, objective: Misclassify, config: ViewsConfig, generator: torch.Generator | None = None,
                 step: list[int] | None = None) -> None:
        self.objective, self.config = objective, config
        self.generator = generator or torch.Generator().manual_seed(config.seed)
        self.step = step if step is not None else [0]

    @property
    def count(self) -> int:
        """Views per image and step."""
        return 2 if self.config.rotate else 2 * len(self.config.kernels)

    def select(self, index: torch.Tensor) -> Views:
        """The same goal for the images `index` of the batch only, drawing from the same stream and turn."""
        return Views(self.objective.select(index), self.config, self.generator, self.step)

    def views(self, images: torch.Tensor) -> torch.Tensor:
        """(count·N,3,h,w), view-major: the plain resizes, then the resizes of the JPEG (one quality per step)."""
        c, turn = self.config, self.step[0]
        self.step[0] += 1
        kernels, k = c.kernels, len(c.kernels)
        plain, jpegged = ((kernels[turn % k],), (kernels[(turn + 1) % k],)) if c.rotate else (kernels, kernels)
        quality = int(torch.randint(c.jpeg[0], c.jpeg[1] + 1, (), generator=self.generator))
        compressed = exact_jpeg(images, quality)
        return torch.cat([self._resized(images, k) for k in plain] + [self._resized(compressed, k) for k in jpegged])

    def _resized(self, images: torch.Tensor, kernel: str) -> torch.Tensor:
        short = self.config.short_side
        return images if short is None else resize_short_side_to(images, short, kernel)

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, inner, repeat = len(images), self.objective, self.count
        wanted = None if inner.target_class is None else inner.target_class.repeat(repeat)
        every = Misclassify(inner.target, inner.labels.repeat(repeat), inner.kappa, wanted)
        loss, fooled = every(self.views(images))
        loss, fooled = loss.view(repeat, n), fooled.view(repeat, n)
        return loss.mean(0), (fooled & (loss <= 0)).all(0)
