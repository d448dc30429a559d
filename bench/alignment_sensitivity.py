"""Does a protection live on the pixels our alignment samples? Judge protected photos through other alignments.

The issue's hypothesis: a judge reads a large face through its own landmarks, its own similarity transform and its
own interpolation at a 3–6× downscale, so a change that fools a model through our bilinear ArcFace warp of the clean
landmarks may vanish through another. For each protected faces-wild photo (`bench/transfer.py --save-dir DIR`), each
model's distance between the clean and the protected face, over its threshold (above 1: not recognised), is read:

- ours: the clean photo's landmarks, our warp (what the optimiser saw);
- refound: landmarks found again on the protected photo;
- jitter: the clean landmarks moved by Gaussian noise of 1.5 pixels (8 draws; the mean ratio and the share fooled);
- half, antialiased / half, plain: the photo halved first (bilinear with and without antialiasing), then aligned.

    OMP_NUM_THREADS=1 .venv/bin/python bench/alignment_sensitivity.py --save-dir /tmp/vis_out --method mnd-medium
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from advpriv.faces import find_faces
from advpriv.faces.detect import Face
from advpriv.faces.specs import load_embedder
from advpriv.images import load_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import MODELS, UNSEEN, WILD, ensemble_specs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
UNSEEN_SPEC = f"{MODELS / UNSEEN}.onnx:threshold=0.79,metric=cosine,align=arcface,range=-1..1,size=112,name={UNSEEN}"


def ratio(model, clean: torch.Tensor, protected: torch.Tensor, face: Face, protected_face: Face | None = None) -> float:
    """Distance between the clean and the protected chip of `face`, over the model's threshold."""
    with torch.no_grad():
        a = model(face.chip(clean[None], "arcface", model.input_size))
        b = model((protected_face or face).chip(protected[None], "arcface", model.input_size))
        return float(model.distance(a, b)[0] / model.threshold)


def halved(image: torch.Tensor, antialias: bool) -> torch.Tensor:
    size = (image.shape[-2] // 2, image.shape[-1] // 2)
    return F.interpolate(image[None], size=size, mode="bilinear", antialias=antialias, align_corners=False)[0]


def scaled(face: Face, factor: float) -> Face:
    return Face(face.box, face.landmarks, face.warp, tuple((x * factor, y * factor) for x, y in face.arcface_points))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--save-dir", type=Path, required=True)
    parser.add_argument("--method", default="mnd-medium")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "alignment_sensitivity.md")
    args = parser.parse_args()
    torch.manual_seed(0)
    models = [load_embedder(spec) for spec in [*ensemble_specs(), UNSEEN_SPEC]]
    conditions = ["ours", "refound", "jitter", "jitter fooled", "half, antialiased", "half, plain"]
    rows: dict[str, dict[str, list[float]]] = {m.name: {c: [] for c in conditions} for m in models}
    paths = sorted((args.save_dir / args.method).glob("*.png"))
    for path in paths:
        clean, protected = load_image(WILD / f"{path.stem}.jpg"), load_image(path)
        face = max(find_faces(clean), key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        refound = [f for f in find_faces(protected) if abs(f.box[0] - face.box[0]) < 20 and abs(f.box[1] - face.box[1]) < 20]
        for model in models:
            row = rows[model.name]
            row["ours"].append(ratio(model, clean, protected, face))
            if refound:
                row["refound"].append(ratio(model, clean, protected, face, refound[0]))
            draws = []
            for _ in range(8):
                moved = tuple((x + 1.5 * float(torch.randn(())), y + 1.5 * float(torch.randn(()))) for x, y in face.arcface_points)
                draws.append(ratio(model, clean, protected, face, Face(face.box, face.landmarks, face.warp, moved)))
            row["jitter"].append(statistics.mean(draws))
            row["jitter fooled"].append(statistics.mean(d > 1 for d in draws))
            for name, antialias in (("half, antialiased", True), ("half, plain", False)):
                row[name].append(ratio(model, halved(clean, antialias), halved(protected, antialias), scaled(face, 0.5)))
        print(f"{path.stem} done", file=sys.stderr)
    lines = ["# Alignment sensitivity: is the protection tied to our warp?", "",
             f"Command: `OMP_NUM_THREADS=1 .venv/bin/python bench/alignment_sensitivity.py {' '.join(sys.argv[1:])}`", "",
             f"{len(paths)} faces-wild photos protected by `{args.method}`. Cells: the median over faces of the distance "
             "between the clean and the protected face over the model's threshold (above 1: not recognised as "
             "itself), and in brackets the share of faces above 1. 'jitter fooled': the mean share of 8 landmark "
             f"draws above 1. {UNSEEN} is the unseen judge (never attacked).", "",
             "| model | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]  # fmt: skip
    for name, row in rows.items():
        cells = []
        for c in conditions:
            values = row[c]
            if not values:
                cells.append("–")
            elif c == "jitter fooled":
                cells.append(f"{100 * statistics.mean(values):.0f} %")
            else:
                cells.append(f"{statistics.median(values):.2f} ({100 * statistics.mean(v > 1 for v in values):.0f} %)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
