"""Which visibility numbers match what a person sees? Protected faces with their change scaled down, side by side.

Reads protected faces-wild photos that `bench/transfer.py --save-dir DIR` wrote (DIR/METHOD/NAME.png), and for each
writes copies whose change from the original is scaled by k (0.25, 0.5, 1 by default; rounded to 8 bits). For
every copy it measures, inside the largest face's detector box: SSIM, SSIM of the face resized to 112 pixels,
the mean CIEDE2000 over the eyes and lips, and `advpriv.visibility.face_change` (how visibly the skin changed). It
writes a table and a montage of the faces at native resolution (original | each k), so that a person can say
at which k they stop seeing the change and read off the numbers there.

    .venv/bin/python bench/visibility_scale.py --save-dir /tmp/vis_out --method mnd-default
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from advpriv.faces import find_faces
from advpriv.faces.judges import as_uint8
from advpriv.images import load_image
from advpriv.quality import ssim
from advpriv.visibility import face_parts, face_visibility

sys.path.insert(0, str(Path(__file__).resolve().parent))
from face_montage import WILD, face_crop_box, write_sheet  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def scaled(clean: np.ndarray, protected: np.ndarray, k: float) -> np.ndarray:
    """`clean` plus k times the change to `protected` (H,W,3 uint8), rounded to 8 bits."""
    change = protected.astype(np.float64) - clean.astype(np.float64)
    return np.clip(np.round(clean + k * change), 0, 255).astype(np.uint8)


def measure(clean: torch.Tensor, copy: torch.Tensor, box: tuple[int, ...]) -> dict[str, float]:
    """The face's numbers for one copy (3,H,W) against `clean`."""
    out = face_visibility(clean, copy, face_parts(as_uint8(clean), box))
    left, top, right, bottom = box
    small = [F.interpolate(t[None, :, top : bottom + 1, left : right + 1], size=(112, 112), mode="bilinear",
                           antialias=True) for t in (clean, copy)]  # fmt: skip
    out["ssim112"] = float(ssim(*small)[0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--save-dir", type=Path, required=True)
    parser.add_argument("--method", default="mnd-default")
    parser.add_argument("--scales", default="0.25,0.5,1")
    parser.add_argument("--faces", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS / "visibility_scale.md")
    args = parser.parse_args()
    scales = [float(k) for k in args.scales.split(",")]
    names = sorted(p.stem for p in (args.save_dir / args.method).glob("*.png"))[: args.faces]
    if not names:
        sys.exit(f"no protected photos in {args.save_dir / args.method}; run bench/transfer.py --save-dir first")
    columns = ("ssim", "ssim112", "ciede2000", "ciede2000_p99")
    table: dict[float, list[dict[str, float]]] = {k: [] for k in scales}
    rows = []
    for name in names:
        original = np.asarray(Image.open(WILD / f"{name}.jpg").convert("RGB"))
        protected = np.asarray(Image.open(args.save_dir / args.method / f"{name}.png").convert("RGB"))
        clean = load_image(WILD / f"{name}.jpg")
        face = max(find_faces(clean, arcface=False), key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        copies = [scaled(original, protected, k) for k in scales]
        for k, copy in zip(scales, copies):
            table[k].append(measure(clean, torch.from_numpy(copy).permute(2, 0, 1).float() / 255, face.box))
        crop = face_crop_box(WILD / f"{name}.jpg")
        rows.append((name, [Image.fromarray(a).crop(crop) for a in (original, *copies)]))
    montage = args.out.with_suffix(".jpg")
    write_sheet(rows, ["original", *(f"k={k:g}" for k in scales)], montage)
    lines = ["# Visibility numbers against what a person sees", "",
             f"Command: `.venv/bin/python bench/visibility_scale.py {' '.join(sys.argv[1:])}`; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
             f"{len(names)} faces-wild photos protected by `{args.method}`, their change scaled by k. Medians over "
             f"the largest face of each photo, in its detector box (montage: {montage.name}, native resolution).", "",
             "| k | face SSIM | face SSIM at 112 px | ΔE00 eyes+lips | ΔE00 p99 (1-pixel blur) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for k, values in table.items():
        medians = [statistics.median(v[c] for v in values) for c in columns]
        lines.append(f"| {k:g} | " + " | ".join(f"{m:.3f}" if c.startswith("ssim") else f"{m:.2f}"
                                                for c, m in zip(columns, medians)) + " |")  # fmt: skip
    lines += ["", "| photo | " + " | ".join(f"k={k:g} SSIM / ΔE00 p99" for k in scales) + " |",
              "|---|" + "---|" * len(scales)]
    for i, name in enumerate(names):
        lines.append(f"| {name} | " + " | ".join(f"{table[k][i]['ssim']:.3f} / {table[k][i]['ciede2000_p99']:.2f}"
                                                for k in scales) + " |")  # fmt: skip
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
