"""Protect faces against face recognition: dlib's ResNet in PyTorch, dlib detection, differentiable chips.

`face_objective` is the front door: it finds the faces of a photo and returns an objective for the MND
optimiser (`advpriv.protect.mnd.mnd`), plus the faces it found. Judges in `advpriv.faces.judges` then
check the saved 8-bit result with the real dlib pipeline and with an unseen ONNX model; `advpriv.faces.verdicts`
turns their answers into per-face verdicts. `advpriv.faces.region` gives the box of a photo that protection may
change, and `advpriv.faces.specs` loads user face models named as "model.pt:threshold=0.4".
`advpriv.protect.face_protect.protect_faces` puts these together for one photo.

Example:
    >>> import torch
    >>> from advpriv.protect.mnd import mnd
    >>> photo = torch.rand(3, 150, 150)
    >>> objective, faces = face_objective(photo, mode="dodge", aligned=True)
    >>> result = mnd(photo[None], objective)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Sequence

import torch

from advpriv.faces.detect import Face, NoFaceError, find_faces
from advpriv.faces.embedders import FaceEmbedder, dlib_embedder, file_embedder, torchscript_embedder
from advpriv.faces.objectives import DODGE_MARGIN, IMPERSONATE_MARGIN, Dodge, Impersonate, identity_descriptors

MODES = ("dodge", "impersonate")

__all__ = [
    "MODES", "Dodge", "Face", "FaceEmbedder", "Identity", "Impersonate", "NoFaceError",
    "dlib_embedder", "face_objective", "file_embedder", "find_faces", "identity_faces", "torchscript_embedder",
]  # fmt: skip


def _largest(faces: list[Face]) -> Face:
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


def identity_faces(photos: Sequence[torch.Tensor], names: Sequence[str] | None = None,
                   aligned: bool = False) -> list[Face]:
    """The largest face of each photo of the identity to impersonate.

    names: how to call each photo in the NoFaceError raised when one has no face (default "target photo N").

    >>> identity_faces([torch.zeros(3, 8, 8)], aligned=True)[0].box
    (0, 0, 7, 7)
    """
    names = names or [f"target photo {i + 1}" for i in range(len(photos))]
    return [_largest(find_faces(photo, aligned, what=name)) for photo, name in zip(photos, names)]


class Identity(Sequence[torch.Tensor]):
    """Photos (3,H,W) of the identity to impersonate, whose faces, descriptors and judges' gallery are found once
    and reused for every photo protected: pass one as `as_images` (`make_protector` does) instead of the list.

    >>> identity = Identity([torch.zeros(3, 8, 8)], aligned=True)
    >>> len(identity), identity.faces() is identity.faces()
    (1, True)
    """

    def __init__(self, photos: Sequence[torch.Tensor], aligned: bool = False) -> None:
        self.photos, self.aligned = list(photos), aligned
        self._faces: list[Face] | None = None
        self._descriptors: dict[tuple[int, ...], list[torch.Tensor]] = {}
        self._galleries: dict[tuple[str, ...], dict] = {}

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, i):  # type: ignore[override]
        return self.photos[i]

    def faces(self) -> list[Face]:
        """The largest face of each photo."""
        if self._faces is None:
            self._faces = identity_faces(self.photos, aligned=self.aligned)
        return self._faces

    def descriptors(self, embedders: Sequence[FaceEmbedder]) -> list[torch.Tensor]:
        """Per embedder, the identity's mean descriptor (see `identity_descriptors`)."""
        key = tuple(map(id, embedders))
        if key not in self._descriptors:
            self._descriptors[key] = identity_descriptors(self.photos, self.faces(), embedders)
        return self._descriptors[key]

    def gallery(self, judges) -> dict:
        """Per judge name, the descriptors of the identity's faces (see `advpriv.faces.verdicts.identity_gallery`)."""
        from advpriv.faces.verdicts import identity_gallery

        key = tuple(j.name for j in judges)
        if key not in self._galleries:
            self._galleries[key] = identity_gallery(judges, self.photos)
        return self._galleries[key]


def face_objective(
    image: torch.Tensor,
    mode: str = "dodge",
    as_images: Sequence[torch.Tensor] | None = None,
    embedders: Sequence[FaceEmbedder] | None = None,
    aligned: bool = False,
    margin: float | None = None,
    faces: Sequence[Face] | None = None,
) -> tuple[Dodge | Impersonate, list[Face]]:
    """An objective over every face of `image` (3,H,W) in [0,1], and those faces.

    mode: "dodge" (no face may match its clean self) or "impersonate" (every face must match the identity
        shown in `as_images`, a list of (3,H,W) photos whose largest face is used).
    embedders: the face models to fool together; dlib's ResNet by default.
    aligned: take each image as one already-aligned face instead of detecting faces.
    margin: distance beyond each embedder's match threshold that counts as success; by default
        0.2 for dodging and 0.05 for impersonation (see `advpriv.faces.objectives`).
    faces: the faces of `image` when already found (e.g. shifted into a region by `advpriv.faces.region`).
    Raises NoFaceError, naming the photo, when a face is needed and none is found.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    embedders = list(embedders) if embedders else [dlib_embedder(image.device)]
    faces = list(faces) if faces else find_faces(image, aligned)
    if mode == "dodge":
        return Dodge(image[None], [faces], embedders, DODGE_MARGIN if margin is None else margin), faces
    if not as_images:
        raise ValueError("impersonation needs photos of the target identity: pass as_images=[photo, ...]")
    identity = as_images if isinstance(as_images, Identity) else Identity(as_images, aligned)
    targets = identity.descriptors(embedders)
    return Impersonate([faces], embedders, targets, IMPERSONATE_MARGIN if margin is None else margin), faces
