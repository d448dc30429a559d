"""Images of different sizes in one MND batch: a zero-padded canvas, of which the classifier and the quality loss
read each image at its own size.

The classifier's network then runs once for the whole batch instead of once per image (its preprocessing brings
every image to the same input size), which is where batching saves time (`bench/speed_checks.py ragged`). The
padding gets no gradient, so it stays zero and is cut away afterwards.

Example:
    >>> import torch
    >>> canvas, sizes = pack([torch.rand(3, 20, 30), torch.rand(3, 25, 10)])
    >>> canvas.shape, sizes
    (torch.Size([2, 3, 25, 30]), ((20, 30), (25, 10)))
    >>> [image.shape for image in unpack(canvas, sizes)]
    [torch.Size([3, 20, 30]), torch.Size([3, 25, 10])]
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..quality import QualityLoss, QualityWeights
from ..targets.base import ClassifierTarget

Sizes = tuple[tuple[int, int], ...]


def pack(images: Sequence[torch.Tensor]) -> tuple[torch.Tensor, Sizes]:
    """(3,H,W) images on one zero-padded (N,3,max H,max W) canvas, each at its top left, and their sizes."""
    sizes = tuple((int(image.shape[-2]), int(image.shape[-1])) for image in images)
    canvas = images[0].new_zeros(len(images), 3, max(h for h, _ in sizes), max(w for _, w in sizes))
    for slot, image in zip(canvas, images):
        slot[:, : image.shape[-2], : image.shape[-1]] = image
    return canvas, sizes


def unpack(canvas: torch.Tensor, sizes: Sizes) -> list[torch.Tensor]:
    """Each image of a canvas, cut to its size."""
    return [slot[:, :h, :w] for slot, (h, w) in zip(canvas, sizes)]


class RaggedClassifier:
    """A classifier target reading each image of a canvas at its size: preprocessed one by one, classified together.

    >>> target = ClassifierTarget(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)),
    ...                           lambda x: torch.nn.functional.interpolate(x, size=(2, 2)))
    >>> canvas, sizes = pack([torch.rand(3, 4, 6), torch.rand(3, 8, 2)])
    >>> RaggedClassifier(target, sizes)(canvas).shape, RaggedClassifier(target, sizes).select(torch.tensor([1])).sizes
    (torch.Size([2, 3]), ((8, 2),))
    """

    def __init__(self, target: ClassifierTarget, sizes: Sizes) -> None:
        self.target, self.sizes = target, sizes

    def __call__(self, canvas: torch.Tensor) -> torch.Tensor:
        inputs = [self.target.preprocess(image[None]) for image in unpack(canvas, self.sizes)]
        return self.target.model(torch.cat(inputs))

    def select(self, index: torch.Tensor) -> RaggedClassifier:
        """The same target for the images `index` of the canvas only."""
        return RaggedClassifier(self.target, tuple(self.sizes[i] for i in index.tolist()))


class RaggedQuality:
    """`QualityLoss` for a canvas: each image weighed against its clean self at its own size.

    >>> canvas, sizes = pack([torch.rand(3, 20, 30), torch.rand(3, 25, 10)])
    >>> loss = RaggedQuality(canvas, sizes); noisy = (canvas + 0.01).clamp(0, 1)
    >>> bool(torch.allclose(loss(noisy)[1], QualityLoss(canvas[1:, :, :25, :10])(noisy[1:, :, :25, :10])))
    True
    """

    def __init__(self, canvas: torch.Tensor, sizes: Sizes, weights: QualityWeights = QualityWeights()) -> None:
        self.sizes = sizes
        self.parts = [QualityLoss(image[None], weights) for image in unpack(canvas, sizes)]

    def __call__(self, canvas: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(image[None]) for part, image in zip(self.parts, unpack(canvas, self.sizes))])

    def select(self, index: torch.Tensor) -> RaggedQuality:
        """The same loss for the images `index` of the canvas only."""
        chosen = object.__new__(RaggedQuality)
        chosen.sizes = tuple(self.sizes[i] for i in index.tolist())
        chosen.parts = [self.parts[i] for i in index.tolist()]
        return chosen
