"""Profile MND on EfficientNet-Lite0: where the time of one batch goes (top functions by own time).

Usage: OMP_NUM_THREADS=2 .venv/bin/python bench/profile_mnd.py [--images 8] [--top 18]

Protects the first `--images` ImageNet validation images (../shared/data/imagenet-val) in one batch at the default
settings, after a one-image warm-up, under cProfile, and prints seconds per image, success, PSNR and the profile.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import pstats
import sys
import time
from pathlib import Path

from advpriv import protect
from advpriv.images import load_image
from advpriv.targets import load_target

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-val"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--top", type=int, default=18)
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: this profile needs ../shared/data/imagenet-val beside the repository.")
    target = load_target("efficientnet-lite0")
    rows = list(csv.DictReader(open(DATA / "labels.csv")))[: args.images]
    images, labels = [load_image(DATA / "images" / r["file"]) for r in rows], [int(r["label"]) for r in rows]
    protect(images[:1], target=target, method="mnd", labels=labels[:1])
    profile, start = cProfile.Profile(), time.time()
    profile.enable()
    results = protect(images, target=target, method="mnd", labels=labels, batch_size=len(images))
    profile.disable()
    print(f"s/image {(time.time() - start) / len(images):.2f}, success {sum(r.success for r in results)}/{len(images)}, "
          f"PSNR {[round(r.metrics['psnr'], 1) for r in results]}")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
