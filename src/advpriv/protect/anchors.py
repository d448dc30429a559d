"""Anchor attacks (FGSM, PGD-L∞, C&W-L2), run through torchattacks itself rather than re-implemented.

torchattacks names torchvision as a dependency but does not need it: install it with
`pip install --no-deps torchattacks` (`make setup` does).

Example:
    >>> adv = anchor_attack("pgd", target, images, labels, eps=2 / 255)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io

import torch

from .eot import blur

ANCHOR_DEFAULTS: dict[str, dict[str, float]] = {
    "fgsm": {"eps": 4 / 255},
    "pgd": {"eps": 4 / 255, "alpha": 1 / 255, "steps": 10},
    "cw": {"c": 1.0, "kappa": 0.0, "steps": 50, "lr": 0.01},
}


def _torchattacks():
    try:
        import torchattacks
    except ImportError as e:
        raise RuntimeError(
            "the fgsm/pgd/cw anchors need torchattacks; install it without its torchvision dependency: "
            "pip install --no-deps torchattacks"
        ) from e
    return torchattacks


def anchor_attack(
    method: str,
    target: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    target_class: torch.Tensor | None = None,
    **budget: float,
) -> torch.Tensor:
    """Run torchattacks' FGSM / PGD / CW on [0,1] images; `budget` overrides `ANCHOR_DEFAULTS[method]`."""
    if method not in ANCHOR_DEFAULTS:
        raise ValueError(f"unknown anchor {method!r}; choose one of {sorted(ANCHOR_DEFAULTS)}.")
    unknown = set(budget) - set(ANCHOR_DEFAULTS[method])
    if unknown:
        raise ValueError(f"{method} does not take {', '.join(sorted(unknown))}; it takes {', '.join(ANCHOR_DEFAULTS[method])}.")
    ta = _torchattacks()
    params = {**ANCHOR_DEFAULTS[method], **budget}
    if "steps" in params:
        params["steps"] = int(params["steps"])
    with contextlib.redirect_stdout(io.StringIO()):  # torchattacks prints when the model has no parameters
        attack = {"fgsm": ta.FGSM, "pgd": ta.PGD, "cw": ta.CW}[method](target, **params)
    attack.set_device(images.device)
    if target_class is not None:
        attack.set_mode_targeted_by_label(quiet=True)
        return attack(images, target_class).detach()
    return attack(images, labels).detach()


class Smoothed(torch.nn.Module):
    """LowKey's smoothing (Cherepanova et al., 2021): a model's logits averaged over the image and a Gaussian-blurred
    copy (`sigma` pixels), so an anchor attacking it finds perturbations that survive blur and transfer better.

    >>> model = Smoothed(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 2)), sigma=1.0)
    >>> model(torch.rand(1, 3, 4, 4)).shape
    torch.Size([1, 2])
    """

    def __init__(self, model: torch.nn.Module, sigma: float = 1.0) -> None:
        super().__init__()
        self.model, self.sigma = model, sigma

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (self.model(images) + self.model(blur(images, self.sigma))) / 2
