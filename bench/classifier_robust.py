"""Benchmark: does classifier protection survive the deployment's resize and a JPEG re-save? (EfficientNet-Lite0)

Images: the first N of ../shared/data/imagenet-val the model classifies correctly (227×227 JPEGs); with
`--photos`, the first 20 full-size photos of ../shared/data/faces-wild instead (357–1600 px wide), each protected
away from the model's own top-1. Each method protects them through `advpriv.protect` (batches of 8; photos one at
a time), and the 8-bit result is judged in five views:
- float: advpriv's own differentiable resize (what `advpriv.protect` reports as written);
- pil-bilinear / pil-bicubic: Pillow resize of the shorter side to 256 (8-bit), then the model's centre crop, as
  most deployments do it (`advpriv.protect.reencode.deployment_views`);
- jpeg85: the file re-saved by Pillow as JPEG quality 85, then the model's own view;
- jpeg85+pil: JPEG 85, then the Pillow bilinear view.
Success: the view's top-1 differs from the label. Seconds: per image, from the same run for every method, so
MND's time over PGD-10's is a fair ratio on this machine.

    OMP_NUM_THREADS=1 .venv/bin/python bench/classifier_robust.py --n 200
    OMP_NUM_THREADS=1 .venv/bin/python bench/classifier_robust.py --photos

Writes bench/results/classifier_robust.{md,json} (or classifier_robust_photos.*); a re-run resumes after the last
finished batch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from advpriv import protect
from advpriv.images import load_image
from advpriv.protect.reencode import deployment_views, jpeg85
from advpriv.protect.strength import strength_options
from advpriv.targets import load_target
from advpriv.targets.efficientnet import SHORT_SIDE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imagenet_protect import correctly_classified  # noqa: E402  (the same images as the main classifier table)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "imagenet-val"
PHOTOS = ROOT.parent / "shared" / "data" / "faces-wild" / "images"
RESULTS = ROOT / "bench" / "results"
PGD10 = "PGD-L∞ ε=2/255, 10 steps"
SETTINGS: dict[str, dict] = {
    "MND, strength low (as written only)": {"strength": "low"},
    "MND, strength medium (deployment views, default)": {"strength": "medium"},
    "MND, strength high (deployment views)": {"strength": "high"},
    "PGD-L∞ ε=1/255, 10 steps": {"method": "pgd", "eps": 1 / 255, "alpha": 0.25 / 255},
    PGD10: {"method": "pgd", "eps": 2 / 255, "alpha": 0.5 / 255},
    "PGD-L∞ ε=4/255, 10 steps": {"method": "pgd", "eps": 4 / 255, "alpha": 1 / 255},
    "C&W-L2, c=1, 50 steps": {"method": "cw"},
}
PHOTO_SETTINGS = ("MND, strength medium (deployment views, default)", PGD10)
PILLOW = deployment_views(SHORT_SIDE)
VIEWS = {
    "float": lambda image: image,
    **PILLOW,
    "jpeg85": jpeg85,
    "jpeg85+pil": lambda image: PILLOW["pil-bilinear"](jpeg85(image)),
}


def full_size_photos(target: torch.nn.Module, n: int = 20) -> tuple[list[str], list[torch.Tensor], list[int]]:
    """The first `n` faces-wild photos at full size, each labelled with the model's own top-1."""
    paths = sorted(PHOTOS.iterdir())[:n]
    images = [load_image(p) for p in paths]
    return [p.name for p in paths], images, [int(target.predict(image[None])[0]) for image in images]


def run(n: int, out: Path, photos: bool) -> dict:
    torch.manual_seed(0)
    target = load_target("efficientnet-lite0")
    names, images, labels = full_size_photos(target, n) if photos else correctly_classified(target, n)
    batch, settings = (1, PHOTO_SETTINGS) if photos else (8, tuple(SETTINGS))
    raw = json.loads(out.read_text()) if out.exists() else {}
    if raw.get("requested") != names:
        raw = {"requested": names, "images": [], "methods": {title: [] for title in settings}}
    for start in range(len(raw["images"]), len(names), batch):
        chunk = slice(start, start + batch)
        for title in settings:
            setting = dict(SETTINGS[title])
            options = strength_options(setting.pop("strength"), "efficientnet-lite0") if "strength" in setting else {}
            method = setting.pop("method", "mnd")
            results = protect(images[chunk], target=target, method=method, labels=labels[chunk], batch_size=batch,
                              **options, **setting)  # fmt: skip
            for r, label in zip(results, labels[chunk]):
                fooled = {view: int(target.predict(transform(r.image)[None])[0]) != label for view, transform in VIEWS.items()}
                raw["methods"][title].append({"seconds": r.seconds, **r.metrics, "fooled": fooled,
                                              "size": list(r.image.shape[-2:])})
        raw["images"] += names[chunk]
        out.write_text(json.dumps(raw))
        print(f"{len(raw['images'])} images done", file=sys.stderr, flush=True)
    return raw


def table(raw: dict, command: str, photos: bool) -> str:
    what = ("full-size faces-wild photos (357–1600 px wide), each protected away from the model's own top-1, one "
            "at a time" if photos else "correctly classified images of `../shared/data/imagenet-val` (227×227 "
            "JPEGs), batches of 8")
    lines = [
        "# Classifier protection through the deployment's resize and JPEG (EfficientNet-Lite0)",
        "",
        f"Command: `{command}`",
        "",
        f"{len(raw['images'])} {what}. Cells: percent of images whose view is misclassified; PSNR, SSIM, VIF: "
        "median over images; seconds: median per image, one thread, with another developer's job on the other core "
        f"of this 2-core machine; × PGD-10: that median over `{PGD10}`'s in the same run.",
        "",
        "| method | " + " | ".join(VIEWS) + " | PSNR dB | SSIM | VIF | s/image | × PGD-10 |",
        "|---|" + "---|" * len(VIEWS) + "---|---|---|---|---|",
    ]
    pgd = statistics.median(r["seconds"] for r in raw["methods"][PGD10]) if raw["methods"].get(PGD10) else None
    for title, rows in raw["methods"].items():
        if not rows:
            continue
        rates = " | ".join(f"{100 * statistics.mean(r['fooled'][v] for r in rows):.1f}" for v in VIEWS)
        med = {k: statistics.median(r[k] for r in rows) for k in ("psnr", "ssim", "vif", "seconds")}
        ratio = f"{med['seconds'] / pgd:.1f}" if pgd else "–"
        lines.append(f"| {title} | {rates} | {med['psnr']:.2f} | {med['ssim']:.4f} | {med['vif']:.4f} | "
                     f"{med['seconds']:.2f} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="number of images (photos: at most 20 are used)")
    parser.add_argument("--photos", action="store_true", help="full-size faces-wild photos instead of imagenet-val")
    args = parser.parse_args()
    source = PHOTOS if args.photos else DATA
    if not source.is_dir():
        sys.exit(f"{source} not found: this benchmark needs ../shared/data beside the repository.")
    torch.set_num_threads(1)
    stem = "classifier_robust_photos" if args.photos else "classifier_robust"
    n = min(args.n, 20) if args.photos else args.n
    raw = run(n, RESULTS / f"{stem}.json", args.photos)
    command = f"OMP_NUM_THREADS=1 .venv/bin/python bench/classifier_robust.py {'--photos' if args.photos else f'--n {n}'}"
    (RESULTS / f"{stem}.md").write_text(table(raw, command, args.photos))
    print((RESULTS / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()
