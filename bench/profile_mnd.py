"""Profile MND: where the time goes (top functions by own time), on EfficientNet-Lite0, on celeba-id faces or on
one 12-megapixel photo.

Usage: OMP_NUM_THREADS=2 .venv/bin/python bench/profile_mnd.py [--set imagenet|celeba|photo|wild] [--images 8] [--top 18]

imagenet: the first `--images` ImageNet validation images (../shared/data/imagenet-val) in one batch at the default
settings. celeba: one probe of each of the first `--images` celeba-id identities, dodging dlib's ResNet with
`protect_faces` (margin 1/3, as bench/faces.py does), one at a time. photo: `protect_faces` on the photo that
bench/photo_speed.py times (faces-wild 000565.jpg enlarged to 4000×3000), its detection included. wild: the
classifier's default level (`--strength medium`: the deployment's views) on `--images` full-size faces-wild photos,
away from EfficientNet-Lite0's own top-1, one at a time. Each after a warm-up, under cProfile; prints seconds per
image, success, PSNR and the profile.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from advpriv import protect
from advpriv.faces.objectives import DODGE_MARGIN
from advpriv.images import load_image
from advpriv.protect.face_protect import protect_faces
from advpriv.targets import load_target

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def imagenet(n: int) -> Callable[[], list]:
    target = load_target("efficientnet-lite0")
    rows = list(csv.DictReader(open(DATA / "imagenet-val" / "labels.csv")))[:n]
    images = [load_image(DATA / "imagenet-val" / "images" / r["file"]) for r in rows]
    labels = [int(r["label"]) for r in rows]
    protect(images[:1], target=target, method="mnd", labels=labels[:1])
    return lambda: protect(images, target=target, method="mnd", labels=labels, batch_size=len(images))


def celeba(n: int) -> Callable[[], list]:
    identities = sorted(p for p in (DATA / "celeba-id").iterdir() if p.is_dir())[:n]
    images = [load_image(sorted(i.glob("*.jpg"))[12]) for i in identities]
    protect_faces(images[0], margin=DODGE_MARGIN)
    return lambda: [protect_faces(image, margin=DODGE_MARGIN) for image in images]


def photo() -> Callable[[], list]:
    from photo_speed import upscaled_photo  # bench/, beside this script

    source = DATA / "faces-wild" / "images" / "000565.jpg"
    protect_faces(load_image(source), margin=DODGE_MARGIN)
    with tempfile.TemporaryDirectory() as tmp:
        image = load_image(upscaled_photo(source, Path(tmp) / "photo-12mp.jpg"))
    return lambda: [protect_faces(image, margin=DODGE_MARGIN)]


def wild(n: int) -> Callable[[], list]:
    from advpriv.protect.strength import strength_options

    target = load_target("efficientnet-lite0")
    images = [load_image(p) for p in sorted((DATA / "faces-wild" / "images").iterdir())[:n]]
    options = strength_options("medium", "efficientnet-lite0")
    protect(images[:1], target=target, **options)
    return lambda: [protect([image], target=target, **options)[0] for image in images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("imagenet", "celeba", "photo", "wild"), default="imagenet")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--top", type=int, default=18)
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: this profile needs ../shared/data beside the repository.")
    run = {"imagenet": lambda: imagenet(args.images), "celeba": lambda: celeba(args.images), "photo": photo,
           "wild": lambda: wild(args.images)}[args.set]()
    profile, start = cProfile.Profile(), time.time()
    profile.enable()
    results = run()
    profile.disable()
    print(f"s/image {(time.time() - start) / len(results):.2f}, success {sum(r.success for r in results)}/{len(results)}, "
          f"PSNR {[round(r.metrics['psnr'], 1) for r in results]}")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
