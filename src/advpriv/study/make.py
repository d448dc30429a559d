"""`advpriv study make`: a study folder from originals and each method's protected outputs, plus hidden references.

Each method folder holds that method's outputs as `advpriv protect` names them (`<stem>.protected.png` or
`.jpg`), matched to the originals by stem. Every image is decoded (EXIF orientation applied) and written as a
PNG with no metadata, so the page shows exactly the pixels the method produced. Hidden references: identical
pairs (the original twice) and noisy pairs (Gaussian noise tuned to about `noise_psnr` dB, measured).

Example:
    >>> make_study(Path("originals"), {"mnd": Path("out-mnd")}, Path("study"))   # doctest: +SKIP
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import torch

from advpriv.images import find_images, load_image, quantize, save_image
from advpriv.quality import psnr

from .manifest import IDENTICAL, MANIFEST, NOISE, Manifest, Pair, StudyError, save_manifest

PROTECTED_SUFFIXES = (".protected.png", ".protected.jpg")


def protected_outputs(folder: Path) -> dict[str, Path]:
    """The outputs in a method folder by original stem: `cat.protected.png` -> {"cat": path}."""
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).rglob("*")):
        for suffix in PROTECTED_SUFFIXES:
            if path.is_file() and path.name.endswith(suffix):
                found.setdefault(path.name[: -len(suffix)], path)
    return found


def noisy_copy(image: torch.Tensor, target_psnr: float, seed: int) -> tuple[torch.Tensor, float]:
    """The image plus Gaussian noise, 8-bit, at about `target_psnr` dB; returns it and its measured PSNR.

    >>> x = torch.full((3, 64, 64), 0.5)
    >>> round(noisy_copy(x, 30.0, seed=0)[1])
    30
    """
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(seed))
    sigma = 10 ** (-target_psnr / 20)  # MSE = sigma² on [0,1] images; clipping and rounding are corrected below
    for _ in range(4):
        noisy = quantize(image + sigma * noise)
        measured = psnr(image[None], noisy[None]).item()
        sigma *= 10 ** ((measured - target_psnr) / 20)
    return noisy, measured


def make_study(originals: Path, methods: dict[str, Path], out: Path, identical: int = 2, noisy: int = 2,
               repeats: int = 2, noise_psnr: float = 30.0, show_seconds: float = 3.0, gap_seconds: float = 1.0,
               seed: int = 0) -> Manifest:
    """Build the study folder `out` (new, or an empty folder) and return its manifest.

    identical / noisy: how many originals get each hidden reference. repeats: pairs every rater sees twice.
    The folder is built beside `out` and renamed into place at the end, so a failure leaves nothing half-made.
    """
    out = Path(out)
    if (out / MANIFEST).exists():
        raise StudyError(f"{out} already holds a study ({MANIFEST}); choose a new folder, so its ratings are kept.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StudyError(f"{out} exists and is not an empty folder; choose a new folder for the study.")
    clash = sorted(name for name in methods if name in (IDENTICAL, NOISE) or not name)
    if clash:
        raise StudyError(f"method name(s) {clash} are reserved or empty; name each method folder differently.")
    found = find_images([originals]) if Path(originals).is_dir() else []
    sources = {p.stem: p for p in found}
    if not sources:
        raise StudyError(f"no images found in {originals}; --originals must be a folder of the original photos.")
    if len(sources) < len(found):
        twice = sorted({p.stem for p in found if sum(q.stem == p.stem for q in found) > 1})
        raise StudyError(f"several originals share the name(s) {twice} (outputs are matched by name); rename them.")
    entries: list[tuple[str, Path, Path | None]] = []  # (method, original, changed or None for a reference)
    for name, folder in methods.items():
        outputs = protected_outputs(folder)
        matched = sorted(set(outputs) & set(sources))
        if not matched:
            raise StudyError(f"{folder} holds no `<stem>.protected.png|jpg` matching an original in {originals}; "
                             f"point --method {name}=DIR at the folder `advpriv protect -o` wrote.")
        entries += [(name, sources[stem], outputs[stem]) for stem in matched]
    if not entries:
        raise StudyError("no methods given: add --method NAME=DIR at least once.")
    rng = random.Random(seed)
    stems = sorted(sources)
    entries += [(IDENTICAL, sources[stem], None) for stem in rng.sample(stems, min(identical, len(stems)))]
    entries += [(NOISE, sources[stem], None) for stem in rng.sample(stems, min(noisy, len(stems)))]
    rng.shuffle(entries)  # ids carry no hint of the method
    out.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        pairs = [_write_pair(f"p{i + 1:02d}", method, original, changed, building, noise_psnr, seed + i)
                 for i, (method, original, changed) in enumerate(entries)]
        manifest = Manifest(pairs, sorted(rng.sample([p.id for p in pairs], min(repeats, len(pairs)))),
                            show_seconds, gap_seconds)
        save_manifest(manifest, building)
        os.replace(building, out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return manifest


def _write_pair(pair_id: str, method: str, original: Path, changed: Path | None, out: Path, noise_psnr: float,
                seed: int) -> Pair:
    image = load_image(original, min_side=1)  # a study shows photos of any size: no protection runs here
    if method == NOISE:
        other, measured = noisy_copy(image, noise_psnr, seed)
    else:
        other = image if changed is None else load_image(changed, min_side=1)
        if other.shape != image.shape:
            raise StudyError(f"{changed} is {tuple(other.shape[1:])} (H, W) but {original} is "
                             f"{tuple(image.shape[1:])}: a pair must have the same size; use the method's own output.")
        measured = psnr(image[None], other[None]).item()
    finite = measured != float("inf")
    pair = Pair(pair_id, method, str(original), str(changed) if changed else method, round(measured, 3) if finite else None)
    save_image(image, out / pair.original_file)
    save_image(other, out / pair.changed_file)
    return pair
