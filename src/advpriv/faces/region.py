"""The part of a photo that face protection may change: a padded box around every face's chip sources.

A chip reads only the pixels of its warp's crop, so a perturbation anywhere else cannot help. Optimising on the
region alone (faces shifted into its coordinates) gives the same chips and the same gradients as optimising on the
whole photo, at the cost of the region instead of the photo; the rest of the photo is pasted back bit for bit.

Example:
    >>> import torch
    >>> from advpriv.faces.detect import Face
    >>> from advpriv.faces.align import chip_warp
    >>> warp = chip_warp((40.0, 30.0, 139.0, 129.0), 0.0, 150, (600, 800))
    >>> region = face_region([Face((50, 40, 130, 120), (), warp)], (600, 800))
    >>> region.box
    (12, 22, 147, 157)
    >>> photo = torch.rand(3, 600, 800)
    >>> region.crop(photo).shape
    torch.Size([3, 136, 136])
    >>> bool((region.paste(photo, region.crop(photo)) == photo).all())
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import torch

from advpriv.faces.align import arcface_bounds
from advpriv.faces.detect import Face

PAD = 16
"""Pixels added on every side: room for landmarks re-found on a candidate to move a little (see `Dodge`)."""


@dataclass(frozen=True)
class Region:
    """A box (top, left, bottom, right; inclusive) of a photo; `crop`, `paste` and `shift` move between the two."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.top, self.left, self.bottom, self.right

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        """The region of `image` (..., H, W)."""
        return image[..., self.top : self.bottom + 1, self.left : self.right + 1]

    def paste(self, image: torch.Tensor, crop: torch.Tensor) -> torch.Tensor:
        """A copy of `image` (..., H, W) with the region replaced by `crop`; every other pixel is unchanged."""
        out = image.clone()
        out[..., self.top : self.bottom + 1, self.left : self.right + 1] = crop
        return out

    def shift(self, faces: Sequence[Face]) -> list[Face]:
        """`faces` of the photo, in the coordinates of the region."""
        dy, dx = self.top, self.left
        shifted = []
        for face in faces:
            left, top, right, bottom = face.box
            warp = face.warp
            if warp is not None:
                t, l, b, r = warp.crop
                warp = replace(warp, crop=(t - dy, l - dx, b - dy, r - dx))
            points = tuple((x - dx, y - dy) for x, y in face.landmarks)
            arcface = tuple((x - dx, y - dy) for x, y in face.arcface_points)
            shifted.append(Face((left - dx, top - dy, right - dx, bottom - dy), points, warp, arcface))
        return shifted


def face_region(faces: Sequence[Face], image_hw: tuple[int, int], pad: int = PAD) -> Region:
    """The smallest box holding every face's detector box, dlib chip crop and ArcFace chip source, grown by `pad`
    and clipped to the photo.

    A face without a warp (an already-aligned image) is the whole photo, and so is the region.
    """
    height, width = image_hw
    if not faces or any(face.warp is None for face in faces):
        return Region(0, 0, height - 1, width - 1)
    tops, lefts, bottoms, rights = [], [], [], []
    for face in faces:
        t, l, b, r = face.warp.crop  # type: ignore[union-attr]
        box_left, box_top, box_right, box_bottom = face.box
        tops += [t, box_top]
        lefts += [l, box_left]
        bottoms += [b, box_bottom]
        rights += [r, box_right]
        if face.arcface_points:
            arc_left, arc_top, arc_right, arc_bottom = arcface_bounds(face.arcface_points)
            tops.append(math.floor(arc_top))
            lefts.append(math.floor(arc_left))
            bottoms.append(math.ceil(arc_bottom))
            rights.append(math.ceil(arc_right))
    return Region(
        max(min(tops) - pad, 0), max(min(lefts) - pad, 0), min(max(bottoms) + pad, height - 1), min(max(rights) + pad, width - 1)
    )
