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
    scale = size / min(h, w)
    new = (size, max(1, round(w * scale))) if h <= w else (max(1, round(h * scale)), size)
    return F.interpolate(x, size=new, mode="bilinear", align_corners=False, antialias=scale < 1)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Central `size`×`size` window (rounded like torchvision's CenterCrop)."""
    h, w = x.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top : top + size, left : left + size]
