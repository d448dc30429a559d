"""Differentiable face chips, in the two alignments face models take, as torch operations on the full photo.

- "dlib": dlib's `extract_image_chip` (the 150-pixel chip of `get_face_chip`, padding 0.25), `extract_chip`;
- "arcface": the ArcFace 5-point template scaled to the chip size, `arcface_chip`.

dlib cuts a chip in three steps (dlib/image_transforms/interpolation.h, image_pyramid.h):
1. crop a box around the rotated chip rectangle, grown by a border;
2. halve the crop with `pyramid_down<2>` (5×5 binomial filter, stride 2, truncated to 8 bits) until the
   chip rectangle is no more than twice the chip's size, so that small chips are not aliased;
3. sample the chip from that level by bilinear interpolation (black where a neighbour is missing),
   truncated to 8 bits.
Here every step is a torch op (slicing, conv2d, grid_sample), and truncation is a straight-through
floor, so the chip of an 8-bit photo equals dlib's, and gradients flow back to every photo pixel.
The ArcFace chip is a similarity transform from 5 points (eye centres, nose tip, mouth corners) to the template,
sampled bilinearly as Pillow's affine transform does (`advpriv.faces.judges.arcface_image_chip`), but in float.

Example:
    >>> import torch
    >>> warp = chip_warp(rect=(40.0, 30.0, 139.0, 129.0), angle=0.1, size=150, image_hw=(200, 180))
    >>> extract_chip(torch.rand(2, 3, 200, 180), warp).shape
    torch.Size([2, 3, 150, 150])
    >>> arcface_chip(torch.rand(2, 3, 200, 180), arcface_template(112) + 20, size=160).shape
    torch.Size([2, 3, 160, 160])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from advpriv.filters import symmetric_filter
from advpriv.quality import gaussian_blur

Rect = tuple[float, float, float, float]  # left, top, right, bottom; dlib drectangle, inclusive
Points = Sequence[Sequence[float]] | np.ndarray  # (K,2) x, y

ALIGNMENTS = ("dlib", "arcface")
ARCFACE_SIZE = 112
ARCFACE_TEMPLATE = np.array(  # at 112 pixels: image-left eye, right eye, nose tip, left and right mouth corners
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)

_BINOMIAL_TAPS = (1.0, 4.0, 6.0, 4.0, 1.0)
_TRUNCATION_SLACK = 1e-4  # float32 error allowance so that exact 8-bit results truncate like dlib's


@dataclass(frozen=True)
class ChipWarp:
    """Where one chip comes from: a crop (top, left, bottom, right; inclusive), `levels` pyramid halvings,
    then `grid` (1,S,S,2, grid_sample coordinates) into the last level, masked by `inside` (1,1,S,S)."""

    crop: tuple[int, int, int, int]
    levels: int
    grid: torch.Tensor
    inside: torch.Tensor


def _area(rect: Rect) -> float:
    left, top, right, bottom = rect
    return 0.0 if left > right or top > bottom else (right - left + 1) * (bottom - top + 1)


def _pyramid_rect_down(rect: Rect) -> Rect:
    left, top, right, bottom = rect  # dlib's pyramid_down<2>::point_down: p/2 - (1.25, 0.75)
    return left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75


def _rotated_corners(rect: Rect, angle: float) -> list[tuple[float, float]]:
    """tl, tr, bl, br corners of `rect` rotated by `angle` about its centre (dlib's rotate_point)."""
    left, top, right, bottom = rect
    cx, cy, cos, sin = (left + right) / 2, (top + bottom) / 2, math.cos(angle), math.sin(angle)
    corners = [(left, top), (right, top), (left, bottom), (right, bottom)]
    return [(cx + cos * (x - cx) - sin * (y - cy), cy + sin * (x - cx) + cos * (y - cy)) for x, y in corners]


def _lround(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def chip_warp(rect: Rect, angle: float, size: int, image_hw: tuple[int, int]) -> ChipWarp:
    """The warp of dlib's chip_details (`rect`, `angle`, `size`×`size`) on a photo of `image_hw` pixels."""
    height, width = image_hw
    depth, grow, down = 0, 2.0, _pyramid_rect_down(rect)
    while _area(down) > size * size:
        down, depth, grow = _pyramid_rect_down(down), depth + 1, grow * 2 + 2
    xs, ys = zip(*_rotated_corners(rect, angle))
    box = (max(min(xs) - grow, 0), max(min(ys) - grow, 0), min(max(xs) + grow, width - 1), min(max(ys) + grow, height - 1))
    left, top, right, bottom = (_lround(v) for v in box)

    level_rect: Rect = (rect[0] - left, rect[1] - top, rect[2] - left, rect[3] - top)
    level_h, level_w = bottom - top + 1, right - left + 1
    for _ in range(depth):
        level_rect, level_h, level_w = _pyramid_rect_down(level_rect), (level_h - 3) // 2, (level_w - 3) // 2
    (x0, y0), (x1, y1), (x2, y2), _ = _rotated_corners(level_rect, angle)

    steps = torch.arange(size, dtype=torch.float64) / (size - 1)
    col, row = steps[None, :], steps[:, None]  # chip (0,0)→tl, (S-1,0)→tr, (0,S-1)→bl
    x = x0 + col * (x1 - x0) + row * (x2 - x0)
    y = y0 + col * (y1 - y0) + row * (y2 - y0)
    inside = (x >= 0) & (y >= 0) & (torch.floor(x) + 1 < level_w) & (torch.floor(y) + 1 < level_h)
    grid = torch.stack([2 * x / (level_w - 1) - 1, 2 * y / (level_h - 1) - 1], dim=-1)
    return ChipWarp((top, left, bottom, right), depth, grid[None].float(), inside[None, None].float())


def _truncate(x: torch.Tensor) -> torch.Tensor:
    """Truncate to integers as dlib's 8-bit pixels do, passing gradients straight through."""
    return x + (torch.floor(x + _TRUNCATION_SLACK) - x).detach()


def pyramid_down(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """dlib's pyramid_down<2> on (N,3,H,W) values in 0–255 (or in 0–1 with `scale` 255): output
    (N,3,(H-3)//2,(W-3)//2) in 0–255. Integer taps, one division at the end: on 8-bit values every sum is exact, as
    in dlib's integer arithmetic.

    >>> x = torch.randint(0, 256, (1, 3, 21, 16)).float()
    >>> taps = torch.tensor(_BINOMIAL_TAPS); kernel = (torch.outer(taps, taps) / 256).expand(3, 1, 5, 5)
    >>> bool(torch.equal(pyramid_down(x), torch.floor(F.conv2d(x, kernel, stride=2, groups=3) + 1e-4)))
    True
    >>> bool(torch.equal(pyramid_down(x / 255, scale=255), pyramid_down(x)))
    True
    """
    return _truncate(symmetric_filter(x, _BINOMIAL_TAPS, stride=2) * (scale / 256))


def extract_chip(images: torch.Tensor, warp: ChipWarp) -> torch.Tensor:
    """Chips (N,3,S,S) in [0,1] cut from photos (N,3,H,W) in [0,1] exactly as dlib would cut them."""
    top, left, bottom, right = warp.crop
    x = images[:, :, top : bottom + 1, left : right + 1]
    x = pyramid_down(x, scale=255) if warp.levels else x * 255  # scaled inside the first level: one pass fewer
    for _ in range(warp.levels - 1):
        x = pyramid_down(x)
    grid = warp.grid.to(x).expand(len(x), -1, -1, -1)
    chip = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return _truncate(chip * warp.inside.to(x)) / 255


def resize_chip(images: torch.Tensor, size: int = 150) -> torch.Tensor:
    """Whole images (N,3,H,W) taken as already-aligned faces, resized to (N,3,S,S) chips."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def arcface_template(size: int) -> np.ndarray:
    """The ArcFace 5-point template (5,2) scaled to `size`-pixel chips."""
    return ARCFACE_TEMPLATE * (size / ARCFACE_SIZE)


def similarity_transform(src: Points, dst: Points) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991) taking points `src` (K,2) to `dst` (K,2), as a 2×3 matrix.

    >>> similarity_transform([[0, 0], [1, 0]], [[1, 1], [1, 3]]).round(6) + 0
    array([[ 0., -2.,  1.],
           [ 2.,  0.,  1.]])
    """
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    s, d = src - src_mean, dst - dst_mean
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(sigma) @ sign) / s.var(0).sum()
    return np.hstack([scale * rotation, (dst_mean - scale * rotation @ src_mean)[:, None]])


def arcface_from_chip(points: Points, size: int) -> np.ndarray:
    """The 2×3 affine map from chip to photo coordinates (continuous: pixel i spans [i, i+1)) of the `size`-pixel
    ArcFace chip of a face with 5 `points` (eye centres, nose tip, mouth corners; image-left first)."""
    to_chip = np.vstack([similarity_transform(points, arcface_template(size)), [0, 0, 1]])
    return np.linalg.inv(to_chip)[:2]


def arcface_bounds(points: Points) -> Rect:
    """The box (left, top, right, bottom; continuous) of the photo that the ArcFace chip of `points` reads.

    >>> [round(v) for v in arcface_bounds(arcface_template(112))]
    [0, 0, 112, 112]
    """
    corners = np.array([[0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=np.float64) * [ARCFACE_SIZE, ARCFACE_SIZE, 1]
    xs, ys = (corners @ arcface_from_chip(points, ARCFACE_SIZE).T).T
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def antialias_sigma(from_chip: np.ndarray) -> float:
    """The Gaussian σ, in photo pixels, that band-limits a photo before sampling a chip through the 2×3 map
    `from_chip` (chip to photo): (s − 1) / 2 for s photo pixels per chip pixel, as scikit-image's `rescale` does;
    0 when the chip does not shrink the photo.

    >>> round(antialias_sigma(np.array([[3.0, 0.0, 5.0], [0.0, 3.0, 7.0]])), 6)
    1.0
    """
    scale = math.sqrt(abs(np.linalg.det(from_chip[:, :2])))
    return max(0.0, (scale - 1) / 2)


def arcface_chip(
    images: torch.Tensor, points: Points, size: int = ARCFACE_SIZE, antialias: bool = False
) -> torch.Tensor:
    """Chips (N,3,S,S) aligned to the ArcFace template scaled to S=`size`, from photos (N,3,H,W) in [0,1] whose face
    has 5 `points` (5,2); bilinear, black outside the photo, as Pillow's affine transform samples, with gradients.

    With `antialias`, the photo is first blurred by `antialias_sigma` (edges replicated), as a resize that
    antialiases would, so that the chip reads every photo pixel rather than the four around each sample point:
    a change made through it survives another warp, other landmarks and other resize code."""
    from_chip = arcface_from_chip(points, size)
    sigma = antialias_sigma(from_chip) if antialias else 0.0
    if sigma > 0:
        images = gaussian_blur(images, sigma)
    height, width = images.shape[-2:]
    centres = torch.arange(size, dtype=torch.float64) + 0.5
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    source = torch.stack([x, y, torch.ones_like(x)], -1) @ torch.from_numpy(from_chip).T
    inside = (source >= 0).all(-1) & (source[..., 0] < width) & (source[..., 1] < height)
    grid = (source / torch.tensor([width, height], dtype=torch.float64) * 2 - 1)[None].to(images)
    chips = F.grid_sample(
        images, grid.expand(len(images), -1, -1, -1), mode="bilinear", padding_mode="border", align_corners=False
    )
    return chips * inside.to(images)
