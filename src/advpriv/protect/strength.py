"""Protection strength: how far past the decision boundary, and through which re-encodings, a photo must stay fooling.

- "low": half the default success margin, judged on the image as written only. The least visible change: for
  faces SSIM at least 0.96 inside each face's box and half a just-noticeable difference (CIEDE2000 1.15) in its
  eyes and lips. It fools the attacked models on the PNG and does not promise to survive JPEG, resizing, or
  models it never saw.
- "medium" (default): the default margin, and the image must fool the models both as written and after a random
  re-encoding drawn every step (resize with another kernel and 8-bit rounding, JPEG 70–95, mild blur; see
  `advpriv.protect.eot`). For faces, within a budget a person sees per face: SSIM at least 0.92 inside each face's
  box and at most one just-noticeable difference (CIEDE2000 2.3) in its eyes and lips. Where the goal needs more
  change than that, the face keeps to the budget and the goal is reported as not reached.
- "high": twice the margin, re-encodings drawn more often and harsher (JPEG 60–90), more steps; for faces a
  budget of SSIM 0.88 and CIEDE2000 4 (about two just-noticeable differences) in the eyes and lips.

For faces the margin is the distance beyond each model's match threshold, as a fraction of it; for classifiers it
is κ on the logits. What each level buys on real data is measured in bench/results/transfer.md.

Example:
    >>> strength_options("high", target="efficientnet-lite0")["kappa"]
    2.0
    >>> options = strength_options("low", target="dlib", mode="dodge")
    >>> round(options["margin"], 4), options["eot"], options["config"].steps
    (0.1667, None, 50)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..faces.objectives import DODGE_MARGIN, IMPERSONATE_MARGIN
from .eot import EOTConfig
from .files import FACE_TARGET
from .mnd import MNDConfig
from ..visibility import JND, VisibilityBudget

CLASSIFIER_KAPPA = 1.0


@dataclass(frozen=True)
class Strength:
    """One level: margin multiplier, the re-encodings drawn (None: none), MND's steps, window quorum and
    starting λ (a robust goal settles at a smaller λ, so starting lower spends fewer windows finding it), and for
    faces the most any one face may change (`advpriv.visibility.VisibilityBudget`; None: MND's trade-off alone)."""

    scale: float
    eot: EOTConfig | None
    steps: int
    quorum: float = 0.0
    lam: float = MNDConfig.lam
    visibility: VisibilityBudget | None = None


FACE_EOT = EOTConfig()
FACE_EOT_HIGH = EOTConfig(scale_p=0.6, jpeg=(60.0, 90.0), jpeg_p=0.7, blur_p=0.3)
STRENGTHS = {
    "low": Strength(0.5, None, 50, visibility=VisibilityBudget(0.96, JND / 2)),
    "medium": Strength(1.0, FACE_EOT, 60, quorum=0.5, lam=16.0, visibility=VisibilityBudget(0.92, JND)),
    "high": Strength(2.0, FACE_EOT_HIGH, 80, quorum=0.5, lam=16.0, visibility=VisibilityBudget(0.88, 4.0)),
}


def classifier_eot(eot: EOTConfig) -> EOTConfig:
    """A face EOT made a classifier's: small shifts of the crop instead of resize round trips (`advpriv.protect`
    adds the deployment's Pillow-style resize when the target states its `short_side`), and JPEG in every draw.
    A classifier's logit margin is thin: with JPEG in half the draws, MND kept images that had passed a JPEG-free
    draw, and only 1 in 8 of medium's survived JPEG 85 (bench/results/classifier_robust_jpeg-half.json).

    >>> classifier_eot(FACE_EOT).scale, classifier_eot(FACE_EOT).shift, classifier_eot(FACE_EOT).jpeg_p
    (None, 2.0, 1.0)
    """
    return replace(eot, scale=None, shift=2.0, jpeg_p=1.0)


def strength_options(strength: str, target: str, mode: str = "dodge", config: MNDConfig = MNDConfig()) -> dict:
    """The protect options a strength stands for: `margin` (faces) or `kappa` (classifiers), `eot` and `config`.

    `config` gives the settings a strength does not decide (time limit, learning rate); its steps, quorum and λ
    are the strength's.
    """
    if strength not in STRENGTHS:
        raise ValueError(f"unknown strength {strength!r}; choose one of {', '.join(STRENGTHS)}.")
    level = STRENGTHS[strength]
    options: dict = {"config": replace(config, steps=level.steps, quorum=level.quorum, lam=level.lam)}
    if target == FACE_TARGET:
        options["margin"] = level.scale * (DODGE_MARGIN if mode == "dodge" else IMPERSONATE_MARGIN)
        options["eot"] = level.eot
        options["visibility"] = level.visibility
    else:
        options["kappa"] = level.scale * CLASSIFIER_KAPPA
        options["eot"] = None if level.eot is None else classifier_eot(level.eot)
    return options
