"""MND's speed against a stored benchmark run: same images, same settings, this code.

Usage: OMP_NUM_THREADS=2 .venv/bin/python bench/speed.py [--set imagenet|celeba] [--n 200] [--label NAME]

- imagenet: the images of bench/results/imagenet_efficientnet_lite0.json against EfficientNet-Lite0 (batches of 8,
  MND defaults, as that benchmark does), compared with its "MND (defaults)" rows.
- celeba: the celeba-id probes of bench/results/faces.json, dodging dlib's ResNet alone with `protect_faces` (MND
  defaults, margin 1/3, as bench/faces.py runs it), compared with its "mnd" rows; seconds are MND's, as there.

Success is the attacked model's exact verdict on the 8-bit result. Appends a record to bench/results/speed.json
and rewrites the table of bench/results/speed.md from all records, keeping its hand-written "## Notes".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from advpriv import protect
from advpriv.faces.objectives import DODGE_MARGIN
from advpriv.images import load_image
from advpriv.protect.face_protect import protect_faces
from advpriv.targets import load_target
from notes import write_keeping_notes  # bench/, beside this script

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
IMAGENET, CELEBA_ID = SHARED / "imagenet-val", SHARED / "celeba-id"


def run_imagenet(n: int) -> tuple[list[dict], list[dict]]:
    stored = json.loads((RESULTS / "imagenet_efficientnet_lite0.json").read_text())
    names, before = stored["images"][:n], stored["methods"]["MND (defaults)"][:n]
    labels = {}
    for line in (IMAGENET / "labels.csv").read_text().splitlines()[1:]:
        file, label = line.split(",")[:2]
        labels[file] = int(label)
    target, rows = load_target("efficientnet-lite0"), []
    torch.manual_seed(0)
    for start in range(0, len(names), 8):
        chunk = names[start : start + 8]
        results = protect([load_image(IMAGENET / "images" / f) for f in chunk], target=target, method="mnd",
                          labels=[labels[f] for f in chunk], batch_size=8)
        rows += [{"success": r.success, "psnr": r.metrics["psnr"], "seconds": r.seconds} for r in results]
        print(f"{len(rows)} images done", file=sys.stderr, flush=True)
    return before, rows


def run_celeba(n: int) -> tuple[list[dict], list[dict]]:
    before = json.loads((RESULTS / "faces.json").read_text())["rows"]["mnd"][:n]
    paths = {p.name: p for p in CELEBA_ID.glob("*/*.jpg")}
    protect_faces(load_image(paths[before[0]["probe"]]), margin=DODGE_MARGIN)  # warm-up: models loaded, caches filled
    rows = []
    for stored in before:
        result = protect_faces(load_image(paths[stored["probe"]]), margin=DODGE_MARGIN)
        rows.append({"success": result.success, "psnr": result.metrics["psnr"], "seconds": result.seconds})
        print(f"{len(rows)} faces done", file=sys.stderr, flush=True)
    return before, rows


def summary(rows: list[dict]) -> dict:
    return {"success": sum(r["success"] for r in rows) / len(rows),
            "psnr": statistics.median(r["psnr"] for r in rows),
            "seconds": statistics.median(r["seconds"] for r in rows)}  # fmt: skip


def table(records: list[dict]) -> str:
    lines = ["# MND's speed against the stored benchmark runs", "",
             "Command: `OMP_NUM_THREADS=2 .venv/bin/python bench/speed.py --set SET --n N --label NAME`. *before*: the",
             "stored MND rows of imagenet_efficientnet_lite0.json (imagenet) or faces.json (celeba), same images and",
             "settings; *after*: this run. Success: the attacked model's verdict on the 8-bit result.", "",
             "| set | label | when (UTC) | load average | images | success before → after | median PSNR before → after | "
             "median s/image before → after |", "|---|---|---|---|---|---|---|---|"]
    for r in records:
        b, a = r["before"], r["after"]
        lines.append(f"| {r.get('set', 'imagenet')} | {r['label']} | {r['when']} | {r['load']} | {r['n']} | "
                     f"{b['success']:.1%} → {a['success']:.1%} | {b['psnr']:.2f} → {a['psnr']:.2f} | "
                     f"{b['seconds']:.2f} → {a['seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("imagenet", "celeba"), default="imagenet")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--label", default="current code")
    args = parser.parse_args()
    data = IMAGENET if args.set == "imagenet" else CELEBA_ID
    if not data.is_dir():
        sys.exit(f"{data} not found: this benchmark needs ../shared/data beside the repository.")
    load = f"{os.getloadavg()[0]:.2f}"
    before, after = (run_imagenet if args.set == "imagenet" else run_celeba)(args.n)
    record = {"set": args.set, "label": args.label, "when": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
              "load": load, "n": len(after), "before": summary(before), "after": summary(after)}
    path = RESULTS / "speed.json"
    records = (json.loads(path.read_text()) if path.exists() else []) + [record]
    path.write_text(json.dumps(records, indent=1))
    write_keeping_notes(RESULTS / "speed.md", table(records))


if __name__ == "__main__":
    main()
