"""Protect the faces in a photo against face recognition, and re-check a decoded copy with the real dlib pipeline.

Example:
    >>> from advpriv.images import load_image
    >>> result = protect_faces(load_image("group.jpg"))          # doctest: +SKIP
    >>> result.before, result.success, result.recheck(result.image)  # doctest: +SKIP
    ('2 faces', True, Check(success=True, summary='dlib: 0/2 recognised', faces=[...]))
"""

from __future__ import annotations

import time
from typing import Sequence

import torch

from ..faces import face_objective
from ..faces.embedders import FaceEmbedder
from ..faces.judges import DlibJudge, judge_faces
from ..faces.objectives import ObjectiveLogits
from ..images import quantize
from ..quality import quality_report
from .anchors import anchor_attack
from .api import Check, Protected
from .mnd import MNDConfig, mnd


def protect_faces(
    image: torch.Tensor,
    mode: str = "dodge",
    as_images: Sequence[torch.Tensor] | None = None,
    embedders: Sequence[FaceEmbedder] | None = None,
    aligned: bool = False,
    method: str = "mnd",
    config: MNDConfig = MNDConfig(),
    **budget: float,
) -> Protected:
    """Protect every face of one photo (3,H,W) in [0,1]: dodge (default) or impersonate the `as_images` identity.

    `recheck(decoded)` on the result answers, for a decoded copy of the written file: does it still reach the
    goal for the attacked models, and how many faces does the real dlib-bin pipeline still recognise?
    """
    objective, faces = face_objective(image, mode, as_images, embedders, aligned)
    start = time.perf_counter()
    if method == "mnd":
        result = mnd(image[None], objective, config)
        adv, success = result.images, result.success
    else:
        goal = ObjectiveLogits(objective)
        adv = quantize(anchor_attack(method, goal, image[None], torch.zeros(1, dtype=torch.long), **budget))
        with torch.no_grad():
            _, success = objective(adv)
    seconds = time.perf_counter() - start

    def recheck(decoded: torch.Tensor) -> Check:
        with torch.no_grad():
            _, reached = objective(decoded[None])
        if aligned or mode != "dodge":
            return Check(bool(reached[0]), _goal_text(mode, bool(reached[0])))
        judge = DlibJudge()
        verdicts = judge_faces(judge, decoded, image)
        recognised = sum(v.matches for v in verdicts)
        faces = [{"box": list(v.box), "judges": {judge.name: {"detected": v.detected, "distance": v.distance,
                                                               "matches": v.matches, "threshold": judge.threshold}}}
                 for v in verdicts]
        return Check(bool(reached[0]), f"dlib: {recognised}/{len(verdicts)} recognised", faces)

    return Protected(
        image=adv[0],
        success=bool(success[0]),
        label=-1,
        before=f"{len(faces)} face{'s' * (len(faces) != 1)}",
        after=_goal_text(mode, bool(success[0])),
        metrics=quality_report(image[None], adv)[0],
        seconds=seconds,
        recheck=recheck,
    )


def _goal_text(mode: str, reached: bool) -> str:
    return f"{mode}: {'reached' if reached else 'not reached'}"
