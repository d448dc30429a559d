"""Visibility where people look: each face's box, its eyes and lips, in CIELAB as well as in structure.

A person looking at a protected photo looks at the faces. They see a change of hue in the eyes or on the lips long
before a change of texture, and flat skin shows what texture hides. So one set of face parts (from dlib's 68
landmarks) drives both the optimiser's budget (`VisibilityLoss`) and the numbers a report gives per face
(`face_visibility`), and colour differences are CIEDE2000 (Sharma, Wu & Dalal, 2005) on CIELAB (D65).

Example:
    >>> import torch
    >>> x = torch.rand(1, 3, 64, 64); y = x.clone(); y[:, 0] = (y[:, 0] + 0.05).clamp(0, 1)
    >>> parts = FaceParts(box=(8, 8, 55, 55), eyes=((16, 20, 26, 26), (36, 20, 46, 26)), lips=(24, 40, 40, 48))
    >>> loss = VisibilityLoss(x, [parts])
    >>> float(loss(x)) < 1e-3, bool(loss(y) > 1)
    (True, True)
    >>> 0 < face_visibility(x[0], y[0], parts)["ciede2000"] < 10
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import kornia
import numpy as np
import torch
import torch.nn.functional as F

from .quality import VIF_MIN_SIDE, QualityLoss, QualityWeights, gaussian_blur, psnr, ssim, vif

Box = tuple[int, int, int, int]
"""(left, top, right, bottom), inclusive, in pixels."""

JND = 2.3
"""CIEDE2000 / CIELAB distance of one just-noticeable difference (Mahy et al., 1994)."""

LIGHTNESS_STEP = 1.0
"""Change of CIELAB lightness L* that costs 1 on flat skin: about an RMS of 2.5 levels of 255 on mid-grey, i.e.
PSNR 40 dB, where `QualityWeights`' MSE term is also 1, so MND's λ keeps its meaning."""
TEXTURE = 3.0
"""Texture masking: the lightness step grows by 1 for every `TEXTURE` units of the clean image's local standard
deviation of L* (7×7 pixels), so change goes where texture hides it (hair, brows, edges) rather than on flat skin."""
CHROMA = 4.0
"""Weight of a change of a*/b* against one of L* at the same size: hue is the most noticeable change there is."""
PARTS = 4.0
"""Weight of the eyes' and lips' boxes against the rest of the face."""
BLUR = 1.0
"""σ, in pixels, of the Gaussian through which `face_change` sees a face: the eye averages single-pixel noise at
1× but sees creases, wrinkles and blotches on the skin, which SSIM weighs the other way round."""
QUANTILE = 0.99


@dataclass(frozen=True)
class FaceParts:
    """A face's detector box and the boxes of its eyes and lips (all `Box`), in the coordinates of one image."""

    box: Box
    eyes: tuple[Box, ...] = ()
    lips: Box | None = None

    def shift(self, dx: int, dy: int) -> FaceParts:
        """The same parts in an image cropped at (left, top) = (dx, dy).

        >>> FaceParts((10, 10, 20, 20), ((11, 12, 13, 14),), (12, 16, 18, 19)).shift(10, 5).lips
        (2, 11, 8, 14)
        """
        move = lambda b: (b[0] - dx, b[1] - dy, b[2] - dx, b[3] - dy)  # noqa: E731
        return FaceParts(move(self.box), tuple(move(e) for e in self.eyes), None if self.lips is None else move(self.lips))

    @property
    def features(self) -> tuple[Box, ...]:
        """The eyes' and the lips' boxes."""
        return self.eyes + (() if self.lips is None else (self.lips,))


def _bounds(points: np.ndarray, grow: float, shape: tuple[int, int]) -> Box:
    """The box of `points` (K,2), grown by `grow` of its size on every side, clipped to an (H,W) image."""
    (left, top), (right, bottom) = points.min(0), points.max(0)
    gx, gy = grow * (right - left), grow * (bottom - top)
    height, width = shape
    return (max(0, math.floor(left - gx)), max(0, math.floor(top - gy)),
            min(width - 1, math.ceil(right + gx)), min(height - 1, math.ceil(bottom + gy)))  # fmt: skip


