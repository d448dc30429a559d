"""Benchmark: dodge dlib's face recogniser on celeba-id probes; judge with real dlib-bin and MobileFaceNet.

Per identity (the first K of ../shared/data/celeba-id in sorted order), the first 10 photos are the clean
gallery and the next photos whose face dlib detects are the probes. Each probe is protected against the
PyTorch port of dlib's ResNet (dodging, all faces), saved at 8 bits, and judged:
- dlib: the real dlib-bin pipeline (HOG, 5 landmarks, chip, ResNet), match when L2 < 0.6;
- mobilefacenet: ../shared/models/mobilefacenet.onnx on ArcFace-aligned faces (68-point landmarks), cosine
  distance, threshold at the equal-error point of clean gallery pairs (same identity vs different).
A probe is protected when it matches no gallery photo of its identity; detector misses are counted apart.
Every method runs through `advpriv.protect.face_protect.protect_faces`, which optimises only a padded box around
the faces (the rest of the photo is kept bit for bit); quality is measured on the whole photo.
The anchors run through torchattacks on the same objective, seen as a two-logit classifier
(`advpriv.faces.objectives.ObjectiveLogits`: "still matches" vs "does not"). Optionally, full-resolution photos
of ../shared/data/faces-wild are dodged and every face is judged against its clean self.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/faces.py --identities 200 --methods mnd,pgd1,pgd2,fgsm2
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/faces.py --identities 0 --wild 40 \
        --mobilefacenet-threshold 0.79 --out bench/results/faces_wild.md
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/faces.py --identities 200 --methods cw --out bench/results/faces_cw.md
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/faces.py --identities 0 \
        --region-timing 000989.jpg,008064.jpg,000565.jpg --out bench/results/faces_region_timing.md
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/faces.py --identities 200 --methods mnd,mnd-100 \
        --only 045943.jpg,047779.jpg,059552.jpg,067318.jpg --out bench/results/faces_mnd_steps.md

Writes the markdown table given by --out (default bench/results/faces.md) and a .json with per-probe results.
Runs resume: when the .json beside --out was written by the same command, finished probes and photos are kept
(--restart starts over).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from platformdirs import user_cache_dir

from advpriv.faces import NoFaceError, face_objective, find_faces
from advpriv.faces.judges import DlibJudge, OnnxJudge, as_uint8, compare_faces, equal_error_threshold
from advpriv.faces.objectives import DODGE_MARGIN
from advpriv.faces.region import Region, face_region
from advpriv.faces.verdicts import face_verdicts, summary_line
from advpriv.images import load_image
from advpriv.protect.face_protect import protect_faces
from advpriv.protect.mnd import MNDConfig, mnd
from advpriv.quality import quality_report

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CELEBA_ID = SHARED / "data" / "celeba-id"
WILD = SHARED / "data" / "faces-wild" / "images"
MOBILEFACENET = SHARED / "models" / "mobilefacenet.onnx"
RESULTS = ROOT / "bench" / "results"
GALLERY = 10

METHODS: dict[str, tuple[str, str, dict]] = {
    "mnd": (f"MND (defaults, margin {DODGE_MARGIN})", "mnd", {"margin": DODGE_MARGIN}),
    "mnd-100": (f"MND, 100 steps, margin {DODGE_MARGIN}", "mnd", {"margin": DODGE_MARGIN, "config": MNDConfig(steps=100)}),
    "mnd-m0.05": ("MND, margin 0.05", "mnd", {"margin": 0.05}),
    "pgd1": ("PGD-L∞ ε=1/255, 10 steps", "pgd", {"eps": 1 / 255, "alpha": 0.25 / 255}),
    "pgd2": ("PGD-L∞ ε=2/255, 10 steps", "pgd", {"eps": 2 / 255, "alpha": 0.5 / 255}),
    "fgsm2": ("FGSM ε=2/255", "fgsm", {"eps": 2 / 255}),
    "cw": ("C&W-L2 c=1, 50 steps (torchattacks defaults)", "cw", {"c": 1.0}),
}


def protect(method: str, image: torch.Tensor, judges: list | None = None):  # noqa: ANN201 - a Protected
    """`protect_faces` on one photo (3,H,W) by bench `method` (a key of METHODS)."""
    _, name, options = METHODS[method]
    return protect_faces(image, method=name, judges=judges, **options)


def _largest(faces: list) -> tuple | None:  # noqa: ANN001
    return max(faces, key=lambda f: (f[0][2] - f[0][0]) * (f[0][3] - f[0][1])) if faces else None


def enrol(identities: list[Path], judges: list, probes_per_identity: int) -> tuple[dict, list]:
    """Gallery descriptors per judge and identity, and the probes (identity, path) dlib detects when clean."""
    gallery = {j.name: {} for j in judges}
    probes = []
    for identity in identities:
        photos = sorted(identity.glob("*.jpg"))
        for judge in judges:
            found = [_largest(judge.describe(as_uint8(load_image(p)))) for p in photos[:GALLERY]]
            gallery[judge.name][identity.name] = np.stack([f[1] for f in found if f is not None])
        chosen = 0
        for path in photos[GALLERY:]:
            if chosen == probes_per_identity:
                break
            if judges[0].describe(as_uint8(load_image(path))):
                probes.append((identity.name, path))
                chosen += 1
    return gallery, probes


def calibrate(judge, gallery: dict[str, np.ndarray]) -> dict[str, float]:  # noqa: ANN001
    """Equal-error threshold and ROC AUC of `judge` on all clean gallery pairs."""
    names = np.array([name for name, ds in gallery.items() for _ in ds])
    descriptors = np.concatenate(list(gallery.values()))
    same, different = [], []
    for i in range(len(descriptors) - 1):
        distances = judge.distance(descriptors[i][None], descriptors[i + 1 :])
        is_same = names[i + 1 :] == names[i]
        same.append(distances[is_same]), different.append(distances[~is_same])
    s, d = np.concatenate(same), np.sort(np.concatenate(different))
    auc = float((len(d) - np.searchsorted(d, s, side="right")).sum() / (len(s) * len(d)))  # P(same < different)
    return {"threshold": equal_error_threshold(s, d), "auc": auc}


def judge_probe(judges: list, image: torch.Tensor, clean_faces: dict, references: dict) -> dict:
    """Per judge: detected? matched a gallery photo of the identity? (the face overlapping the clean one)."""
    out = {}
    for judge in judges:
        found = judge.describe(as_uint8(image))
        (verdict, *_) = compare_faces(judge, clean_faces[judge.name], found, gallery=references[judge.name]) or [None]
        if verdict is None:  # the judge's detector misses even the clean probe
            out[judge.name] = {"detected": False, "matches": False, "clean_detected": False}
        else:
            out[judge.name] = {"detected": verdict.detected, "matches": verdict.matches, "distance": verdict.distance}
    return out


def cached_enrol(identities: list[Path], judges: list, probes_per_identity: int) -> tuple[dict, list]:
    """`enrol`, kept in the user cache directory; a cache of more identities (a superset) is reused."""
    folder = Path(user_cache_dir("advpriv"))
    for cache in sorted(folder.glob(f"bench-faces-enrol-*-{probes_per_identity}.pkl")):
        gallery, probes = pickle.loads(cache.read_bytes())
        names = {p.name for p in identities}
        if names <= set(gallery[judges[0].name]):
            gallery = {j: {n: g for n, g in per.items() if n in names} for j, per in gallery.items()}
            return gallery, [(n, path) for n, path in probes if n in names]
    result = enrol(identities, judges, probes_per_identity)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"bench-faces-enrol-{len(identities)}-{probes_per_identity}.pkl").write_bytes(pickle.dumps(result))
    return result


def run_celeba(args: argparse.Namespace, judges: list, checkpoint: Callable[[dict], None]) -> dict:
    identities = sorted(p for p in CELEBA_ID.iterdir() if p.is_dir())[: args.identities]
    gallery, probes = cached_enrol(identities, judges, args.probes)
    calibration = {judge.name: calibrate(judge, gallery[judge.name]) for judge in judges}
    judges[1].threshold = args.mobilefacenet_threshold or calibration[judges[1].name]["threshold"]
    print(f"{len(probes)} probes; calibration {calibration}", file=sys.stderr)
    if args.only:
        probes = [(identity, path) for identity, path in probes if path.name in args.only]
    rows: dict[str, list[dict]] = {"clean": [], **{m: [] for m in args.methods}}
    done = args.previous.get("rows", {})
    if set(done) == set(rows):
        rows = done
    for i, (identity, path) in enumerate(probes):
        if i < len(rows["clean"]):
            continue  # finished by an earlier run of the same command
        clean = load_image(path)
        references = {j.name: gallery[j.name][identity] for j in judges}
        clean_faces = {j.name: j.describe(as_uint8(clean)) for j in judges}
        rows["clean"].append({"probe": path.name, **judge_probe(judges, clean, clean_faces, references)})
        for method in args.methods:
            result = protect(method, clean)
            rows[method].append({"probe": path.name, "seconds": result.seconds, "success": result.success,
                                 **result.metrics, **judge_probe(judges, result.image, clean_faces, references)})  # fmt: skip
        print(f"[{i + 1}/{len(probes)}] {path.name}", file=sys.stderr)
        checkpoint({"calibration": calibration, "probes": i + 1, "rows": rows})
    return {"calibration": calibration, "probes": len(probes), "rows": rows}


def edge_change(clean: torch.Tensor, adv: torch.Tensor, region: Region, width: int = 4) -> int:
    """The largest change, in 8-bit levels, within `width` pixels of the region's edges inside the photo (0: none)."""
    height, photo_width = clean.shape[-2:]
    delta = (adv - clean).abs().amax(0).mul(255).round()
    crop = region.crop(delta)
    sides = [
        crop[:width] if region.top > 0 else None,
        crop[-width:] if region.bottom < height - 1 else None,
        crop[:, :width] if region.left > 0 else None,
        crop[:, -width:] if region.right < photo_width - 1 else None,
    ]
    return int(max((float(s.max()) for s in sides if s is not None), default=0))


