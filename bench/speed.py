"""MND's speed on the ImageNet benchmark's images, against the stored run: same images, same settings.

Usage: OMP_NUM_THREADS=2 .venv/bin/python bench/speed.py [--n 200] [--label NAME]

Protects the images of bench/results/imagenet_efficientnet_lite0.json (batches of 8, MND defaults, as that
benchmark does) and compares success, median PSNR and median seconds per image with its "MND (defaults)" rows.
Appends a record to bench/results/speed.json and rewrites the table of bench/results/speed.md from all records,
keeping its hand-written "## Notes".
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
from advpriv.images import load_image
from advpriv.targets import load_target

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-val"
STORED = RESULTS / "imagenet_efficientnet_lite0.json"


def run(n: int) -> dict:
    stored = json.loads(STORED.read_text())
    names, before = stored["images"][:n], stored["methods"]["MND (defaults)"][:n]
    labels = {}
    for line in (DATA / "labels.csv").read_text().splitlines()[1:]:
        file, label = line.split(",")[:2]
        labels[file] = int(label)
    target, rows = load_target("efficientnet-lite0"), []
    torch.manual_seed(0)
    for start in range(0, len(names), 8):
        chunk = names[start : start + 8]
        results = protect([load_image(DATA / "images" / f) for f in chunk], target=target, method="mnd",
                          labels=[labels[f] for f in chunk], batch_size=8)
        rows += [{"success": r.success, "psnr": r.metrics["psnr"], "seconds": r.seconds} for r in results]
        print(f"{len(rows)} images done", file=sys.stderr, flush=True)
    summary = lambda rs: {"success": sum(r["success"] for r in rs) / len(rs),  # noqa: E731
                          "psnr": statistics.median(r["psnr"] for r in rs),
                          "seconds": statistics.median(r["seconds"] for r in rs)}
    return {"n": len(rows), "before": summary(before), "after": summary(rows)}


def table(records: list[dict]) -> str:
    lines = ["# MND's speed on the ImageNet benchmark's images", "",
             "Command: `OMP_NUM_THREADS=2 .venv/bin/python bench/speed.py --n N --label NAME`. *before*: the stored",
             "MND rows of imagenet_efficientnet_lite0.json (same images, same settings); *after*: this run.", "",
             "| label | when (UTC) | load average | images | success before → after | median PSNR before → after | "
             "median s/image before → after |", "|---|---|---|---|---|---|---|"]
    for r in records:
        b, a = r["before"], r["after"]
        lines.append(f"| {r['label']} | {r['when']} | {r['load']} | {r['n']} | {b['success']:.1%} → {a['success']:.1%} | "
                     f"{b['psnr']:.2f} → {a['psnr']:.2f} | {b['seconds']:.2f} → {a['seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--label", default="current code")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: this benchmark needs ../shared/data/imagenet-val beside the repository.")
    load = f"{os.getloadavg()[0]:.2f}"
    record = {"label": args.label, "when": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "load": load, **run(args.n)}
    path = RESULTS / "speed.json"
    records = (json.loads(path.read_text()) if path.exists() else []) + [record]
    path.write_text(json.dumps(records, indent=1))
    markdown = RESULTS / "speed.md"
    notes = markdown.read_text().partition("\n## Notes")[1:] if markdown.exists() else ()
    markdown.write_text(table(records) + "".join(notes))


if __name__ == "__main__":
    main()
