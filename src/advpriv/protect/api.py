"""The Python front door: `protect(images, target=...)` for tensors; the CLI and service build on it.

Example:
    >>> import advpriv, torch
    >>> results = advpriv.protect(torch.rand(1, 3, 64, 64), target="efficientnet-lite0")  # doctest: +SKIP
    >>> results[0].success, results[0].metrics["psnr"]                                    # doctest: +SKIP
    (True, 55.1)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable, Sequence

import torch
from torch import nn

from ..images import quantize
from ..quality import quality_report
from ..targets import load_target
from ..targets.base import ClassifierTarget
from .anchors import ANCHOR_DEFAULTS, anchor_attack
from .eot import EOT, EOTConfig, Robust
from .mnd import MNDConfig, mnd
from .objectives import Misclassify
from .ragged import RaggedClassifier, pack, unpack
from .reencode import deployment_views, judge_reencoded
from .views import Views, ViewsConfig

METHODS = ("mnd", *ANCHOR_DEFAULTS)


@dataclass
class Check:
    """A verdict on a decoded copy of the written file, and on that copy re-encoded the way platforms do.

    success: the attacked models still reach the goal. summary: what they (or the judges) see now, in words.
    faces: per face of the clean photo, its box [left, top, right, bottom] and per judge
        {"detected": bool, "distance": float | None, "matches": bool, "threshold": float}; empty for classifiers.
    variants: per re-encoding name (see `advpriv.protect.reencode`), the same verdict on that copy; there
        `success` is the judges' verdict for faces (every judge reaches the goal on every face), the classifier's
        for a classifier. Reported alongside: `success` stays the verdict on the file as written.

    >>> check = Check(True, "tabby", variants={"jpeg85": Check(False, "tiger")})
    >>> check.versions("png")["jpeg85"]
    {'success': False, 'summary': 'tiger', 'faces': []}
    """

    success: bool
    summary: str
    faces: list[dict] = field(default_factory=list)
    variants: dict[str, Check] = field(default_factory=dict)

    def verdict(self) -> dict:
        """This check alone as plain JSON-ready data: success, summary, faces."""
        return {"success": self.success, "summary": self.summary, "faces": self.faces}

    def versions(self, written: str) -> dict[str, dict]:
        """Per version, the file as written (named `written`, e.g. "png") first, then each re-encoding: `verdict()`."""
        return {written: self.verdict(), **{name: check.verdict() for name, check in self.variants.items()}}


@dataclass
class Protected:
    """One protected image (3,H,W), exactly on 8-bit levels, with what the target saw before and after.

    `recheck(decoded)` judges a decoded copy of the written file and returns a `Check`.
    """

    image: torch.Tensor
    success: bool
    label: int
    before: str
    after: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    recheck: Callable[[torch.Tensor], Check] | None = field(default=None, repr=False)


def protect(
    images: torch.Tensor | Sequence[torch.Tensor],
    target: str | nn.Module = "efficientnet-lite0",
    method: str = "mnd",
    labels: torch.Tensor | Sequence[int] | None = None,
    target_class: int | None = None,
    kappa: float = 1.0,
    config: MNDConfig = MNDConfig(),
    eot: EOTConfig | None = None,
    views: tuple[int, int] | None = None,
    batch_size: int = 8,
    on_image: Callable[[Protected], None] | None = None,
    trust_code: bool = False,
    **budget: float,
) -> list[Protected]:
    """Protect float RGB images in [0,1] against a classifier `target`.

    `images` is an (N,3,H,W) batch or a list of (3,H,W) images of any sizes. MND without `eot` batches images of
    different sizes together (`advpriv.protect.ragged`: the network runs once per step for the batch); otherwise
    images are batched by size.
    Untargeted by default: the label to move away from is `labels`, else the target's own clean prediction.
    `method` is "mnd" or an anchor ("fgsm", "pgd", "cw", with torchattacks `budget` overrides).
    views: with MND, the image must fool the model by κ on the deployment's views every step: its resize with
    each Pillow kernel, and that resize of a JPEG at a quality drawn in this range (`advpriv.protect.views`;
    `advpriv.protect.strength` names the usual settings).
    eot: with MND, the image must also fool the model after a random re-encoding drawn every step
    (`advpriv.protect.eot`); not with `views`.
    trust_code: load a TorchScript `target` file, which is code (see `advpriv.model_trust`).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if eot is not None and views is not None:
        raise ValueError("choose one of eot and views: both make the image hold through re-encodings.")
    model = load_target(target, trust_code)
    deployment = None if views is None else ViewsConfig(getattr(model, "short_side", None), jpeg=views)
    if eot is not None and eot.resize_to is None and getattr(model, "short_side", None):
        eot = replace(eot, resize_to=model.short_side)
    items = list(images.unbind(0)) if isinstance(images, torch.Tensor) else list(images)
    for i, im in enumerate(items):
        if im.ndim != 3 or im.shape[0] != 3:
            raise ValueError(f"image {i} has shape {tuple(im.shape)}; expected (3,H,W) float RGB in [0,1].")
    given = None if labels is None else torch.as_tensor(labels, dtype=torch.long)
    ragged = method == "mnd" and eot is None and deployment is None and isinstance(model, ClassifierTarget)
    results: list[Protected | None] = [None] * len(items)
    for idx in _batches(items, batch_size, ragged):
        clean = [items[i].float().clamp(0, 1) for i in idx]
        start = time.perf_counter()
        if all(image.shape == clean[0].shape for image in clean):
            x = torch.stack(clean)
            y = model.predict(x) if given is None else given[idx]
            adv = _attack(model, method, x, y, target_class, kappa, config, eot, deployment, budget)
            per_image = (time.perf_counter() - start) / len(idx)
            (success, after), reports = verify(model, adv, y, target_class), quality_report(x, adv)
        else:
            canvas, sizes = pack(clean)
            reader = RaggedClassifier(model, sizes)
            with torch.no_grad():
                y = reader(canvas).argmax(1) if given is None else given[idx]
            result = mnd(canvas, _objective(reader, y, target_class, kappa), config, sizes=sizes)
            per_image = (time.perf_counter() - start) / len(idx)
            with torch.no_grad():
                after = reader(result.images).argmax(1)
            success = _fooled(after, y, target_class)
            adv = [image.contiguous() for image in unpack(result.images, sizes)]
            reports = [quality_report(c[None], a[None])[0] for c, a in zip(clean, adv)]
        for j, i in enumerate(idx):
            results[i] = Protected(
                recheck=partial(_recheck, model, int(y[j]), target_class),
                image=adv[j],
                success=bool(success[j]),
                label=int(y[j]),
                before=model.label_name(int(y[j])),
                after=model.label_name(int(after[j])),
                metrics=reports[j],
                seconds=per_image,
            )
            if on_image:
                on_image(results[i])
    return results  # type: ignore[return-value]


