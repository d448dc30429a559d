"""Differentiable resizing and cropping, so a target can see a full-resolution image and still be attacked through it.

Example:
    >>> import torch
    >>> resize_short_side(torch.rand(1, 3, 300, 400), 256).shape
    torch.Size([1, 3, 256, 341])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_short_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize so the shorter side is `size`, antialiased when shrinking (as PIL does)."""
    h, w = x.shape[-2:]
    if min(h, w) == size:
        return x
    return F.interpolate(x, size=short_side_shape(h, w, size), mode="bilinear", align_corners=False,
                         antialias=size < min(h, w))


def short_side_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) after resizing so the shorter side is `size`, keeping the aspect ratio.

    >>> short_side_shape(300, 400, 256)
    (256, 341)
    """
    scale = size / min(height, width)
    return (size, max(1, round(width * scale))) if height <= width else (max(1, round(height * scale)), size)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Central `size`×`size` window (rounded like torchvision's CenterCrop)."""
    h, w = x.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top : top + size, left : left + size]
