"""The study folder's manifest (`study.json`): which pairs raters see, and which method made each.

A study folder holds `study.json`, the images under `images/` (`<pair>-o.png` the original, `<pair>-p.png` the
protected or reference version) and, once rated, `ratings.sqlite`. The page never learns a pair's method.

Example:
    >>> pair = Pair("p01", "mnd", "cat.png", "cat.protected.png")
    >>> Manifest([pair], repeats=["p01"]).pair("p01").method
    'mnd'
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from advpriv.images import atomic_write

MANIFEST = "study.json"
IMAGES = "images"
IDENTICAL, NOISE = "reference:identical", "reference:noise"
"""The methods of the hidden references: the original shown twice, and the original with strong Gaussian noise."""


class StudyError(ValueError):
    """A study folder or its inputs cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Pair:
    """One original and its changed version, shown to raters under an opaque id.

    source / changed: where the images came from (for the record; the page reads the copies under images/).
    psnr: of the changed image against the original, in dB (None when identical).
    """

    id: str
    method: str
    source: str
    changed: str
    psnr: float | None = None

    @property
    def original_file(self) -> str:
        return f"{IMAGES}/{self.id}-o.png"

    @property
    def changed_file(self) -> str:
        return f"{IMAGES}/{self.id}-p.png"


@dataclass(frozen=True)
class Manifest:
    """The pairs, the pairs each rater sees a second time (consistency check), and the presentation timing."""

    pairs: list[Pair]
    repeats: list[str] = field(default_factory=list)
    show_seconds: float = 3.0
    gap_seconds: float = 1.0

    def pair(self, pair_id: str) -> Pair:
        for pair in self.pairs:
            if pair.id == pair_id:
                return pair
        raise KeyError(pair_id)

    def methods(self) -> list[str]:
        """Method names in first-seen order, hidden references last."""
        names = list(dict.fromkeys(p.method for p in self.pairs))
        return [m for m in names if m not in (IDENTICAL, NOISE)] + [m for m in (IDENTICAL, NOISE) if m in names]


def save_manifest(manifest: Manifest, folder: Path) -> Path:
    data = {"pairs": [asdict(p) for p in manifest.pairs], "repeats": manifest.repeats,
            "show_seconds": manifest.show_seconds, "gap_seconds": manifest.gap_seconds}
    return atomic_write(folder / MANIFEST, (json.dumps(data, indent=2) + "\n").encode())


def load_manifest(folder: Path) -> Manifest:
    """Read `study.json`; StudyError naming the problem when it is missing or malformed."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise StudyError(f"{path} not found: {folder} is not a study folder; build one with `advpriv study make`.")
    try:
        data = json.loads(path.read_text())
        manifest = Manifest([Pair(**p) for p in data["pairs"]], list(data.get("repeats", [])),
                            float(data.get("show_seconds", 3.0)), float(data.get("gap_seconds", 1.0)))
    except (ValueError, KeyError, TypeError) as e:
        raise StudyError(f"{path} is not a valid study manifest ({e}); rebuild it with `advpriv study make`.") from None
    ids = [p.id for p in manifest.pairs]
    unknown = set(manifest.repeats) - set(ids)
    if len(set(ids)) != len(ids) or unknown:
        raise StudyError(f"{path}: pair ids must be unique and repeats must name pairs "
                         f"(unknown: {sorted(unknown)}); rebuild it with `advpriv study make`.")
    for pair in manifest.pairs:
        for name in (pair.original_file, pair.changed_file):
            if not (path.parent / name).is_file():
                raise StudyError(f"{path.parent / name} is missing: the study folder is incomplete; rebuild it.")
    return manifest
