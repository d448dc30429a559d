"""What to protect against and how, as plain values: `advpriv protect` checks and loads them, and they travel to
`advpriv batch`'s Ray workers, which load the models themselves.

The fields are `advpriv protect`'s options; `options()` turns them into the keyword arguments of `make_protector`
(face models are loaded where it is called).

Example:
    >>> job = ProtectJob(target="efficientnet-lite0", method="fgsm", strength="low", steps=5)
    >>> target, options = job.options()
    >>> target, sorted(options), options["config"].steps
    ('efficientnet-lite0', ['config', 'kappa', 'target_class', 'trust_code', 'views'], 5)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from advpriv.faces import MODES, NoFaceError, identity_faces
from advpriv.images import ImageError, load_image
from advpriv.protect.api import METHODS, Protected
from advpriv.protect.files import FACE_TARGET, make_protector
from advpriv.protect.strength import STRENGTHS, strength_options


class JobError(ValueError):
    """Protection options that cannot work together; the message says what to change."""


@dataclass(frozen=True)
class ProtectJob:
    """`advpriv protect`'s protection options (see `advpriv protect --help`); paths and specs are strings.
    `trust_model_code` lets TorchScript and pickle-holding .pt2 model files load (they are code)."""

    target: str = FACE_TARGET
    method: str = "mnd"
    strength: str = "medium"
    steps: int | None = None
    kappa: float | None = None
    target_class: int | None = None
    mode: str = "dodge"
    as_photos: tuple[str, ...] = ()
    aligned: bool = False
    embedders: tuple[str, ...] = ()
    dlib: bool = True
    facenet: bool = True  # FaceNet joins the attacked ensemble once fetched (advpriv models fetch facenet)
    judges: tuple[str, ...] = ()
    trust_model_code: bool = False

    def __post_init__(self) -> None:
        for value, name, choices in ((self.method, "method", METHODS), (self.strength, "strength", STRENGTHS),
                                     (self.mode, "mode", MODES)):
            if value not in choices:
                raise JobError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}.")
        if self.steps is not None and self.steps < 1:
            raise JobError(f"--steps {self.steps}: give at least 1 step.")

    @property
    def face_model(self) -> str | None:
        """`target` when it names a face model file (PATH:threshold=T or PATH:similarity=S, ...), else None."""
        from advpriv.faces.specs import SpecError, parse_spec  # face models load only for a face job

        try:
            return self.target if {"threshold", "similarity"} & set(parse_spec(self.target)[1]) else None
        except SpecError as e:
            raise JobError(str(e)) from None

    def options(self) -> tuple[str, dict]:
        """The target name and keyword arguments for `make_protector` (loads the face models a face job names)."""
        if self.target == FACE_TARGET or self.face_model:
            target = FACE_TARGET
            options = {**self._face_options(), **strength_options(self.strength, FACE_TARGET, self.mode)}
        else:
            target = self.target
            options = {"target_class": self.target_class, "trust_code": self.trust_model_code,
                       **strength_options(self.strength, self.target)}
            if self.kappa is not None:
                options["kappa"] = self.kappa
        if self.steps is not None:
            options["config"] = replace(options["config"], steps=self.steps)
        return target, options

    def protector(self) -> Callable[[torch.Tensor], Protected]:
        """The protector of `advpriv.protect.files`, with its models loaded."""
        target, options = self.options()
        return make_protector(target, self.method, **options)

    def _face_options(self) -> dict:
        from advpriv.faces.specs import DLIB, SpecError, load_embedder, load_judge
        from advpriv.models.ensemble import default_specs
        from advpriv.models.user_models import UserModelsError

        if self.mode == "impersonate" and not self.as_photos:
            raise JobError("impersonation needs photos of the target identity: add --as PHOTO (one or more).")
        attacked = [self.face_model] if self.face_model else []
        try:
            defaults = default_specs(self.dlib and not attacked, self.facenet and not attacked)
        except UserModelsError as e:
            raise JobError(str(e)) from None
        if not attacked + defaults + list(self.embedders):
            raise JobError("--no-dlib leaves no face model to attack (FaceNet is left out or not fetched): add "
                           "--embedder PATH:threshold=T, or drop --no-dlib.")
        try:
            as_images = [load_image(p) for p in self.as_photos]
            identity_faces(as_images, [f"--as photo {p}" for p in self.as_photos], self.aligned)
            specs = dict.fromkeys(attacked + defaults + list(self.embedders))
            embedders = [load_embedder(s, self.trust_model_code) for s in specs]
            judges = [load_judge(s) for s in dict.fromkeys([DLIB, *self.judges])]
        except (ImageError, NoFaceError, SpecError, FileNotFoundError) as e:
            raise JobError(str(e)) from None
        names = [j.name for j in judges]
        if len(set(names)) < len(names):
            raise JobError(f"two judges share a name ({', '.join(names)}); give each --judge its own name=...")
        return {"mode": self.mode, "as_images": as_images, "aligned": self.aligned, "embedders": embedders,
                "judges": judges}
