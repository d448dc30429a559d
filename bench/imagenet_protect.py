"""Benchmark: MND against FGSM / PGD / C&W (torchattacks) on EfficientNet-Lite0, ImageNet validation images.

Every method runs through `advpriv.protect`, so each is judged on its 8-bit image exactly as a user gets it.
Images are the first N of ../shared/data/imagenet-val/labels.csv that the model classifies correctly.
Methods run batch by batch on the same images; raw per-image results are saved after each batch, and a re-run
resumes after the last finished batch.

    .venv/bin/python bench/imagenet_protect.py --n 200

Writes bench/results/imagenet_efficientnet_lite0.md (and .json).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import torch

from advpriv import protect
from advpriv.images import load_image
from advpriv.targets import load_target

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "imagenet-val"
RESULTS = ROOT / "bench" / "results"

SETTINGS: list[tuple[str, str, dict[str, float]]] = [
    ("MND (defaults)", "mnd", {}),
    ("C&W-L2 c=1 (torchattacks defaults)", "cw", {"c": 1.0}),
    ("C&W-L2 c=10", "cw", {"c": 10.0}),
    ("PGD-L∞ ε=1/255", "pgd", {"eps": 1 / 255, "alpha": 0.25 / 255}),
    ("PGD-L∞ ε=2/255", "pgd", {"eps": 2 / 255, "alpha": 0.5 / 255}),
    ("FGSM ε=1/255", "fgsm", {"eps": 1 / 255}),
    ("FGSM ε=2/255", "fgsm", {"eps": 2 / 255}),
    ("FGSM ε=4/255", "fgsm", {"eps": 4 / 255}),
    ("FGSM ε=8/255", "fgsm", {"eps": 8 / 255}),
]
METRICS = ("psnr", "ssim", "ms_ssim", "gmsd", "vif", "l2", "linf")


def correctly_classified(target: torch.nn.Module, n: int) -> tuple[list[str], list[torch.Tensor], list[int]]:
    names, images, labels = [], [], []
    with open(DATA / "labels.csv") as f:
        for row in csv.DictReader(f):
            image, label = load_image(DATA / "images" / row["file"]), int(row["label"])
            if int(target.predict(image[None])[0]) == label:
                names.append(row["file"]), images.append(image), labels.append(label)
            if len(images) == n:
                break
    return names, images, labels


def run(n: int, out: Path, batch: int = 8) -> dict:
    """All methods on one batch of images after another, saving after each, so that a stopped run keeps a fair
    comparison on the batches it finished and a re-run resumes where it stopped."""
    torch.manual_seed(0)
    target = load_target("efficientnet-lite0")
    names, images, labels = correctly_classified(target, n)
    raw = json.loads(out.read_text()) if out.exists() else {}
    if raw.get("requested") != names:
        raw = {"requested": names, "images": [], "methods": {title: [] for title, _, _ in SETTINGS}}
    for start in range(len(raw["images"]), len(names), batch):
        chunk = slice(start, start + batch)
        for title, method, budget in SETTINGS:
            results = protect(images[chunk], target=target, method=method, labels=labels[chunk], batch_size=batch, **budget)
            raw["methods"][title] += [{"success": r.success, "seconds": r.seconds, **r.metrics} for r in results]
        raw["images"] += names[chunk]
        out.write_text(json.dumps(raw))
        print(f"{len(raw['images'])} images done", file=sys.stderr, flush=True)
    return raw


def table(raw: dict, command: str) -> str:
    n = len(raw["images"])
    lines = [
        "# MND vs anchors on EfficientNet-Lite0 (ImageNet val)",
        "",
        f"Command: `{command}`",
        "",
        f"{n} images from `../shared/data/imagenet-val` that the model classifies correctly (first in labels.csv order)"
        f" ({len(raw['requested'])} requested).",
        "Success: the *8-bit* image is misclassified (untargeted). Quality: medians over all images.",
        "GMSD: gradient-magnitude-similarity deviation (lower is better). VIF: visual information fidelity, the"
        " metric here built to predict human opinion (1 = identical; see the README). L2 and L∞ in [0,1] pixel units.",
        "Seconds: median per image, batch of 8, this machine's 2 CPU cores (shared with other jobs while it ran).",
        "",
        "| method | success | PSNR dB | SSIM | MS-SSIM | GMSD | VIF | L2 | L∞ ×255 | s/image |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for title, rows in raw["methods"].items():
        if not rows:
            continue
        med = {k: statistics.median(r[k] for r in rows) for k in (*METRICS, "seconds")}
        success = sum(r["success"] for r in rows) / len(rows)
        lines.append(
            f"| {title} | {success:.1%} | {med['psnr']:.2f} | {med['ssim']:.4f} | {med['ms_ssim']:.4f} | "
            f"{med['gmsd']:.4f} | {med['vif']:.4f} | {med['l2']:.3f} | {med['linf'] * 255:.2f} | {med['seconds']:.2f} |"
        )
    return "\n".join(lines + targets(raw)) + "\n"


def targets(raw: dict) -> list[str]:
    """The issue's targets, checked against the medians above."""
    summary = {
        title: {
            "success": sum(r["success"] for r in rows) / len(rows),
            **{k: statistics.median(r[k] for r in rows) for k in ("psnr", "ssim", "seconds")},
        }
        for title, rows in raw["methods"].items()
        if rows
    }
    mnd, cw = summary.pop("MND (defaults)"), summary["C&W-L2 c=1 (torchattacks defaults)"]
    beaten = [t for t, a in summary.items() if mnd["psnr"] > a["psnr"] and mnd["ssim"] > a["ssim"]]
    matched = [t for t, a in summary.items() if a["success"] <= mnd["success"]]
    ratio = mnd["seconds"] / cw["seconds"]
    verdict = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    return [
        "",
        "## Targets",
        "",
        f"- MND success ≥ 99 %: {mnd['success']:.1%}, {verdict(mnd['success'] >= 0.99)}.",
        f"- MND higher PSNR and SSIM than every anchor at equal or higher success: MND's success is ≥ that of "
        f"{len(matched)} of {len(summary)} anchor settings, and it beats {len(beaten)} of {len(summary)} on both "
        f"PSNR and SSIM, {verdict(set(matched) <= set(beaten))}.",
        f"- MND time within 3× of torchattacks' C&W-L2: {ratio:.1f}×, {verdict(ratio <= 3)}.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="number of correctly classified images")
    parser.add_argument("--table-only", action="store_true", help="rewrite the table from the saved JSON, run nothing")
    parser.add_argument("--name", default="imagenet_efficientnet_lite0", help="results file names in bench/results/")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: this benchmark needs ../shared/data/imagenet-val beside the repository.")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.name}.json"
    raw = json.loads(out.read_text()) if args.table_only else run(args.n, out)
    command = f".venv/bin/python bench/imagenet_protect.py --n {len(raw['images'])} --name {args.name}"
    (RESULTS / f"{args.name}.md").write_text(table(raw, command))


if __name__ == "__main__":
    main()
