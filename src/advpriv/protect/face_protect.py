"""Protect the faces in a photo against face recognition, and re-check a decoded copy with independent judges.

Only a padded box around the faces (`advpriv.faces.region`) is optimised: the chips read nothing else, so the
adversarial loss and its gradients are those of the whole photo, at the cost of the box; every other pixel is kept
bit for bit. Visibility is weighed where people look, not over the whole photo: MND's quality loss is
`advpriv.visibility.VisibilityLoss` on that box (CIELAB change in steps a person sees, eyes and lips weighed up,
plus SSIM and GMSD), so a large background cannot pay for a changed face. The report gives, per face, PSNR, SSIM
and VIF inside its box and the CIEDE2000 of its eyes and lips (`advpriv.visibility.face_visibility`), besides
the whole photo's metrics.

Example:
    >>> from advpriv.images import load_image
    >>> result = protect_faces(load_image("group.jpg"))          # doctest: +SKIP
    >>> result.before, result.success, result.recheck(result.image)  # doctest: +SKIP
    ('2 faces', True, Check(success=True, summary='dlib: 0/2 recognised', faces=[...]))
"""

from __future__ import annotations

import time
from functools import cache, lru_cache
from typing import Sequence

import numpy as np
import torch

from ..faces import MODES, Identity, face_objective, find_faces
from ..faces.detect import scan_faces
from ..faces.embedders import FaceEmbedder, dlib_embedder, reads_arcface
from ..faces.judges import DlibJudge, EmbedderJudge, Judge, as_uint8
from ..faces.objectives import ObjectiveLogits
from ..faces.region import Region, face_region
from ..faces.verdicts import face_verdicts, goal_reached, summary_line
from ..images import quantize
from ..quality import quality_report
from ..visibility import FaceParts, VisibilityBudget, VisibilityLoss, face_parts, face_visibility
from .anchors import Smoothed, anchor_attack
from .api import Check, Protected
from .eot import EOT, EOTConfig, Robust
from .mnd import LUMA_CHROMA, MNDConfig, mnd
from .reencode import REENCODINGS, reencode


@lru_cache(maxsize=1)
def _dlib_judge() -> DlibJudge:
    """The default judge, loaded once."""
    return DlibJudge()


