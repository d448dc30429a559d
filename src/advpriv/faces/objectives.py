"""Face objectives for the MND optimiser: dodging and impersonation, over every face and every embedder.

Each objective maps candidate photos (N,3,H,W) in [0,1] to `(loss, success)` of shape (N,), as
`advpriv.protect.objectives` does. The faces were found once on the clean photos; each candidate is
warped to chips inside the objective, so gradients reach the full-resolution photo.
A face succeeds when every embedder agrees (an ensemble); a photo succeeds when all its faces do.
The loss is a C&W-style hinge on descriptor distance, zero once the goal is reached with `margin` to spare.
With `track_landmarks` (the default), landmarks are found again on each candidate inside the detector boxes
of the clean photo, as the real pipeline will do on the saved file, so that success is the judge's verdict.

Example:
    >>> import torch
    >>> from advpriv.faces.detect import find_faces
    >>> from advpriv.faces.embedders import dlib_embedder
    >>> photo = torch.rand(1, 3, 150, 150)
    >>> dodge = Dodge(photo, [find_faces(photo[0], aligned=True)], [dlib_embedder()])
    >>> loss, success = dodge(photo)
    >>> bool(success), bool(loss > 0)
    (False, True)
"""

from __future__ import annotations

from typing import Sequence

import torch

from advpriv.faces.align import extract_chip, resize_chip
from advpriv.faces.detect import Face, relandmark
from advpriv.faces.dlib_resnet import CHIP_SIZE
from advpriv.faces.embedders import FaceEmbedder

DEFAULT_MARGIN = 0.05  # in descriptor-distance units, beyond each embedder's threshold
LOSS_SCALE = 10.0  # descriptor distances are ~10× smaller than classifier logit margins; keeps MND's λ comparable


def face_chips(images: torch.Tensor, faces: Sequence[Sequence[Face]]) -> torch.Tensor:
    """Chips (M,3,150,150) of every face of every image, image by image, in the order of `faces`."""
    if len(faces) != len(images):
        raise ValueError(f"{len(images)} images but face lists for {len(faces)}")
    chips = [
        extract_chip(images[i : i + 1], face.warp) if face.warp else resize_chip(images[i : i + 1], CHIP_SIZE)
        for i, image_faces in enumerate(faces)
        for face in image_faces
    ]
    return torch.cat(chips)


@torch.no_grad()
def describe(images: torch.Tensor, faces: Sequence[Sequence[Face]], embedders: Sequence[FaceEmbedder]) -> list[torch.Tensor]:
    """Per embedder, the descriptors (M,D) of every face, as `face_chips` orders them."""
    chips = face_chips(images, faces)
    return [embedder(chips) for embedder in embedders]


class _FaceObjective:
    def __init__(
        self, faces: Sequence[Sequence[Face]], embedders: Sequence[FaceEmbedder], margin: float, track_landmarks: bool
    ) -> None:
        if not embedders:
            raise ValueError("a face objective needs at least one embedder")
        if any(len(image_faces) == 0 for image_faces in faces):
            raise ValueError("every image needs at least one face")
        self.faces, self.embedders, self.margin = [list(f) for f in faces], list(embedders), margin
        self.track_landmarks = track_landmarks
        self.owner = torch.tensor([i for i, image_faces in enumerate(self.faces) for _ in image_faces])
        self.references: list[torch.Tensor] = []

    def distances(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Per embedder, the distance (M,) of every face to its reference descriptor."""
        faces = [relandmark(x, f) for x, f in zip(images, self.faces)] if self.track_landmarks else self.faces
        chips = face_chips(images, faces)
        return [e.distance(e(chips), ref) for e, ref in zip(self.embedders, self.references)]

    def _per_image(self, losses: list[torch.Tensor], oks: list[torch.Tensor], n: int) -> tuple[torch.Tensor, torch.Tensor]:
        loss = LOSS_SCALE * torch.stack(losses).sum(0)
        failures = (~torch.stack(oks).all(0)).float()
        owner = self.owner.to(loss.device)
        per_image = torch.zeros(n, device=loss.device, dtype=loss.dtype).index_add(0, owner, loss)
        failed = torch.zeros(n, device=loss.device).index_add(0, owner, failures)
        return per_image, failed == 0


class Dodge(_FaceObjective):
    """Every face must stop matching itself: distance to its clean descriptor ≥ threshold + margin, per embedder.

    `clean` (N,3,H,W) are the clean photos and `faces[i]` the faces of photo i.
    """

    def __init__(
        self,
        clean: torch.Tensor,
        faces: Sequence[Sequence[Face]],
        embedders: Sequence[FaceEmbedder],
        margin: float = DEFAULT_MARGIN,
        track_landmarks: bool = True,
    ) -> None:
        super().__init__(faces, embedders, margin, track_landmarks)
        self.references = describe(clean, self.faces, self.embedders)

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        goals = [e.threshold + self.margin for e in self.embedders]
        dists = self.distances(images)
        losses = [(goal - d).clamp(min=0) for goal, d in zip(goals, dists)]
        return self._per_image(losses, [d >= goal for goal, d in zip(goals, dists)], len(images))


class Impersonate(_FaceObjective):
    """Every face must match the target identity: distance to its mean descriptor < threshold − margin.

    `targets` holds, per embedder, the target identity's mean descriptor (1,D) (see `identity_descriptors`).
    """

    def __init__(
        self,
        faces: Sequence[Sequence[Face]],
        embedders: Sequence[FaceEmbedder],
        targets: Sequence[torch.Tensor],
        margin: float = DEFAULT_MARGIN,
        track_landmarks: bool = True,
    ) -> None:
        super().__init__(faces, embedders, margin, track_landmarks)
        if len(targets) != len(self.embedders):
            raise ValueError(f"{len(targets)} target descriptors for {len(self.embedders)} embedders")
        self.references = [t.reshape(1, -1) for t in targets]

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        goals = [e.threshold - self.margin for e in self.embedders]
        dists = self.distances(images)
        losses = [(d - goal).clamp(min=0) for goal, d in zip(goals, dists)]
        return self._per_image(losses, [d < goal for goal, d in zip(goals, dists)], len(images))


def identity_descriptors(
    photos: Sequence[torch.Tensor], faces: Sequence[Face], embedders: Sequence[FaceEmbedder]
) -> list[torch.Tensor]:
    """Per embedder, the mean descriptor (1,D) of one face (`faces[i]`) in each photo (3,H,W) of an identity."""
    per_photo = [describe(photo[None], [[face]], embedders) for photo, face in zip(photos, faces)]
    means = []
    for k, embedder in enumerate(embedders):
        descriptors = torch.cat([d[k] for d in per_photo])
        if embedder.metric == "cosine":
            descriptors = torch.nn.functional.normalize(descriptors, dim=1)
        means.append(descriptors.mean(0, keepdim=True))
    return means
