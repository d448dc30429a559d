"""A picture a person can judge: faces-wild faces at native resolution, the original beside each protected version.

Reads the results that `bench/transfer.py --save-dir DIR` wrote (DIR/METHOD/NAME.png), crops each photo's largest
face (its detector box grown by a third, so hair and ears are in), and lays the crops out one row per face:
original | each method. No scaling, so every pixel is as a viewer of the full-size photo would see it.

    .venv/bin/python bench/face_montage.py --save-dir /tmp/vis_out --methods mnd-low,mnd-default,mnd-medium,mnd-high
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from advpriv.faces import find_faces
from advpriv.images import load_image

ROOT = Path(__file__).resolve().parents[1]
WILD = ROOT.parent / "shared" / "data" / "faces-wild" / "images"


def face_crop_box(path: Path) -> tuple[int, int, int, int]:
    """The largest face's detector box grown by a third on every side (left, top, right, bottom; ends excluded)."""
    faces = find_faces(load_image(path), arcface=False)
    left, top, right, bottom = max((f.box for f in faces), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    grow_x, grow_y = (right - left) // 3, (bottom - top) // 3
    return left - grow_x, top - grow_y, right + grow_x + 1, bottom + grow_y + 1


def write_sheet(rows: list[tuple[str, list[Image.Image]]], titles: list[str], out: Path) -> None:
    """Crops laid out one row per face (`rows`: name and its crops), each crop labelled "name title"."""
    label, gap = 18, 6
    width = max(sum(c.width for c in crops) + gap * len(crops) for _, crops in rows)
    height = sum(crops[0].height + label + gap for _, crops in rows)
    sheet = Image.new("RGB", (width, height), "white")
    draw, y = ImageDraw.Draw(sheet), 0
    for name, crops in rows:
        x = 0
        for title, crop in zip(titles, crops):
            draw.text((x + 2, y + 3), f"{name} {title}", fill="black")
            sheet.paste(crop, (x, y + label))
            x += crop.width + gap
        y += crops[0].height + label + gap
    # A JPEG at quality 95 without chroma subsampling keeps what a viewer sees at a tenth of a PNG's size.
    options = {"quality": 95, "subsampling": 0} if out.suffix == ".jpg" else {}
    sheet.save(out, **options)
    print(f"wrote {out} ({width}×{height})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--save-dir", type=Path, required=True)
    parser.add_argument("--methods", default="mnd-medium")
    parser.add_argument("--faces", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "face_montage.jpg")
    args = parser.parse_args()
    methods = args.methods.split(",")
    names = sorted(p.stem for p in (args.save_dir / methods[0]).glob("*.png"))[: args.faces]
    rows = []
    for name in names:
        box = face_crop_box(WILD / f"{name}.jpg")
        versions = [Image.open(WILD / f"{name}.jpg").convert("RGB")]
        versions += [Image.open(args.save_dir / m / f"{name}.png").convert("RGB") for m in methods]
        rows.append((name, [v.crop(box) for v in versions]))
    write_sheet(rows, ["original", *methods], args.out)


if __name__ == "__main__":
    main()
