"""Plot: protection against the unseen judge on faces-wild against each face's visibility, one curve per method.

Reads `bench/transfer.py`'s faces-wild results (the JSON files named), and for every method plots the share of faces
the unseen MobileFaceNet no longer matches to their clean selves (PNG: filled; after JPEG 85: hollow) against the
median SSIM inside the face boxes (more visible to the left).

    .venv/bin/python bench/visibility_plot.py bench/results/transfer_wild_visibility.json \
        bench/results/transfer_wild_pgd.json bench/results/transfer_wild_lowkey.json \
        --before bench/results/transfer_wild.json --out bench/results/transfer_wild_visibility.png
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

UNSEEN = "mobilefacenet"
FAMILIES = {  # label, methods in order of strength
    "MND, 4-model ensemble (this round: per-face budget)": ("mnd-low", "mnd-medium", "mnd-high"),
    "MND out of the box (dlib + FaceNet port)": ("mnd-default", "mnd-default-high"),
    "ensemble PGD-L∞ ε 4, 8, 12": ("pgd4", "pgd8", "pgd12"),
    "LowKey-style ε 4, 8, 12": ("lowkey4", "lowkey8", "lowkey12"),
}
BEFORE = ("MND, 4-model ensemble, before this round", ("mnd-medium", "mnd-high"))


def point(rows: dict) -> tuple[float, float, float, int]:
    """Median face SSIM, % of faces the unseen judge no longer matches on the PNG and after JPEG 85, and faces."""
    faces = [f for photo in rows.values() for f in photo["per_face"]]
    cells = {v: [f["verdicts"][v][UNSEEN] for f in faces if f["verdicts"][v][UNSEEN] is not None] for v in ("png", "jpeg85")}
    rate = lambda v: 100 * statistics.mean(not (c["self"] and c["detected"]) for c in cells[v])  # noqa: E731
    return statistics.median(f["face"]["ssim"] for f in faces), rate("png"), rate("jpeg85"), len(faces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--before", type=Path, help="results of the previous version, drawn grey")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    wild = {}
    for path in args.results:
        wild.update(json.loads(path.read_text()).get("wild", {}))
    families = [(label, [m for m in methods if m in wild], wild) for label, methods in FAMILIES.items()]
    if args.before:
        families.append((BEFORE[0], list(BEFORE[1]), json.loads(args.before.read_text())["wild"]))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for rank, (label, methods, rows) in enumerate(families):
        if not methods:
            continue
        points = [(*point(rows[m]), m) for m in methods]
        grey = {"color": "0.6"} if label == BEFORE[0] else {}
        (line,) = ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=f"{label}, {points[0][3]} faces",
                          **grey)
        ax.plot([p[0] for p in points], [p[2] for p in points], "s", mfc="none", color=line.get_color())
        for i, p in enumerate(points):
            below = FAMILIES.get(label, ("",))[0].startswith(("pgd", "lowkey"))  # anchors: labels under the axis line
            offset = -12 - 9 * (rank - 2) if below else 4 + 9 * (i % 2)
            ax.annotate(p[4], (p[0], p[1]), fontsize=7, textcoords="offset points", xytext=(4, offset))
    ax.plot([], [], "s", mfc="none", color="0.3", label="hollow squares: after JPEG 85")
    ax.set_xlabel("median SSIM inside the face box (left: more visible)")
    ax.set_ylabel(f"faces not matched by the unseen {UNSEEN} (%)")
    ax.set_ylim(-14, 105)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("faces-wild photos at full size: protection from an unseen face model against visibility", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
