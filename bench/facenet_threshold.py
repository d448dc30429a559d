"""FaceNet's match threshold: the cosine similarity at the equal error rate on clean celeba-id pairs.

Faces are found by dlib and cut to the ArcFace template at 160 pixels, as the judges do. The threshold is set on
the first 40 identities × 3 photos (as ../shared/models/README.md did for the ONNX conversion) and checked on the
next 80 identities. mobilefacenet.onnx, the unseen judge, is never used here.

    OMP_NUM_THREADS=1 .venv/bin/python bench/facenet_threshold.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from advpriv.faces.detect import detect_faces
from advpriv.faces.facenet import INPUT_SIZE, load_facenet
from advpriv.faces.judges import arcface_image_chip, equal_error_threshold

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba-id"
PHOTOS = 3


def descriptors(identities: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Unit descriptors of the first PHOTOS photos dlib finds a face in, per identity, and their identity labels."""
    facenet, chips, labels = load_facenet(), [], []
    for label, identity in enumerate(identities):
        found = 0
        for path in sorted(identity.glob("*.jpg")):
            pixels = np.asarray(Image.open(path).convert("RGB")).copy()
            faces = detect_faces(pixels)
            if faces:
                chips.append(arcface_image_chip(pixels, np.asarray(faces[0].arcface_points), INPUT_SIZE))
                labels.append(label)
                found += 1
            if found == PHOTOS:
                break
    with torch.no_grad():
        out = facenet(torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float() / 255)
    return torch.nn.functional.normalize(out, dim=1).numpy(), np.array(labels)


def pair_distances(unit: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distances of same-identity and different-identity pairs."""
    pairs = np.array(list(itertools.combinations(range(len(labels)), 2)))
    distance = 1 - (unit[pairs[:, 0]] * unit[pairs[:, 1]]).sum(1)
    same = labels[pairs[:, 0]] == labels[pairs[:, 1]]
    return distance[same], distance[~same]


def error_rates(same: np.ndarray, different: np.ndarray, threshold: float) -> tuple[float, float]:
    """False non-match and false match rates when faces match below `threshold`."""
    return float((same >= threshold).mean()), float((different < threshold).mean())


def auc(same: np.ndarray, different: np.ndarray) -> float:
    """ROC AUC: the chance that a same-identity pair is closer than a different-identity pair."""
    ranks = np.concatenate([same, different]).argsort().argsort()
    return float(1 - (ranks[: len(same)].sum() - len(same) * (len(same) - 1) / 2) / (len(same) * len(different)))


def main() -> None:
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: this benchmark needs the shared data beside the repository")
    torch.set_num_threads(1)
    identities = sorted(p for p in DATA.iterdir() if p.is_dir())
    for name, chosen in (("calibration", identities[:40]), ("check", identities[40:120])):
        same, different = pair_distances(*descriptors(chosen))
        if name == "calibration":
            calibrated = equal_error_threshold(same, different)
        frr, far = error_rates(same, different, calibrated)
        print(f"{name}: {len(chosen)} identities, {len(same)} same / {len(different)} different pairs, "
              f"AUC {auc(same, different):.3f}, similarity threshold {1 - calibrated:.3f}: "
              f"false non-match {frr:.1%}, false match {far:.1%}")


if __name__ == "__main__":
    main()