def face_parts(pixels: np.ndarray, box: Sequence[int]) -> FaceParts:
    """The eyes (68 points 36–41, 42–47) and lips (48–59) of the face in detector `box` of an (H,W,3) uint8 photo,
    from dlib's 68-point predictor; the eye boxes are grown by a quarter so that they hold the whole iris."""
    from .faces.detect import import_dlib, predictor68

    dlib = import_dlib()
    left, top, right, bottom = (int(v) for v in box)
    shape = predictor68()(pixels, dlib.rectangle(left, top, right, bottom))
    p = np.array([(q.x, q.y) for q in shape.parts()], dtype=np.float64)
    hw = pixels.shape[:2]
    eyes = (_bounds(p[36:42], 0.25, hw), _bounds(p[42:48], 0.25, hw))
    clipped = (max(0, left), max(0, top), min(hw[1] - 1, right), min(hw[0] - 1, bottom))
    return FaceParts(clipped, eyes, _bounds(p[48:60], 0.0, hw))


def lab(x: torch.Tensor) -> torch.Tensor:
    """CIELAB (L* in [0,100]) of sRGB images (N,3,H,W) in [0,1], D65: kornia's, equal to scikit-image's."""
    return kornia.color.rgb_to_lab(x)


def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 colour difference per pixel of two CIELAB images (...,3,H,W) -> (...,H,W), k_L = k_C = k_H = 1.

    >>> a = torch.tensor([50.0, 2.6772, -79.7751]).view(3, 1, 1); b = torch.tensor([50.0, 0.0, -82.7485]).view(3, 1, 1)
    >>> round(float(ciede2000(a, b)), 4)  # Sharma et al.'s first test pair
    2.0425
    """
    l1, a1, b1 = lab1.unbind(-3)
    l2, a2, b2 = lab2.unbind(-3)
    c_bar = (torch.hypot(a1, b1) + torch.hypot(a2, b2)) / 2
    g = 0.5 * (1 - torch.sqrt(c_bar**7 / (c_bar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    h1p = torch.rad2deg(torch.atan2(b1, a1p)) % 360
    h2p = torch.rad2deg(torch.atan2(b2, a2p)) % 360
    zero = (c1p * c2p) == 0
    dh = h2p - h1p
    dh = torch.where(dh > 180, dh - 360, torch.where(dh < -180, dh + 360, dh))
    dh = torch.where(zero, torch.zeros_like(dh), dh)
    d_l, d_c = l2 - l1, c2p - c1p
    d_h = 2 * torch.sqrt(c1p * c2p) * torch.sin(torch.deg2rad(dh) / 2)
    l_bar, cp_bar = (l1 + l2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_bar = torch.where((h1p - h2p).abs() > 180, torch.where(h_sum < 360, h_sum + 360, h_sum - 360), h_sum) / 2
    h_bar = torch.where(zero, h_sum, h_bar)
    t = (1 - 0.17 * torch.cos(torch.deg2rad(h_bar - 30)) + 0.24 * torch.cos(torch.deg2rad(2 * h_bar))
         + 0.32 * torch.cos(torch.deg2rad(3 * h_bar + 6)) - 0.20 * torch.cos(torch.deg2rad(4 * h_bar - 63)))  # fmt: skip
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / torch.sqrt(20 + (l_bar - 50) ** 2)
    s_c, s_h = 1 + 0.045 * cp_bar, 1 + 0.015 * cp_bar * t
    r_c = 2 * torch.sqrt(cp_bar**7 / (cp_bar**7 + 25.0**7))
    r_t = -torch.sin(torch.deg2rad(60 * torch.exp(-(((h_bar - 275) / 25) ** 2)))) * r_c
    return torch.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h))


def _crop(image: torch.Tensor, box: Box) -> torch.Tensor:
    left, top, right, bottom = box
    return image[..., top : bottom + 1, left : right + 1]


def eyes_lips_ciede2000(x: torch.Tensor, y: torch.Tensor, parts: FaceParts) -> torch.Tensor:
    """Per image (N,), the mean CIEDE2000 over the eyes' and lips' boxes of one face of images (N,3,H,W) against
    `x` (N or 1,3,H,W); only those boxes are converted to CIELAB. The report and the budget both read it."""
    changes = [ciede2000(lab(_crop(x, box)), lab(_crop(y, box))).flatten(1) for box in parts.features]
    return torch.cat(changes, 1).mean(1)


def face_change(x: torch.Tensor, y: torch.Tensor, box: Box) -> torch.Tensor:
    """Per image (N,), how visibly a face changed: the 99th percentile over its box of the CIEDE2000 between images
    (N,3,H,W) and `x` (N or 1,3,H,W), both blurred by σ = `BLUR` pixels.

    Creases and blotches on flat skin count in full; pixel noise, which SSIM punishes, averages out. Judged by eye
    on faces-wild photos at 1× and 2× (bench/results/visibility_scale.md): about 1.1 is invisible side by side,
    2.2 faint, 4.3 plain.

    >>> x = torch.full((1, 3, 256, 256), 0.5); blotch = x.clone(); blotch[..., 96:160, 96:160] += 0.02
    >>> grain = x + 0.02 * torch.randn(1, 1, 256, 256, generator=torch.Generator().manual_seed(0)).sign()
    >>> [round(float(face_change(x, y, (0, 0, 255, 255))), 1) for y in (blotch, grain)]
    [1.9, 1.4]
    """
    face_x, face_y = _crop(x, box), _crop(y, box)
    change = ciede2000(lab(gaussian_blur(face_x, BLUR)), lab(gaussian_blur(face_y, BLUR))).flatten(1)
    return change.quantile(QUANTILE, dim=1)


def face_visibility(x: torch.Tensor, y: torch.Tensor, parts: FaceParts) -> dict[str, float]:
    """What a person comparing two (3,H,W) images sees of one face: PSNR, SSIM and VIF (when the box is at least
    41 pixels a side) inside its box, the mean CIEDE2000 over its eyes' and lips' boxes (`ciede2000`), the mean
    over the whole box (`ciede2000_face`), and how visibly the skin changed (`ciede2000_p99`, `face_change`)."""
    with torch.no_grad():
        face_x, face_y = _crop(x, parts.box)[None], _crop(y, parts.box)[None]
        out = {"psnr": float(psnr(face_x, face_y)[0]), "ssim": float(ssim(face_x, face_y)[0])}
        if min(face_x.shape[-2:]) >= VIF_MIN_SIDE:
            out["vif"] = float(vif(face_x, face_y)[0])
        out["ciede2000_face"] = float(ciede2000(lab(face_x), lab(face_y)).mean())
        out["ciede2000_p99"] = float(face_change(x[None], y[None], parts.box)[0])
        if parts.features:
            out["ciede2000"] = float(eyes_lips_ciede2000(x[None], y[None], parts)[0])
    return out


def _local_std(lightness: torch.Tensor, size: int = 7) -> torch.Tensor:
    """Standard deviation of (N,1,H,W) over size×size windows (edges replicated), same shape."""
    padded = F.pad(lightness, [size // 2] * 4, mode="replicate")
    mean = F.avg_pool2d(padded, size, stride=1)
    return (F.avg_pool2d(padded * padded, size, stride=1) - mean * mean).clamp(min=0).sqrt()


def visibility_weights(shape: tuple[int, int], parts: Sequence[FaceParts]) -> torch.Tensor:
    """An (H,W) map: 1, and `PARTS` inside every face's eyes and lips boxes."""
    weights = torch.ones(shape)
    for face in parts:
        for left, top, right, bottom in face.features:
            weights[top : bottom + 1, left : right + 1] = PARTS
    return weights


