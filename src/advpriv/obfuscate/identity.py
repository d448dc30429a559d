"""Pseudo-identities for face datasets without an identity file: group faces that dlib's face recogniser matches.

Each image is one aligned face (CelebA's crops). dlib's HOG detector finds it (or, where it does not, the
dataset's median face box is used), its 5-point landmarks cut dlib's 150-pixel chip, and dlib's ResNet (the
PyTorch port in `advpriv.faces`) describes it. The faces are then grouped by average-linkage clustering, cut
where the mean distance between two groups reaches `GROUP_THRESHOLD`; each group is one pseudo-person.

Linking faces below dlib's match threshold (0.6) and taking connected groups does not work: on celeba-attr's
10,000 faces the links chain every face into one group. Average linkage at 0.7 gives groups of at most a few
hundred faces that keep 80 % of a person's photo pairs together and merge 1 % of different people's pairs
(bench/results/obfuscator-hard/pseudo_identities.md). Clustering holds all pairwise distances: up to about
20,000 faces; for more, give CelebA's identity file.

Example:
    >>> ids = pseudo_identities(data, Path("runs/x/identities.txt"))      # doctest: +SKIP
    >>> group_descriptors(torch.tensor([[0.0, 0], [0.1, 0], [5, 5]])).tolist()
    [0, 0, 1]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from advpriv.faces.detect import dlib_models, import_dlib, to_uint8
from advpriv.faces.dlib_resnet import CHIP_SIZE
from advpriv.faces.embedders import dlib_embedder
from advpriv.images import atomic_write
from advpriv.obfuscate.data import AttributeData, read_identities

CHIP_PADDING = 0.25
"""dlib's `get_face_chip` padding, as `face_recognition` uses."""
PSEUDO_IDENTITIES = "pseudo_identities.txt"
"""Where a run folder keeps the pseudo-identities of its data."""
GROUP_THRESHOLD = 0.7
"""Mean dlib distance at which two groups of faces stay apart (chosen on celeba-id's people, see above)."""
MAX_FACES = 20_000
"""Most faces `group_descriptors` clusters (its pairwise distances take 4 bytes × N² / 2)."""


@torch.no_grad()
def face_descriptors(data: AttributeData, batch_size: int = 64) -> torch.Tensor:
    """dlib's 128-d descriptor (N,128) of each image's face (see the module docstring)."""
    dlib = import_dlib()
    detector, predictor = dlib_models()
    pixels = [to_uint8(data.images[i].permute(1, 2, 0).numpy()) for i in range(len(data))]
    found = [detector(p, 1) for p in pixels]
    boxes = np.array([[b[0].left(), b[0].top(), b[0].right(), b[0].bottom()] for b in found if b])
    if not len(boxes):
        raise ValueError("dlib found no face in any image; pseudo-identities need face photos.")
    fallback = dlib.rectangle(*(int(v) for v in np.median(boxes, 0)))
    embed = dlib_embedder()
    out = []
    for start in range(0, len(data), batch_size):
        chips = [dlib.get_face_chip(p, predictor(p, b[0] if b else fallback), size=CHIP_SIZE, padding=CHIP_PADDING)
                 for p, b in zip(pixels[start:start + batch_size], found[start:start + batch_size])]
        x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float().div(255)
        out.append(embed(x))
    return torch.cat(out)


def group_descriptors(descriptors: torch.Tensor, threshold: float = GROUP_THRESHOLD) -> torch.Tensor:
    """Group ids (N,), numbered from 0 in order of first appearance, of the average-linkage clusters of the
    descriptors (L2) cut at mean distance `threshold`."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    if len(descriptors) > MAX_FACES:
        raise ValueError(f"{len(descriptors):,} faces are too many to cluster (at most {MAX_FACES:,}); give the "
                         "data's identity file (CelebA's identity_CelebA.txt) instead.")
    if len(descriptors) < 2:
        return torch.zeros(len(descriptors), dtype=torch.long)
    clusters = fcluster(linkage(pdist(descriptors.double().numpy()), "average"), threshold, "distance")
    _, first = np.unique(clusters, return_index=True)
    order = {c: i for i, c in enumerate(clusters[np.sort(first)])}
    return torch.tensor([order[c] for c in clusters])


def grouping_check(groups: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """How well `groups` recover the true people `truth` of the same images: the share of same-person pairs put in
    different groups (these can leak a person across splits), of different-person pairs put in one group (harmless
    for privacy, costly for balance), and of people whose photos all share one group.

    >>> round(grouping_check(torch.tensor([0, 0, 1, 2]), torch.tensor([5, 5, 5, 6]))["same_person_split"], 3)
    0.667
    """
    same = truth[:, None] == truth[None, :]
    together = groups[:, None] == groups[None, :]
    pairs = ~torch.eye(len(truth), dtype=torch.bool)
    people = truth.unique()
    return {
        "images": len(truth),
        "people": len(people),
        "same_person_pairs": int((same & pairs).sum()) // 2,
        "same_person_split": float((same & pairs & ~together).sum() / (same & pairs).sum().clamp_min(1)),
        "different_people_merged": float((~same & together).sum() / (~same).sum().clamp_min(1)),
        "people_in_one_group": float(sum(len(groups[truth == p].unique()) == 1 for p in people) / len(people)),
    }


def write_identities(path: Path, files: list[str], identities: torch.Tensor) -> Path:
    """Write `image identity` lines (CelebA's identity_CelebA.txt format), atomically."""
    return atomic_write(Path(path), "".join(f"{f} {int(i)}\n" for f, i in zip(files, identities)).encode())


def pseudo_identities(data: AttributeData, cache: Path, threshold: float = GROUP_THRESHOLD) -> torch.Tensor:
    """The pseudo-person of each image: read from `cache` when it lists every image, else grouped and written
    there (a few minutes per 10,000 faces on one thread)."""
    cache = Path(cache)
    if cache.is_file():
        return read_identities(cache, data.files)
    groups = group_descriptors(face_descriptors(data), threshold)
    write_identities(cache, data.files, groups)
    return groups