def _batches(items: list[torch.Tensor], batch_size: int, ragged: bool) -> list[list[int]]:
    """Batches of images of one size, or with `ragged`, of any sizes (ordered by size, so that padding is small).

    >>> images = [torch.zeros(3, 5, 5), torch.zeros(3, 9, 9), torch.zeros(3, 5, 5)]
    >>> _batches(images, 8, False), _batches(images, 8, True)
    ([[0, 2], [1]], [[0, 2, 1]])
    """
    if ragged:
        order = sorted(range(len(items)), key=lambda i: tuple(items[i].shape))
        return [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(items):
        groups.setdefault(tuple(im.shape), []).append(i)
    return [g[k : k + batch_size] for g in groups.values() for k in range(0, len(g), batch_size)]


def _objective(model: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, target_class: int | None,
               kappa: float) -> Misclassify:
    wanted = None if target_class is None else torch.full_like(y, target_class)
    return Misclassify(model, y, kappa=kappa, target_class=wanted)


def _attack(
    model: nn.Module,
    method: str,
    x: torch.Tensor,
    y: torch.Tensor,
    target_class: int | None,
    kappa: float,
    config: MNDConfig,
    eot: EOTConfig | None,
    views: ViewsConfig | None,
    budget: dict[str, float],
) -> torch.Tensor:
    """Returns 8-bit-exact adversarial images."""
    objective = _objective(model, y, target_class, kappa)
    if method == "mnd":
        goal = objective
        if views is not None:
            goal = Views(objective, views)
        elif eot is not None:
            goal = Robust(objective, EOT(eot))
        return mnd(x, goal, config).images
    return quantize(anchor_attack(method, model, x, y, objective.target_class, **budget))


def _recheck(model: nn.Module, label: int, target_class: int | None, decoded: torch.Tensor) -> Check:
    """The classifier's verdict on `decoded`, on each of its re-encodings and, when the model states its
    deployment's resize, through that resize done by Pillow with each kernel."""
    check = _classify(model, label, target_class, decoded)
    short = getattr(model, "short_side", None)
    check.variants = judge_reencoded(partial(_classify, model, label, target_class), decoded,
                                     deployment_views(short) if short else None)
    return check


def _classify(model: nn.Module, label: int, target_class: int | None, image: torch.Tensor) -> Check:
    fooled, top1 = verify(model, image[None], torch.tensor([label]), target_class)
    return Check(bool(fooled[0]), model.label_name(int(top1[0])))


@torch.no_grad()
def verify(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, target_class: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whether each image fools the classifier (top-1 ≠ label, or = target_class), and the top-1 classes."""
    top1 = model.predict(images)
    return _fooled(top1, labels, target_class), top1


def _fooled(top1: torch.Tensor, labels: torch.Tensor, target_class: int | None) -> torch.Tensor:
    return top1 != labels if target_class is None else top1 == target_class
