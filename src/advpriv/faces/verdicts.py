"""What several judges say about each face of a protected photo, as plain dicts and one summary line.

Per face of the clean photo (its dlib detector box), per judge:
`{"detected": bool, "distance": float | None, "matches": bool, "threshold": float}`.
- detected: the judge's detector finds the face again in the protected photo (box overlap ≥ 0.3; a protected copy
  of another size, e.g. a platform's half-size resize, has the boxes found in it scaled to the clean photo's size);
- distance: the judge's descriptor distance to the reference (None when not detected);
- matches: distance < threshold. The reference is the face's clean self when dodging, and the target identity's
  photos when impersonating (the distance to the nearest of them), so "matches" always means "the judge sees the
  identity it is asked about": bad for dodging, good for impersonation.
A judge that does not find a face even in the clean photo says nothing about it (the face has no entry for it).

Example:
    >>> from advpriv.faces.judges import DlibJudge
    >>> faces = face_verdicts([DlibJudge()], "protected.png", "clean.jpg", boxes=[(50, 40, 130, 120)])  # doctest: +SKIP
    >>> summary_line(faces, ["dlib"])                                                                  # doctest: +SKIP
    'dlib: 0/1 recognised'
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from advpriv.faces.judges import Box, ImageLike, Judge, as_uint8, compare_faces, iou

MIN_IOU = 0.3


def _largest(found: list[tuple[Box, np.ndarray]]) -> tuple[Box, np.ndarray] | None:
    return max(found, key=lambda f: (f[0][2] - f[0][0]) * (f[0][3] - f[0][1]), default=None)


def _overlapping(box: Box, found: list[tuple[Box, np.ndarray]]) -> tuple[Box, np.ndarray] | None:
    best = max(found, key=lambda f: iou(box, f[0]), default=None)
    return best if best is not None and iou(box, best[0]) >= MIN_IOU else None


def _in_clean_coordinates(found: list[tuple[Box, np.ndarray]], protected_hw: tuple[int, ...],
                          clean_hw: tuple[int, ...]) -> list[tuple[Box, np.ndarray]]:
    """Boxes found in a resized copy, scaled to the clean photo's pixel grid (inclusive corners)."""
    if protected_hw == clean_hw:
        return found
    sy, sx = clean_hw[0] / protected_hw[0], clean_hw[1] / protected_hw[1]
    return [((round(l * sx), round(t * sy), round((r + 1) * sx) - 1, round((b + 1) * sy) - 1), d)
            for (l, t, r, b), d in found]  # fmt: skip


def identity_gallery(judges: Sequence[Judge], photos: Sequence[ImageLike]) -> dict[str, np.ndarray]:
    """Per judge name, the descriptors (G,D) of the largest face in each photo of one identity.

    Raises ValueError naming the judge when it finds a face in none of the photos.
    """
    gallery = {}
    for judge in judges:
        found = [_largest(judge.describe(as_uint8(p))) for p in photos]
        descriptors = [f[1] for f in found if f is not None]
        if not descriptors:
            raise ValueError(
                f"the {judge.name} judge finds no face in any of the {len(photos)} photos of the identity to "
                "impersonate; give frontal photos where the face is at least about 40 pixels wide"
            )
        gallery[judge.name] = np.stack(descriptors)
    return gallery


def face_verdicts(
    judges: Sequence[Judge],
    protected: ImageLike,
    clean: ImageLike,
    boxes: Sequence[Box] | None = None,
    targets: dict[str, np.ndarray] | None = None,
    clean_found: dict[str, list[tuple[Box, np.ndarray]]] | None = None,
) -> list[dict]:
    """One entry `{"box": [l, t, r, b], "judges": {name: verdict}}` per face of `clean` (see the module doc).

    `protected` may be a resized copy: each judge finds its faces there, and boxes are compared at `clean`'s size.

    boxes: the clean faces' detector boxes; None when the whole image is one aligned face (each judge then takes
        the largest face it finds in it). targets: per judge name, the target identity's descriptors (G,D) from
        `identity_gallery`, for impersonation; None to compare each face with its clean self.
    clean_found: per judge name, `judge.describe` of `clean` when already known (a photo judged in several
        versions is described once).
    """
    protected_pixels, clean_pixels = as_uint8(protected), as_uint8(clean)
    if boxes is None:
        height, width = clean_pixels.shape[:2]
        entries = [{"box": [0, 0, width - 1, height - 1], "judges": {}}]
    else:
        entries = [{"box": [int(v) for v in box], "judges": {}} for box in boxes]
    for judge in judges:
        described = clean_found[judge.name] if clean_found else judge.describe(clean_pixels)
        references = [_largest(described)] if boxes is None else [_overlapping(b, described) for b in boxes]
        found = _in_clean_coordinates(judge.describe(protected_pixels), protected_pixels.shape[:2], clean_pixels.shape[:2])
        gallery = None if targets is None else targets[judge.name]
        for entry, reference in zip(entries, references):
            if reference is None:
                continue
            (verdict,) = compare_faces(judge, [reference], found, gallery, MIN_IOU)
            entry["judges"][judge.name] = {
                "detected": verdict.detected,
                "distance": verdict.distance,
                "matches": verdict.matches,
                "threshold": float(judge.threshold),
            }
    return entries


def recognised(faces: Sequence[dict], judge: str) -> tuple[int, int]:
    """(faces `judge` still matches, faces it found in the clean photo).

    >>> recognised([{"judges": {"dlib": {"matches": False}}}, {"judges": {}}], "dlib")
    (0, 1)
    """
    verdicts = [f["judges"][judge] for f in faces if judge in f["judges"]]
    return sum(v["matches"] for v in verdicts), len(verdicts)


def goal_reached(faces: Sequence[dict], impersonate: bool = False) -> bool:
    """Whether every judge's verdict on every face it knows is the goal: no match when dodging, a match otherwise.

    >>> goal_reached([{"judges": {"dlib": {"matches": False}, "mobilefacenet": {"matches": True}}}])
    False
    """
    return all(v["matches"] == impersonate for f in faces for v in f["judges"].values())


def summary_line(faces: Sequence[dict], judge_names: Sequence[str], impersonate: bool = False) -> str:
    """"dlib: 0/2 recognised; mobilefacenet: 2/2 recognised" (or "… match the target" when impersonating).

    A judge that missed some faces even in the clean photo says so: "mobilefacenet: 0/1 recognised (1 not found)".
    """
    parts = []
    for name in judge_names:
        matched, known = recognised(faces, name)
        text = f"{name}: {matched}/{known}"
        text += " match the target" if impersonate else " recognised"
        if known < len(faces):
            text += f" ({len(faces) - known} not found)"
        parts.append(text)
    return "; ".join(parts)
