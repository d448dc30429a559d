"""Benchmark: does classifier protection survive the deployment's resize and a JPEG re-save? (EfficientNet-Lite0)

Images: the first N of ../shared/data/imagenet-val the model classifies correctly. Each method protects them
through `advpriv.protect` (batches of 8); the 8-bit result is then judged in five views:
- float: advpriv's own differentiable resize (what the optimiser sees);
- pil-bilinear / pil-bicubic: Pillow resize of the shorter side to 256 (8-bit), centre crop 224, as most
  deployments do it;
- jpeg85: the file re-saved as JPEG quality 85, then the model's own view;
- jpeg85+pil: JPEG 85, then the Pillow bilinear view.
Success: the view's top-1 differs from the true label.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/classifier_robust.py --n 40

Writes bench/results/classifier_robust.md and .json; a re-run resumes after the last finished batch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from advpriv import protect
from advpriv.images import load_image, to_uint8
from advpriv.protect.reencode import jpeg85
from advpriv.protect.strength import strength_options
from advpriv.targets import load_target
from advpriv.targets.efficientnet import SHORT_SIDE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imagenet_protect import correctly_classified  # noqa: E402  (the same images as the main classifier table)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "imagenet-val"
RESULTS = ROOT / "bench" / "results"
SETTINGS: dict[str, dict] = {
    "MND, strength low (no EOT)": {"strength": "low"},
    "MND, strength medium (EOT, default)": {"strength": "medium"},
    "MND, strength high (EOT)": {"strength": "high"},
    "PGD-L∞ ε=2/255, 10 steps": {"method": "pgd", "eps": 2 / 255, "alpha": 0.5 / 255},
    "PGD-L∞ ε=4/255, 10 steps": {"method": "pgd", "eps": 4 / 255, "alpha": 1 / 255},
}


def pil_view(image: torch.Tensor, kernel: Image.Resampling) -> torch.Tensor:
    """The shorter side resized to 256 by Pillow on 8-bit pixels (the centre crop is the model's own)."""
    pil = Image.fromarray(to_uint8(image))
    scale = SHORT_SIDE / min(pil.size)
    pil = pil.resize((round(pil.width * scale), round(pil.height * scale)), kernel)
    return torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255).permute(2, 0, 1)


VIEWS = {
    "float": lambda image: image,
    "pil-bilinear": lambda image: pil_view(image, Image.Resampling.BILINEAR),
    "pil-bicubic": lambda image: pil_view(image, Image.Resampling.BICUBIC),
    "jpeg85": jpeg85,
    "jpeg85+pil": lambda image: pil_view(jpeg85(image), Image.Resampling.BILINEAR),
}


def run(n: int, out: Path, batch: int = 8) -> dict:
    torch.manual_seed(0)
    target = load_target("efficientnet-lite0")
    names, images, labels = correctly_classified(target, n)
    raw = json.loads(out.read_text()) if out.exists() else {}
    if raw.get("requested") != names:
        raw = {"requested": names, "images": [], "methods": {title: [] for title in SETTINGS}}
    for start in range(len(raw["images"]), len(names), batch):
        chunk = slice(start, start + batch)
        for title, setting in SETTINGS.items():
            setting = dict(setting)
            options = strength_options(setting.pop("strength"), "efficientnet-lite0") if "strength" in setting else {}
            method = setting.pop("method", "mnd")
            results = protect(images[chunk], target=target, method=method, labels=labels[chunk], batch_size=batch,
                              **options, **setting)  # fmt: skip
            for r, label in zip(results, labels[chunk]):
                fooled = {view: int(target.predict(transform(r.image)[None])[0]) != label for view, transform in VIEWS.items()}
                raw["methods"][title].append({"seconds": r.seconds, **r.metrics, "fooled": fooled})
        raw["images"] += names[chunk]
        out.write_text(json.dumps(raw))
        print(f"{len(raw['images'])} images done", file=sys.stderr, flush=True)
    return raw


def table(raw: dict, command: str) -> str:
    lines = [
        "# Classifier protection through the deployment's resize and JPEG (EfficientNet-Lite0)",
        "",
        f"Command: `{command}`",
        "",
        f"{len(raw['images'])} correctly classified images of `../shared/data/imagenet-val` (227×227 JPEGs). Cells: "
        "percent of images whose view is misclassified. Seconds: median per image, batches of 8, one thread on a "
        "shared 2-core machine (indicative).",
        "",
        "| method | " + " | ".join(VIEWS) + " | PSNR dB | SSIM | s/image |",
        "|---|" + "---|" * len(VIEWS) + "---|---|---|",
    ]
    for title, rows in raw["methods"].items():
        if not rows:
            continue
        rates = " | ".join(f"{100 * statistics.mean(r['fooled'][v] for r in rows):.1f}" for v in VIEWS)
        med = {k: statistics.median(r[k] for r in rows) for k in ("psnr", "ssim", "seconds")}
        lines.append(f"| {title} | {rates} | {med['psnr']:.2f} | {med['ssim']:.4f} | {med['seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="number of correctly classified images")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: this benchmark needs ../shared/data/imagenet-val beside the repository.")
    torch.set_num_threads(1)
    out = RESULTS / "classifier_robust.json"
    raw = run(args.n, out)
    command = f"OMP_NUM_THREADS=1 .venv/bin/python bench/classifier_robust.py --n {args.n}"
    (RESULTS / "classifier_robust.md").write_text(table(raw, command))
    print((RESULTS / "classifier_robust.md").read_text())


if __name__ == "__main__":
    main()
