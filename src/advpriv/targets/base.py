"""What a target is: a model we protect against, taking float RGB in [0,1] and owning its preprocessing.

Example:
    >>> import torch
    >>> t = ClassifierTarget(torch.nn.Flatten(), name="toy")
    >>> t(torch.rand(1, 3, 2, 2)).shape
    torch.Size([1, 12])
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

Preprocess = Callable[[torch.Tensor], torch.Tensor]


class ClassifierTarget(nn.Module):
    """A classifier as a target: `forward(images in [0,1]) -> logits (N, classes)`.

    `preprocess` maps a (N,3,H,W) batch in [0,1] to whatever the model expects; it must be differentiable.
    The model is put in eval mode and its parameters are frozen. `short_side`, when known, is the size the
    deployment in front of the model resizes the shorter side to (EfficientNet-Lite0: 256); robust protection
    (`advpriv.protect.eot`) then optimises through that resize done the Pillow way.
    """

    kind = "classifier"

    def __init__(
        self,
        model: nn.Module,
        preprocess: Preprocess | None = None,
        name: str = "classifier",
        class_names: list[str] | None = None,
        short_side: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.preprocess = preprocess or (lambda x: x)
        self.name = name
        self.class_names = class_names
        self.short_side = short_side

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self.preprocess(images))

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Top-1 class per image."""
        return self(images).argmax(1)

    def label_name(self, index: int) -> str:
        if self.class_names and 0 <= index < len(self.class_names):
            return self.class_names[index]
        return str(index)

    def train(self, mode: bool = True) -> "ClassifierTarget":
        """Targets stay in eval mode: batch-norm statistics must not drift during an attack."""
        return super().train(False)