@dataclass(frozen=True)
class VisibilityBudget:
    """The most change a protection may make to any one face: SSIM inside its box at least `min_ssim`, the mean
    CIEDE2000 over its eyes and lips at most `max_ciede2000` (2.3 is one just-noticeable difference), and its
    visible change (`face_change`) at most `max_change`."""

    min_ssim: float
    max_ciede2000: float
    max_change: float = math.inf


class VisibilityLoss:
    """MND's quality loss for faces, per image of a batch (N,3,H,W) against the clean `x`: the change in CIELAB,
    in steps a person can see, plus `QualityLoss`' structure terms (β·(1 − SSIM) + γ·GMSD).

    The colour term is the mean over pixels of w·[(ΔL*/t)² + CHROMA·(Δa*² + Δb*²)] / LIGHTNESS_STEP², where
    t = 1 + σ/TEXTURE grows with the clean image's local texture σ of L* (a just-noticeable-difference map for
    lightness; hue is not masked) and w = `visibility_weights`: a change of hue, or one in the eyes or on the lips,
    costs more than the same change of lightness on the cheek. It replaces `QualityLoss`' MSE term, which is
    blind to hue. `parts` are the faces' boxes in the coordinates of `x`, the same for every image of the batch.
    `within(y)` says which images keep every face inside `budget`; MND never keeps a candidate outside it.

    >>> x = torch.rand(2, 3, 48, 48); grey = (x + 0.02).clamp(0, 1); red = x.clone(); red[:, 0] += 0.02
    >>> loss = VisibilityLoss(x, [FaceParts((0, 0, 47, 47))])
    >>> bool((loss(red.clamp(0, 1)) > loss(grey)).all())
    True
    """

    def __init__(self, x: torch.Tensor, parts: Sequence[FaceParts], weights: QualityWeights = QualityWeights(),
                 budget: VisibilityBudget | None = None) -> None:
        self.structure, self.parts, self.budget = QualityLoss(x, weights), list(parts), budget
        self.lab = lab(x)
        where = visibility_weights(tuple(x.shape[-2:]), parts).to(x) / LIGHTNESS_STEP**2
        self.light = where / (1 + _local_std(self.lab[:, :1]) / TEXTURE).pow(2)[:, 0]
        self.chroma = CHROMA * where

    def select(self, index: torch.Tensor) -> VisibilityLoss:
        """The same loss against the clean images `index` only."""
        chosen = object.__new__(VisibilityLoss)
        chosen.structure, chosen.parts, chosen.budget = self.structure.select(index), self.parts, self.budget
        chosen.lab, chosen.light, chosen.chroma = self.lab[index], self.light[index], self.chroma
        return chosen

    @property
    def within(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Without a budget None; else a function of images (N,3,H,W) -> (N,) bool: every face keeps to it."""
        return None if self.budget is None else self._inside

    def _inside(self, y: torch.Tensor) -> torch.Tensor:
        ok, x, budget = torch.ones(y.shape[0], dtype=torch.bool), self.structure.x, self.budget
        with torch.no_grad():
            for face in self.parts:
                ok &= ssim(_crop(x, face.box), _crop(y, face.box)) >= budget.min_ssim
                if face.features:
                    ok &= eyes_lips_ciede2000(x, y, face) <= budget.max_ciede2000
                if math.isfinite(budget.max_change):
                    ok &= face_change(x, y, face.box) <= budget.max_change
        return ok

    def colour(self, y: torch.Tensor) -> torch.Tensor:
        """The colour term alone, per image."""
        d = lab(y) - self.lab
        return (self.light * d[:, 0].pow(2) + self.chroma * d[:, 1:].pow(2).sum(1)).flatten(1).mean(1)

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        structure = self.structure
        w = structure.weights
        return self.colour(y) + w.beta * (1 - structure.ssim(y)) + w.gamma * structure.gmsd(y)
