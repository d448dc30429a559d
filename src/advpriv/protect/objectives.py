"""Adversarial objectives: what "the model fails" means, as a differentiable loss and an exact success test.

An objective maps a batch of candidate images (N,3,H,W) in [0,1] to `(loss, success)`, both of shape (N,).
The loss is minimised by the optimiser; `success` says whether that exact image already fools the model.

Example:
    >>> import torch
    >>> from advpriv.targets import ClassifierTarget
    >>> target = ClassifierTarget(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)))
    >>> objective = Misclassify(target, labels=torch.tensor([0]))
    >>> loss, success = objective(torch.rand(1, 3, 2, 2))
    >>> loss.shape, success.dtype
    (torch.Size([1]), torch.bool)
"""

from __future__ import annotations

from typing import Protocol

import torch


class Objective(Protocol):
    """`(loss, success)` per image. An objective may also offer `select(index)`: the same objective for only the
    images `index` (a LongTensor into its batch), which lets MND drop images that have settled."""

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class Misclassify:
    """C&W margin loss on logits (Carlini & Wagner 2017, f6), with confidence κ.

    Untargeted: push the true class `labels` below the best other class by κ; success when top-1 ≠ label.
    Targeted (`target_class` given): push `target_class` above every other class by κ; success when top-1 = it.
    """

    def __init__(
        self,
        target: torch.nn.Module,
        labels: torch.Tensor,
        kappa: float = 1.0,
        target_class: torch.Tensor | int | None = None,
    ) -> None:
        self.target = target
        self.labels = labels
        self.kappa = kappa
        self.target_class = None if target_class is None else torch.as_tensor(target_class).expand_as(labels)

    def select(self, index: torch.Tensor) -> Misclassify:
        """This objective for the images `index` of its batch only.

        >>> Misclassify(torch.nn.Identity(), torch.tensor([3, 1, 2])).select(torch.tensor([0, 2])).labels
        tensor([3, 2])
        """
        wanted = None if self.target_class is None else self.target_class[index]
        target = self.target.select(index) if hasattr(self.target, "select") else self.target  # a RaggedClassifier
        return Misclassify(target, self.labels[index], self.kappa, wanted)

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.target(images)
        wanted = self.labels if self.target_class is None else self.target_class
        own = logits.gather(1, wanted[:, None]).squeeze(1)
        others = logits.scatter(1, wanted[:, None], float("-inf")).amax(1)
        top1 = logits.argmax(1)
        if self.target_class is None:
            return (own - others + self.kappa).clamp(min=0), top1 != self.labels
        return (others - own + self.kappa).clamp(min=0), top1 == self.target_class