def jpeg_aligned(region: Region) -> Region:
    """`region` grown up and left to a multiple of 16 pixels, so its JPEG blocks are those of the whole photo.

    >>> jpeg_aligned(Region(20, 35, 100, 120)).box
    (16, 32, 100, 120)
    """
    return Region(region.top // 16 * 16, region.left // 16 * 16, region.bottom, region.right)


def protect_faces(
    image: torch.Tensor,
    mode: str = "dodge",
    as_images: Sequence[torch.Tensor] | None = None,
    embedders: Sequence[FaceEmbedder] | None = None,
    judges: Sequence[Judge] | None = None,
    aligned: bool = False,
    margin: float | None = None,
    method: str = "mnd",
    config: MNDConfig = MNDConfig(),
    eot: EOTConfig | None = None,
    smooth: float = 0.0,
    visibility: VisibilityBudget | None = None,
    **budget: float,
) -> Protected:
    """Protect every face of one photo (3,H,W) in [0,1]: dodge (default) or impersonate the `as_images` identity.

    embedders: the face models attacked together (dlib's ResNet by default). judges: what re-checks the written
    file (`DlibJudge()` by default; add e.g. an `OnnxJudge`). Every attacked model judges too, first, through the
    real pipeline (`EmbedderJudge`), unless a judge has its name. margin: see `advpriv.faces.face_objective`.
    eot: with MND, every face must also stay protected after a random re-encoding drawn every step (see
    `advpriv.protect.eot`; `advpriv.protect.strength` names the usual settings). smooth: with an anchor, attack
    the mean of the objective on the photo and on a copy blurred by this sigma (LowKey's smoothing); 0 for none.
    visibility: with MND, the most any one face may change (`advpriv.visibility.VisibilityBudget`); a face that
    cannot reach the goal inside it keeps to it, and success is False.
    `recheck(decoded)` on the result returns a `Check`: `success` says whether the attacked models still reach the
    goal on the decoded copy; `faces` and `summary` say, per judge, whether each face is still detected and still
    matches (its clean self when dodging, the target identity when impersonating; see `advpriv.faces.verdicts`),
    and each face's `quality` is the PSNR and SSIM inside its detector box.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    judges = list(judges) if judges else [_dlib_judge()]
    embedders = list(embedders) if embedders else [dlib_embedder(image.device)]
    named = {judge.name: judge for judge in judges}
    attacked = {e.name: named.get(e.name) or EmbedderJudge(e) for e in embedders}  # one judge per name
    judges = [*attacked.values(), *(judge for judge in judges if judge.name not in attacked)]
    faces = find_faces(image, aligned, arcface=reads_arcface(embedders))  # ArcFace chips, if read, are in the region
    region = jpeg_aligned(face_region(faces, tuple(image.shape[-2:])))
    crop = region.crop(image)
    objective, _ = face_objective(crop, mode, as_images, embedders, aligned, margin, faces=region.shift(faces))
    if mode == "impersonate" and as_images:
        targets = (as_images if isinstance(as_images, Identity) else Identity(as_images, aligned)).gallery(judges)
    else:
        targets = None

    @cache
    def clean_pixels() -> np.ndarray:
        return as_uint8(image)

    start = time.perf_counter()
    if method == "mnd":
        goal = objective if eot is None else Robust(objective, EOT(eot))
        parts = [face_parts(clean_pixels(), face.box).shift(region.left, region.top) for face in faces]
        quality = VisibilityLoss(crop[None], parts, config.weights, visibility)
        result = mnd(crop[None], goal, config, quality=quality, basis=LUMA_CHROMA)
        adv_crop, success = result.images, result.success
    else:
        goal = ObjectiveLogits(objective) if not smooth else Smoothed(ObjectiveLogits(objective), smooth)
        adv_crop = quantize(anchor_attack(method, goal, crop[None], torch.zeros(1, dtype=torch.long), **budget))
        with torch.no_grad():
            _, success = objective(adv_crop)
    seconds = time.perf_counter() - start
    adv = region.paste(image, adv_crop[0])
    changed = (region.top, region.left, region.bottom + 1, region.right + 1)

    names, impersonate = [judge.name for judge in judges], mode == "impersonate"
    boxes = None if aligned else [face.box for face in faces]

    @cache
    def clean_found() -> dict[str, list]:
        """What each judge finds in the clean photo, for every version judged."""
        return {judge.name: judge.describe(clean_pixels()) for judge in judges}

    @cache
    def parts_at(box: tuple[int, ...]) -> FaceParts:
        return face_parts(clean_pixels(), box)

    def judge_copy(pixels: np.ndarray) -> Check:
        """The judges alone, on a re-encoded copy of any size (the attacked models read full-size regions)."""
        verdicts = face_verdicts(judges, pixels, clean_pixels(), boxes, targets, clean_found())
        return Check(goal_reached(verdicts, impersonate), summary_line(verdicts, names, impersonate), verdicts)

    def recheck(decoded: torch.Tensor) -> Check:
        copies = {name: as_uint8(reencode(decoded, name)) for name in REENCODINGS}
        written = as_uint8(decoded)
        scan_faces([clean_pixels(), written, *copies.values()])  # side by side, remembered for the judges
        with torch.no_grad():
            _, reached = objective(region.crop(decoded)[None])
        verdicts = face_verdicts(judges, written, clean_pixels(), boxes, targets, clean_found())
        for face in verdicts:
            face["quality"] = face_visibility(image, decoded, parts_at(tuple(face["box"])))
        summary = summary_line(verdicts, names, impersonate)
        return Check(bool(reached[0]), summary, verdicts, {name: judge_copy(copy) for name, copy in copies.items()})

    return Protected(
        image=adv,
        success=bool(success[0]),
        label=-1,
        before=f"{len(faces)} face{'s' * (len(faces) != 1)}",
        after=f"{mode}: {'reached' if bool(success[0]) else 'not reached'}",
        metrics=quality_report(image[None], adv[None], within=changed)[0],
        seconds=seconds,
        recheck=recheck,
    )
