"""Sample photos for the demo: scikit-image ships astronaut, coffee and chelsea inside its wheel (no download).

Example:
    >>> paths = write_sample_images("demo-out/inputs")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .images import save_image

SAMPLES = ("astronaut", "coffee", "chelsea")


def write_sample_images(folder: str | os.PathLike) -> list[Path]:
    """Write the bundled sample photos as PNG files into `folder` and return their paths."""
    from skimage import data

    paths = []
    for name in SAMPLES:
        array = getattr(data, name)()
        image = torch.from_numpy(array).permute(2, 0, 1).float() / 255.0
        paths.append(save_image(image, Path(folder) / f"{name}.png"))
    return paths
