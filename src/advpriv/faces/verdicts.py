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

`protection_verdict` turns the verdicts of every version of a written file into the one answer that its headline,
its colour and every table show (the service's page and the command line share it).

Example:
    >>> from advpriv.faces.judges import DlibJudge
    >>> faces = face_verdicts([DlibJudge()], "protected.png", "clean.jpg", boxes=[(50, 40, 130, 120)])  # doctest: +SKIP
    >>> summary_line(faces, ["dlib"])                                                                  # doctest: +SKIP
    'dlib: 0/1 recognised'
"""

from __future__ import annotations

from typing import Literal, Sequence

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


def judge_names(faces: Sequence[dict]) -> list[str]:
    """The judges that gave a verdict on any of `faces`, in order of appearance.

    >>> judge_names([{"judges": {"dlib": {}}}, {"judges": {"mobilefacenet": {}, "dlib": {}}}])
    ['dlib', 'mobilefacenet']
    """
    return list(dict.fromkeys(name for face in faces for name in face["judges"]))


Case = Literal["all", "attacked", "none"]
COPIES = {"jpeg85": "after JPEG quality 85", "half": "after a half-size resize",
          "pil-bilinear": "through the deployment's Pillow bilinear resize",
          "pil-bicubic": "through the deployment's Pillow bicubic resize"}
"""How a person reads each re-encoded copy's name (`advpriv.protect.reencode`)."""
CLASSIFIER = "the classifier"


def copy_label(name: str, written: bool = False) -> str:
    """ "as written (png)" for the file as written, "after JPEG quality 85" for a re-encoding.

    >>> copy_label("png", written=True), copy_label("jpeg85")
    ('as written (png)', 'after JPEG quality 85')
    """
    return f"as written ({name})" if written else COPIES.get(name, f"after {name}")


def protection_verdict(success: bool, variants: dict[str, dict], attacked: Sequence[str],
                       impersonate: bool = False) -> dict:
    """The one verdict on a written file, from every version's verdicts (`FileReport.variants`, written file first).

    `case`: "all" when every judge reaches the goal on every face of every copy; "attacked" when the attacked models
    reach it on the file as written (`success`, and every judge that is one of the `attacked` model names) but some
    judge or copy does not; "none" when the attacked models do not. `headline` and `detail` say so in words (about
    matching the target when impersonating; `missed` lists each judge and copy that misses the goal), and `copies`
    gives, per copy in order, its own case and, per judge, faces matched over faces known and whether the goal is
    reached. A classifier's copies have no faces: the classifier is their one judge, and a copy's `success` its word.

    >>> faces = lambda *matches: [{"judges": {"dlib": {"matches": False}, "mobilefacenet": {"matches": m}}}
    ...                           for m in matches]
    >>> verdict = protection_verdict(True, {"png": {"success": False, "faces": faces(True)},
    ...                                     "jpeg85": {"success": False, "faces": faces(True)}}, ["dlib", "facenet"])
    >>> verdict["case"], verdict["headline"]
    ('attacked', 'Protected from the attacked models only.')
    >>> verdict["detail"]
    'Faces still recognised: mobilefacenet 1/1 as written (png), 1/1 after JPEG quality 85.'
    >>> [(c["name"], c["case"]) for c in verdict["copies"]]
    [('png', 'attacked'), ('jpeg85', 'attacked')]
    """
    judges = judge_names([face for version in variants.values() for face in version["faces"]])
    copies = [_copy(name, version, judges, attacked, impersonate, success if i == 0 else True, written=i == 0)
              for i, (name, version) in enumerate(variants.items())]
    case: Case = "none" if copies[0]["case"] == "none" else (
        "all" if all(c["case"] == "all" for c in copies) else "attacked")
    missed = [{"judge": j["judge"], "attacked": j["attacked"], "copy": c["name"], "label": c["label"],
               "matched": j["matched"], "known": j["known"]} for c in copies for j in c["judges"] if not j["reached"]]
    goal = "impersonate" if impersonate else ("classifier" if not judges else "dodge")
    headline, detail = _words(goal, case, missed, attacked, copies)
    return {"case": case, "goal": goal, "headline": headline, "detail": detail, "missed": missed,
            "attacked": list(attacked), "copies": copies}


def _copy(name: str, version: dict, judges: list[str], attacked: Sequence[str], impersonate: bool,
          attacked_reach: bool, written: bool) -> dict:
    """One copy's verdict: per judge the counts and the goal; its case ("all", "attacked", "none")."""
    if judges:
        rows = []
        for judge in judges:
            matched, known = recognised(version["faces"], judge)
            rows.append({"judge": judge, "attacked": judge in attacked, "matched": matched, "known": known,
                         "reached": matched == (known if impersonate else 0)})
    else:
        rows = [{"judge": CLASSIFIER, "attacked": True, "matched": None, "known": None,
                 "reached": bool(version["success"])}]
    attacked_reach = attacked_reach and all(r["reached"] for r in rows if r["attacked"])
    case = ("all" if all(r["reached"] for r in rows) else "attacked") if attacked_reach else "none"
    return {"name": name, "label": copy_label(name, written), "case": case, "judges": rows,
            "sees": version.get("summary", "")}


_HEADLINES = {
    "dodge": {"all": "Protected from every judge, on every copy.", "attacked": "Protected from the attacked models only.",
              "none": "Not protected."},
    "impersonate": {"all": "Recognised as the target by every judge, on every copy.",
                    "attacked": "Recognised as the target by the attacked models only.",
                    "none": "Not recognised as the target."},
    "classifier": {"all": "Protected: the classifier is fooled on every copy.",
                   "attacked": "Protected on the file as written only.",
                   "none": "Not protected: the classifier is not fooled by the file as written."},
}


def _words(goal: str, case: Case, missed: list[dict], attacked: Sequence[str], copies: list[dict]) -> tuple[str, str]:
    """The headline, and a sentence naming who still recognises (or does not match the target) on which copy."""
    headline = _HEADLINES[goal][case]
    if goal == "classifier":
        return headline, "It sees " + ", ".join(f"\u201c{c['sees']}\u201d {c['label']}" for c in copies) + "."
    if case == "all":
        judges = ", ".join(j["judge"] for j in copies[0]["judges"])
        return headline, f"Checked by {judges}: {', '.join(c['label'] for c in copies)}."
    per_judge: dict[str, list[str]] = {}
    for m in missed:
        per_judge.setdefault(m["judge"], []).append(f"{m['matched']}/{m['known']} {m['label']}")
    said = "; ".join(f"{judge} {', '.join(parts)}" for judge, parts in per_judge.items())
    sentences = []
    if case == "none" and not any(m["attacked"] and m["copy"] == copies[0]["name"] for m in missed):
        sentences.append(f"The attacked models ({', '.join(attacked)}) do not reach the goal on the file as written.")
    if said:
        sentences.append(f"{'Faces matching the target' if goal == 'impersonate' else 'Faces still recognised'}: {said}.")
    return headline, " ".join(sentences)
