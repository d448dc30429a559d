"""The re-encodings a platform applies to an uploaded photo, by name: the threat model's transformations in one place.

Each takes a (3,H,W) float image in [0,1] and returns the decoded 8-bit copy, as a (3,h,w) float tensor.
- "jpeg85": Pillow JPEG at quality 85 with Pillow's default 4:2:0 chroma subsampling, decoded again;
- "half": Pillow resize to half the width and height (bicubic), never upsampled back.
A new transformation is one entry in `REENCODINGS`; `judge_reencoded` runs a judge on every copy.

Example:
    >>> import torch
    >>> image = torch.rand(3, 64, 48)
    >>> reencode(image, "half").shape
    torch.Size([3, 32, 24])
    >>> sorted(REENCODINGS)
    ['half', 'jpeg85']
"""

from __future__ import annotations

import io
from typing import Callable, TypeVar

import numpy as np
import torch
from PIL import Image

from ..images import to_uint8

Verdict = TypeVar("Verdict")


def _to_pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray(to_uint8(image), mode="RGB")


def _to_tensor(pil: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(pil.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1).contiguous()


def pillow_jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """The image saved by Pillow as JPEG at `quality` (4:2:0, as most platforms do) and decoded again."""
    buf = io.BytesIO()
    _to_pil(image).save(buf, format="JPEG", quality=quality)
    return _to_tensor(Image.open(buf))


def jpeg85(image: torch.Tensor) -> torch.Tensor:
    """The image saved as JPEG quality 85 and decoded again."""
    return pillow_jpeg(image, 85)


def half(image: torch.Tensor) -> torch.Tensor:
    """The image resized to half its width and height (Pillow bicubic, at least 1 pixel), on 8-bit levels."""
    height, width = image.shape[-2:]
    size = (max(1, width // 2), max(1, height // 2))
    return _to_tensor(_to_pil(image).resize(size, Image.Resampling.BICUBIC, reducing_gap=None))


REENCODINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"jpeg85": jpeg85, "half": half}
"""Name -> re-encoding, in the order reports show them."""

PILLOW_KERNELS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def pillow_short_side(image: torch.Tensor, short: int, kernel: str = "bilinear") -> torch.Tensor:
    """The image's shorter side resized to `short` by Pillow on 8-bit pixels, as a classifier's deployment does
    before its centre crop.

    >>> pillow_short_side(torch.rand(3, 30, 40), 15, "bicubic").shape
    torch.Size([3, 15, 20])
    """
    pil = _to_pil(image)
    scale = short / min(pil.size)
    return _to_tensor(pil.resize((round(pil.width * scale), round(pil.height * scale)), PILLOW_KERNELS[kernel]))


def deployment_views(short: int) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """A classifier's deployment by name: the Pillow resize of the shorter side to `short` with each kernel.

    >>> sorted(deployment_views(256))
    ['pil-bicubic', 'pil-bilinear']
    """
    return {f"pil-{kernel}": lambda image, k=kernel: pillow_short_side(image, short, k) for kernel in PILLOW_KERNELS}


def reencode(image: torch.Tensor, name: str) -> torch.Tensor:
    """The decoded copy of `image` (3,H,W) after the re-encoding `name` (a key of `REENCODINGS`)."""
    if name not in REENCODINGS:
        raise ValueError(f"unknown re-encoding {name!r}; choose one of {', '.join(REENCODINGS)}.")
    return REENCODINGS[name](image)


def judge_reencoded(judge: Callable[[torch.Tensor], Verdict], image: torch.Tensor,
                    extra: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None) -> dict[str, Verdict]:
    """`judge` run on each re-encoded copy of `image`, by re-encoding name, then on each of `extra`'s copies
    (a classifier's `deployment_views`).

    >>> judge_reencoded(lambda copy: tuple(copy.shape), torch.rand(3, 8, 6))
    {'jpeg85': (3, 8, 6), 'half': (3, 4, 3)}
    """
    return {name: judge(transform(image)) for name, transform in {**REENCODINGS, **(extra or {})}.items()}