def run_wild(count: int, judges: list, previous: list[dict], checkpoint: Callable[[list[dict]], None]) -> list[dict]:
    """MND dodging on the first `count` faces-wild photos; photos in `previous` (same command) are kept."""
    rows = list(previous)
    for path in sorted(WILD.glob("*.jpg"))[len(rows) : count]:
        clean = load_image(path)
        try:
            faces = find_faces(clean)
        except NoFaceError:
            rows.append({"photo": path.name, "faces": 0})
            checkpoint(rows)
            continue
        region = face_region(faces, tuple(clean.shape[-2:]))
        result = protect("mnd", clean, judges)
        check = result.recheck(result.image)
        rows.append({"photo": path.name, "size": list(clean.shape[1:]), "faces": len(faces), "success": result.success,
                     "region": list(region.box), "seconds": result.seconds, **result.metrics,
                     "edge_levels": edge_change(clean, result.image, region), "summary": check.summary,
                     "verdicts": check.faces})  # fmt: skip
        print(f"wild {path.name}: {len(faces)} faces, {result.seconds:.1f}s, {check.summary}", file=sys.stderr)
        checkpoint(rows)
    return rows


def run_region_timing(names: list[str], judge: DlibJudge, checkpoint: Callable[[list[dict]], None]) -> list[dict]:
    """MND dodging of faces-wild photos on the whole photo (as before the region restriction), then through
    `protect_faces` (the faces' region only), back to back; each result judged by the real dlib pipeline."""
    rows = []
    for name in names:
        clean = load_image(WILD / name)
        objective, faces = face_objective(clean)
        start = time.perf_counter()
        whole = mnd(clean[None], objective, MNDConfig())
        seconds = time.perf_counter() - start
        boxes = [face.box for face in faces]
        row = {"photo": name, "size": list(clean.shape[1:]), "faces": len(faces)}
        row["whole"] = {"seconds": seconds, "success": bool(whole.success[0]), **quality_report(clean[None], whole.images)[0],
                        "summary": summary_line(face_verdicts([judge], whole.images[0], clean, boxes), [judge.name])}  # fmt: skip
        result = protect("mnd", clean, [judge])
        region = face_region(faces, tuple(clean.shape[-2:]))
        row["region"] = {"seconds": result.seconds, "success": result.success, **result.metrics, "box": list(region.box),
                         "summary": result.recheck(result.image).summary}  # fmt: skip
        print(f"{name}: whole {seconds:.1f}s, region {result.seconds:.1f}s", file=sys.stderr)
        rows.append(row)
        checkpoint(rows)
    return rows


