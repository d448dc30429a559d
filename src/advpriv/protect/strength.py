"""Protection strength: how far past the decision boundary, and through which re-encodings, a photo must stay fooling.

For faces each level is first a promise about what a person sees (`advpriv.visibility`): how visibly any face may
change (`face_change`, CIEDE2000 at the 99th percentile over the face's box through a 1-pixel blur; 2.3 is one
just-noticeable difference), its SSIM and its eyes' and lips' colour. The budget is kept even when the goal needs
more; the report then says that the goal was not reached.

- "low": half the default success margin, judged on the image as written only (for classifiers: κ 0.5). For faces
  a visible change of at most 1.15 (half a just-noticeable difference: by eye, nothing to see side by side at 2×),
  SSIM 0.96 and 1.15 in the eyes and lips. It does not promise to survive JPEG, resizing, or models it never saw.
- "medium" (default): the default margin, and the image must fool the models both as written and after a random
  re-encoding drawn every step (resize with another kernel and 8-bit rounding, JPEG 70–95, mild blur; see
  `advpriv.protect.eot`). For classifiers, the image must instead fool the model by κ 1 on the deployment's views
  every step: the Pillow-style resize to the model's input with each kernel, and a Pillow JPEG at quality 70–95
  before it (`advpriv.protect.views`). For faces a visible change of at most 2.3 (one just-noticeable difference:
  faint lines on flat skin, such as the forehead, for someone who compares with the original at 1×), SSIM 0.92 and
  2.3 in the eyes and lips.
- "high": twice the margin, re-encodings drawn more often and harsher (JPEG 60–90), more steps (faces: 60 against
  medium's 40); for faces a visible change of at most 4.6 (creases on the forehead and cheeks that make a face look
  older, plain at 1×), SSIM 0.88 and 4 in the eyes and lips.

For faces the margin is the distance beyond each model's match threshold, as a fraction of it; for classifiers it
is κ on the logits. What each level buys on real data is measured in bench/results/transfer_wild_change.md (faces)
and bench/results/classifier_robust.md (classifiers).

Example:
    >>> options = strength_options("high", target="efficientnet-lite0")
    >>> options["kappa"], options["views"], options["config"].steps
    (2.0, (60, 90), 30)
    >>> options = strength_options("low", target="dlib", mode="dodge")
    >>> round(options["margin"], 4), options["eot"], options["config"].steps, options["visibility"].max_change
    (0.1667, None, 30, 1.15)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..faces.objectives import DODGE_MARGIN, IMPERSONATE_MARGIN
from .eot import EOTConfig
from .files import FACE_TARGET
from .mnd import MNDConfig
from ..visibility import JND, VisibilityBudget

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
    "low": Strength(0.5, None, 30, visibility=VisibilityBudget(0.96, JND / 2, max_change=JND / 2)),
    "medium": Strength(1.0, FACE_EOT, 40, quorum=0.5, lam=16.0,
                       visibility=VisibilityBudget(0.92, JND, max_change=JND)),
    "high": Strength(2.0, FACE_EOT_HIGH, 60, quorum=0.5, lam=16.0,
                     visibility=VisibilityBudget(0.88, 4.0, max_change=2 * JND)),
}


@dataclass(frozen=True)
class ClassifierLevel:
    """One level for classifiers: the logit margin κ, the JPEG qualities drawn for the deployment's views (None:
    judged as written only; see `advpriv.protect.views`), and MND's search. The views' levels search fewer, cheaper
    steps than faces' (each step already shows the model two views) with finer λ windows, chosen on 16 images of
    imagenet-val (bench/results/classifier_robust.md says what the settings tried showed)."""

    kappa: float
    jpeg: tuple[int, int] | None
    config: MNDConfig


CLASSIFIER_LEVELS = {
    "low": ClassifierLevel(0.5, None, MNDConfig(steps=50)),
    "medium": ClassifierLevel(1.0, (70, 95), MNDConfig(steps=24, lam=16.0, search_every=4, stop_tol=0.05,
                                                        quorum=0.5)),
    "high": ClassifierLevel(2.0, (60, 90), MNDConfig(steps=30, lam=16.0, search_every=5, stop_tol=0.02, quorum=0.5)),
}


def strength_options(strength: str, target: str, mode: str = "dodge", config: MNDConfig = MNDConfig()) -> dict:
    """The protect options a strength stands for: for faces `margin`, `eot`, `visibility` and `config`; for
    classifiers `kappa`, `views` and `config`.

    `config` gives the settings a strength does not decide (time limit, learning rate); its search settings
    (steps, quorum, λ and for classifiers the λ windows) are the strength's.
    """
    if strength not in STRENGTHS:
        raise ValueError(f"unknown strength {strength!r}; choose one of {', '.join(STRENGTHS)}.")
    if target != FACE_TARGET:
        chosen = CLASSIFIER_LEVELS[strength]
        search = chosen.config
        return {"kappa": chosen.kappa, "views": chosen.jpeg,
                "config": replace(config, steps=search.steps, quorum=search.quorum, lam=search.lam,
                                  search_every=search.search_every, stop_tol=search.stop_tol)}
    level = STRENGTHS[strength]
    return {"config": replace(config, steps=level.steps, quorum=level.quorum, lam=level.lam),
            "margin": level.scale * (DODGE_MARGIN if mode == "dodge" else IMPERSONATE_MARGIN),
            "eot": level.eot, "visibility": level.visibility}
