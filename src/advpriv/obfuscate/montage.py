"""A labelled montage PNG: originals in the first row, each encoder's reconstructions in the rows below.

Example:
    >>> rows = {"original": torch.rand(4, 3, 32, 26), "obfuscator": torch.rand(4, 3, 32, 26)}
    >>> save_montage(rows, "montage.png")   # doctest: +SKIP
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from advpriv.images import atomic_write, to_uint8

LABEL_WIDTH = 96
GAP = 2


def montage_image(rows: dict[str, torch.Tensor]) -> Image.Image:
    """One row per entry of `rows` ((N,3,H,W) each, same N and size), labelled on the left with the key."""
    n, _, h, w = next(iter(rows.values())).shape
    canvas = Image.new("RGB", (LABEL_WIDTH + n * (w + GAP), len(rows) * (h + GAP)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, images) in enumerate(rows.items()):
        top = r * (h + GAP)
        draw.text((4, top + h // 2 - 6), label.replace("_", "-"), fill="black")
        for c in range(n):
            canvas.paste(Image.fromarray(to_uint8(images[c])), (LABEL_WIDTH + c * (w + GAP), top))
    return canvas


def save_montage(rows: dict[str, torch.Tensor], path: str | Path) -> Path:
    """Write `montage_image(rows)` as a PNG, atomically."""
    buf = io.BytesIO()
    montage_image(rows).save(buf, format="PNG", optimize=True)
    return atomic_write(path, buf.getvalue())