def timing_table(rows: list[dict]) -> list[str]:
    lines = [
        "## MND on the whole photo against MND on the faces' region, back to back",
        "",
        "Seconds of optimisation (detection and judging excluded); PSNR and SSIM on the whole photo; dlib: the real "
        "dlib pipeline on the 8-bit result.",
        "",
        "| photo | size | faces | region | whole photo s | region s | speed-up | PSNR whole → region | SSIM whole → region "
        "| dlib whole | dlib region |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w, g = r["whole"], r["region"]
        top, left, bottom, right = g["box"]
        lines.append(
            f"| {r['photo']} | {r['size'][1]}×{r['size'][0]} | {r['faces']} | {right - left + 1}×{bottom - top + 1} | "
            f"{w['seconds']:.1f} | {g['seconds']:.1f} | {w['seconds'] / g['seconds']:.1f}× | {w['psnr']:.2f} → {g['psnr']:.2f} | "
            f"{w['ssim']:.4f} → {g['ssim']:.4f} | {w['summary']} | {g['summary']} |"
        )
    return lines


def _rate(rows: list[dict], judge: str, key: str) -> float:
    return 100 * statistics.mean(float(r[judge][key]) for r in rows)


def celeba_table(result: dict, judges: list[str]) -> list[str]:
    rows = result["rows"]
    lines = [
        "## celeba-id: protection rate per judge",
        "",
        f"{result['probes']} probes ({result['identities']} identities, gallery of {GALLERY} clean photos each).",
        "Protected: the probe matches no gallery photo of its identity (a detector miss counts as protected, and is"
        " also counted on its own). Calibration on clean gallery pairs: "
        + ", ".join(f"{j} EER threshold {c['threshold']:.3f}, ROC AUC {c['auc']:.3f}" for j, c in result["calibration"].items())
        + " (dlib is judged at its own 0.6, MobileFaceNet at its EER threshold).",
        "",
        "| method | " + " | ".join(f"{j} protected % | {j} miss %" for j in judges)
        + " | median PSNR | median SSIM | median GMSD | median VIF | s/image |",
        "|---|" + "---|---|" * len(judges) + "---|---|---|---|---|",
    ]
    for method, method_rows in rows.items():
        protected = [100 - _rate(method_rows, j, "matches") for j in judges]
        missed = [100 - _rate(method_rows, j, "detected") for j in judges]
        cells = " | ".join(f"{p:.1f} | {m:.1f}" for p, m in zip(protected, missed))
        if method == "clean":
            lines.append(f"| clean (reference) | {cells} | – | – | – | – | – |")
            continue
        med = {k: statistics.median(r.get(k, math.nan) for r in method_rows) for k in ("psnr", "ssim", "gmsd", "vif", "seconds")}
        lines.append(
            f"| {METHODS[method][0]} | {cells} | {med['psnr']:.2f} | {med['ssim']:.4f} | {med['gmsd']:.4f} | "
            f"{med['vif']:.4f} | {med['seconds']:.1f} |"
        )
    return lines


def wild_table(wild: list[dict], judges: list[str]) -> list[str]:
    lines = [f"## faces-wild: MND dodging on {len(wild)} full-resolution photos", ""]
    lines += ["Per judge: faces still recognised / faces it finds in the clean photo (and how many of those it no "
              "longer detects). Region: the box that was optimised; PSNR and SSIM on the whole photo; edge: the "
              "largest change within 4 pixels of the region's inner edges, in 8-bit levels.", ""]  # fmt: skip
    lines += ["| photo | size | faces | region | " + " | ".join(f"{j} recognised (missed)" for j in judges)
              + " | PSNR | SSIM | edge | s |"]  # fmt: skip
    lines += ["|---|---|---|---|" + "---|" * len(judges) + "---|---|---|---|"]
    for r in wild:
        if not r["faces"]:
            lines.append(f"| {r['photo']} | | 0 (dlib finds no face: skipped) |" + " |" * (len(judges) + 5))
            continue
        cells = []
        for j in judges:
            verdicts = [face["judges"][j] for face in r["verdicts"] if j in face["judges"]]
            missed = sum(not v["detected"] for v in verdicts)
            cells.append(f"{sum(v['matches'] for v in verdicts)}/{len(verdicts)} ({missed})")
        top, left, bottom, right = r["region"]
        lines.append(
            f"| {r['photo']} | {r['size'][1]}×{r['size'][0]} | {r['faces']} | {right - left + 1}×{bottom - top + 1} | "
            f"{' | '.join(cells)} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['edge_levels']} | {r['seconds']:.1f} |"
        )
    with_faces = [r for r in wild if r["faces"]]
    per_judge = {j: [f["judges"][j] for r in with_faces for f in r["verdicts"] if j in f["judges"]] for j in judges}
    lines += ["", "Totals: " + "; ".join(
        f"{j} still recognises {sum(v['matches'] for v in vs)} of {len(vs)} faces "
        f"({sum(not v['detected'] for v in vs)} no longer detected)" for j, vs in per_judge.items()
    ) + f"; {sum(r['faces'] for r in with_faces)} faces in {len(with_faces)} photos."]  # fmt: skip
    if with_faces:
        succeeded = [r for r in with_faces if r["success"]]
        lines[-1] += f" MND reached its goal on {len(succeeded)}/{len(with_faces)} photos."
        lines[-1] += f" Median PSNR {statistics.median(r['psnr'] for r in with_faces):.2f} dB"
        lines[-1] += f" (over photos where MND succeeded: {statistics.median(r['psnr'] for r in succeeded):.2f} dB),"
        lines[-1] += f" median {statistics.median(r['seconds'] for r in with_faces):.1f} s per photo."
    return lines


def table(result: dict, judges: list[str], command: str) -> str:
    lines = [
        "# Face protection: dodging dlib's face recogniser",
        "",
        f"Command: `{command}`",
        "",
        f"One CPU thread per process on a shared 2-core machine (other benchmarks running); measured "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Judged on the saved 8-bit images.",
        "",
    ]
    if result["probes"]:
        lines += celeba_table(result, judges)
    if result.get("wild"):
        lines += ([""] if result["probes"] else []) + wild_table(result["wild"], judges)
    if result.get("timing"):
        lines += timing_table(result["timing"])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=40)
    parser.add_argument("--probes", type=int, default=1, help="probes per identity")
    parser.add_argument("--methods", default="mnd,pgd1,pgd2,fgsm2,cw")
    parser.add_argument("--only", default="", help="comma-separated probe file names: run these probes only")
    parser.add_argument("--wild", type=int, default=0, help="how many faces-wild photos to protect")
    parser.add_argument("--region-timing", default="", help="comma-separated faces-wild photos: time MND on the whole "
                        "photo and on the faces' region")  # fmt: skip
    parser.add_argument("--mobilefacenet-threshold", type=float, help="skip calibration (needed with --identities 0)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "faces.md")
    parser.add_argument("--restart", action="store_true", help="ignore results saved by an earlier run")
    args = parser.parse_args()
    args.methods = args.methods.split(",")
    args.only = set(filter(None, args.only.split(",")))
    if not CELEBA_ID.is_dir() or not MOBILEFACENET.is_file():
        sys.exit(f"this benchmark needs {CELEBA_ID} and {MOBILEFACENET}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    judges = [DlibJudge(), OnnxJudge(MOBILEFACENET, threshold=args.mobilefacenet_threshold or 0.0)]
    command = "python bench/faces.py " + " ".join(a for a in sys.argv[1:] if a != "--restart")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    saved = args.out.with_suffix(".json")
    previous = json.loads(saved.read_text()) if saved.is_file() and not args.restart else {}
    args.previous = previous if previous.get("command") == command else {}
    state = {"identities": args.identities, "rows": {}, "calibration": {}, "probes": 0, "wild": []}

    def write(update: dict) -> None:
        state.update(update)
        saved.write_text(json.dumps({"command": command, **state}, indent=1, default=str))
        args.out.write_text(table(state, [j.name for j in judges], command))

    if args.identities:
        write(run_celeba(args, judges, write))
    if args.wild:
        run_wild(args.wild, judges, args.previous.get("wild", []), lambda rows: write({"wild": rows}))
    if args.region_timing:
        run_region_timing(args.region_timing.split(","), judges[0], lambda rows: write({"timing": rows}))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
