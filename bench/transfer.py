"""Benchmark: does face protection hold against models it never saw, and after JPEG and resizing?

Data: celeba-id probes (the first K identities in sorted order; per identity the first 10 photos are the clean
gallery and the next photo dlib detects is the probe), and optionally faces-wild photos at full size (each face
judged against its clean self, and each photo's largest face also against the largest face of its identity's other
photos: faces-wild holds 4 photos of each of 10 people). Each method protects the probe through
`advpriv.protect.face_protect.protect_faces` and the 8-bit
result is judged in four versions: as written (PNG), JPEG quality 85 and 75 (Pillow, 4:2:0) and a 0.5× bicubic
resize (8-bit, detection re-run on it).

Judges, each with detection re-run on the version judged:
- dlib: the real dlib-bin pipeline (L2 < 0.6);
- the ensemble members from ../shared/models (facenet_msceleb, faceres_vggface2, mobileface), through onnxruntime
  on ArcFace-aligned faces, cosine, at their equal-error thresholds on this gallery's clean pairs;
- mobilefacenet: the UNSEEN judge. It is never attacked and nothing in advpriv is tuned on it.
"Protected": the face matches no gallery photo of its identity (a detector miss counts as protected, and is also
counted apart); "self": the stricter check against the clean copy of the same photo.

Methods (keys of METHODS): MND with dlib alone (the previous default); MND with the ensemble at each strength level
(low: no EOT; medium and high: EOT); and two anchors through torchattacks on the same ensemble objective, each at
three L∞ budgets: PGD with momentum-free steps, and a LowKey-style PGD on the average of the objective on the photo
and on a Gaussian-blurred copy (Cherepanova et al., 2021).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/transfer.py --identities 20 \
        --methods mnd-dlib,mnd-low,mnd-medium,mnd-high,pgd4,pgd8,pgd12,lowkey4,lowkey8,lowkey12

Writes bench/results/transfer.md and .json (per probe, per method, per judge and version); runs resume when the
.json was written by the same command (--restart starts over). `--plot` writes transfer.png: unseen-judge
protection against SSIM and PSNR, one curve per method family.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from advpriv.faces import find_faces
from advpriv.faces.judges import as_uint8, compare_faces, iou
from advpriv.faces.specs import load_embedder, load_judge
from advpriv.images import load_image
from advpriv.protect.face_protect import protect_faces
from advpriv.protect.reencode import half, jpeg85
from advpriv.protect.strength import strength_options
from advpriv.images import save_image
from advpriv.quality import box_quality
from advpriv.visibility import JND, face_parts, face_visibility

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faces import GALLERY, calibrate, cached_enrol  # noqa: E402  (bench/faces.py: the same probes and gallery)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CELEBA_ID = SHARED / "data" / "celeba-id"
WILD = SHARED / "data" / "faces-wild" / "images"
MODELS = SHARED / "models"
RESULTS = ROOT / "bench" / "results"
ENSEMBLE = {"facenet": ("facenet_msceleb.onnx", 0.317), "faceres": ("faceres_vggface2.onnx", 0.521),
            "mobileface": ("mobileface.onnx", 0.179)}  # fmt: skip  (cosine similarity at EER, models/README.md)
UNSEEN = "mobilefacenet"


def jpeg75(image: torch.Tensor) -> torch.Tensor:
    buf = io.BytesIO()
    Image.fromarray(as_uint8(image)).save(buf, format="JPEG", quality=75)
    return load_image(io.BytesIO(buf.getvalue()))


VERSIONS = {"png": lambda image: image, "jpeg85": jpeg85, "jpeg75": jpeg75, "half": half}


def ensemble_specs() -> list[str]:
    return [f"{MODELS / file}:similarity={sim},align=arcface,range=0..1,name={name}" for name, (file, sim) in ENSEMBLE.items()]


def _pgd(eps: int, smoothed: bool) -> dict:
    return {"method": "pgd", "eps": eps / 255, "alpha": eps / 255 / 8, "steps": 40, "smoothed": smoothed}


METHODS: dict[str, tuple[str, dict]] = {
    "mnd-dlib": ("MND, dlib alone, no EOT (the previous default)", {"strength": "low", "margin": 1 / 3, "dlib_only": True}),
    "mnd-low": ("MND, ensemble, strength low (no EOT)", {"strength": "low"}),
    "mnd-noeot": ("MND, ensemble, margin of medium, no EOT", {"strength": "medium", "eot": None}),
    "mnd-medium": ("MND, ensemble + EOT, strength medium (default)", {"strength": "medium"}),
    "mnd-default": ("MND out of the box: dlib + FaceNet port, strength medium", {"strength": "medium", "out_of_box": True}),
    "mnd-default-low": ("MND out of the box: dlib + FaceNet port, strength low", {"strength": "low", "out_of_box": True}),
    "mnd-default-high": ("MND out of the box: dlib + FaceNet port, strength high", {"strength": "high", "out_of_box": True}),
    "mnd-high": ("MND, ensemble + EOT, strength high", {"strength": "high"}),
    **{f"pgd{e}": (f"ensemble PGD-L∞ ε={e}/255, 40 steps", _pgd(e, False)) for e in (4, 8, 12)},
    **{f"lowkey{e}": (f"LowKey-style PGD-L∞ ε={e}/255 (+ blurred copy), 40 steps", _pgd(e, True)) for e in (4, 8, 12)},
}


def protect(method: str, image: torch.Tensor, embedders: list, dlib: list):  # noqa: ANN201 - a Protected
    """Protect one photo by bench `method`; every method dodges, on the same faces' region."""
    options = dict(METHODS[method][1])
    if "strength" in options:
        chosen = strength_options(options.pop("strength"), "dlib", "dodge")
        chosen.update({k: v for k, v in options.items() if k in ("margin", "eot")})
        models = dlib if options.get("dlib_only") else embedders
        if options.get("out_of_box"):
            models = [*dlib, load_embedder("facenet")]
        return protect_faces(image, embedders=models, method="mnd", **chosen)
    smoothed = options.pop("smoothed")
    options.pop("method")
    return protect_faces(image, embedders=embedders, method="pgd", smooth=1.0 if smoothed else 0.0, **options)


def judge_versions(judges: list, image: torch.Tensor, clean_faces: dict, gallery: dict | None) -> dict:
    """Per version, per judge: detected? matches the gallery? matches its clean self?"""
    out = {}
    for version, transform in VERSIONS.items():
        copy = transform(image)
        scale = copy.shape[-1] / image.shape[-1]
        out[version] = {}
        for judge in judges:
            found = [(tuple(int(round(v / scale)) for v in box), d) for box, d in judge.describe(as_uint8(copy))]
            if not clean_faces[judge.name]:
                out[version][judge.name] = None  # the judge misses even the clean face
                continue
            (self_verdict,) = compare_faces(judge, clean_faces[judge.name][:1], found)
            row = {"detected": self_verdict.detected, "self": self_verdict.matches, "distance": self_verdict.distance,
                   "threshold": judge.threshold}
            if gallery is not None and len(gallery.get(judge.name, ())):
                (verdict,) = compare_faces(judge, clean_faces[judge.name][:1], found, gallery=gallery[judge.name])
                row["matches"] = verdict.matches
            out[version][judge.name] = row
    return out


def _area(box: Sequence[int]) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _largest(found: list) -> list:
    return sorted(found, key=lambda f: -_area(f[0]))[:1]


def run_probes(args: argparse.Namespace, judges: list, embedders: list, dlib: list, state: dict, save) -> None:  # noqa: ANN001
    identities = sorted(p for p in CELEBA_ID.iterdir() if p.is_dir())[: args.identities]
    gallery, probes = cached_enrol(identities, judges, 1)
    if not state.get("calibration"):
        state["calibration"] = {j.name: calibrate(j, gallery[j.name]) for j in judges}
    for judge in judges:
        if judge.name != "dlib":
            judge.threshold = state["calibration"][judge.name]["threshold"]
    rows = state.setdefault("rows", {})
    for i, (identity, path) in enumerate(probes):
        clean = load_image(path)
        references = {j.name: gallery[j.name][identity] for j in judges}
        clean_faces = {j.name: _largest(j.describe(as_uint8(clean))) for j in judges}
        box = list(find_faces(clean)[0].box)
        for method in ["clean", *args.methods]:
            done = rows.setdefault(method, {})
            if path.name in done:
                continue
            if method == "clean":
                done[path.name] = {"verdicts": judge_versions(judges, clean, clean_faces, references)}
                continue
            result = protect(method, clean, embedders, dlib)
            done[path.name] = {"seconds": result.seconds, "success": result.success, **result.metrics,
                               "face": box_quality(clean, result.image, box),
                               "verdicts": judge_versions(judges, result.image, clean_faces, references)}  # fmt: skip
            print(f"[{i + 1}/{len(probes)}] {path.name} {method}: {result.seconds:.1f}s psnr {result.metrics['psnr']:.1f}",
                  file=sys.stderr)  # fmt: skip
            save()


@functools.cache
def wild_identities() -> dict[str, list[Path]]:
    """faces-wild's photos by identity (identities.txt: `file identity`)."""
    by_identity: dict[str, list[Path]] = {}
    for line in (WILD.parent / "identities.txt").read_text().splitlines()[1:]:
        name, identity = line.split()
        by_identity.setdefault(identity, []).append(WILD / name)
    return by_identity


def wild_gallery(path: Path, judges: list, described: Callable[[Path], dict]) -> dict:
    """Per judge, the descriptors (K,D) of the largest face in each other photo of `path`'s identity: what a platform
    that already knows the person compares a new photo with."""
    others = next(paths for paths in wild_identities().values() if path in paths)
    return {j.name: np.array([found[0][1] for other in others if other != path
                              if (found := _largest(described(other)[j.name]))]) for j in judges}  # fmt: skip


def run_wild(args: argparse.Namespace, judges: list, embedders: list, dlib: list, state: dict, save) -> None:  # noqa: ANN001
    rows = state.setdefault("wild", {})

    @functools.cache
    def described(path: Path) -> dict:
        pixels = as_uint8(load_image(path))
        return {j.name: j.describe(pixels) for j in judges}

    for path in sorted(WILD.glob("*.jpg"))[: args.wild]:
        clean = load_image(path)
        try:
            faces = find_faces(clean)
        except ValueError:
            continue
        gallery, largest = wild_gallery(path, judges, described), max(faces, key=lambda f: _area(f.box))
        for method in ["clean", *args.wild_methods]:
            done = rows.setdefault(method, {})
            if path.name in done:
                continue
            result = None if method == "clean" else protect(method, clean, embedders, dlib)
            image = clean if result is None else result.image
            if args.save_dir and result is not None:
                (args.save_dir / method).mkdir(parents=True, exist_ok=True)
                save_image(image, args.save_dir / method / f"{path.stem}.png")
            per_face = []
            for face in faces:
                clean_faces = {name: [f for f in found if iou(f[0], face.box) > 0.3][:1]
                               for name, found in described(path).items()}  # fmt: skip
                parts = face_parts(as_uint8(clean), face.box)
                per_face.append({"face": face_visibility(clean, image, parts), "verdicts": judge_versions(
                    judges, image, clean_faces, gallery if face is largest else None)})  # fmt: skip
            done[path.name] = {"faces": len(faces), "per_face": per_face} if result is None else {
                "seconds": result.seconds, "faces": len(faces), "success": result.success, **result.metrics,
                "per_face": per_face}  # fmt: skip
            print(f"wild {path.name} {method}: {len(faces)} faces"
                  + ("" if result is None else f" {result.seconds:.1f}s"), file=sys.stderr)  # fmt: skip
            save()


def _rate(cells: list, key: str) -> str:
    """Percent of faces protected (not `key`) among those the judge finds clean; '–' when none."""
    cells = [c for c in cells if c is not None]
    if not cells:
        return "–"
    return f"{100 * statistics.mean(not (c[key] and c['detected']) for c in cells):.0f}"


def probe_table(state: dict, judges: list[str]) -> list[str]:
    rows = state.get("rows", {})
    if not rows:
        return []
    lines = ["## celeba-id probes: protected % per judge and version (gallery check)", "",
             "Cells: percent of probes that match no gallery photo of their identity, on the PNG / JPEG 85 / JPEG 75 / "
             "0.5× resize. `mobilefacenet` is the unseen judge. Thresholds at each judge's equal-error point on the "
             "clean gallery pairs (dlib at its own 0.6): "
             + ", ".join(f"{j} {c['threshold']:.3f} (AUC {c['auc']:.3f})" for j, c in state.get("calibration", {}).items()) + ".",
             "", "| method | n | " + " | ".join(judges) + " | PSNR | SSIM | face PSNR | face SSIM | s/face |",
             "|---|---|" + "---|" * len(judges) + "---|---|---|---|---|"]  # fmt: skip
    for method, by_probe in rows.items():
        values = list(by_probe.values())
        cells = [" / ".join(_rate([v["verdicts"][version][j] for v in values], "matches") for version in VERSIONS) for j in judges]
        name = "clean (reference)" if method == "clean" else METHODS[method][0]
        if method == "clean":
            lines.append(f"| {name} | {len(values)} | " + " | ".join(cells) + " | – | – | – | – | – |")
            continue
        med = lambda key: statistics.median(v[key] for v in values)  # noqa: E731
        face = lambda key: statistics.median(v["face"][key] for v in values)  # noqa: E731
        lines.append(f"| {name} | {len(values)} | " + " | ".join(cells)
                     + f" | {med('psnr'):.2f} | {med('ssim'):.4f} | {face('psnr'):.2f} | {face('ssim'):.4f} | {med('seconds'):.1f} |")
    lines += ["", "### The stricter check: protected % against the clean copy of the same photo", "",
              "| method | " + " | ".join(judges) + " |", "|---|" + "---|" * len(judges)]
    for method, by_probe in rows.items():
        values = list(by_probe.values())
        cells = [" / ".join(_rate([v["verdicts"][version][j] for v in values], "self") for version in VERSIONS) for j in judges]
        lines.append(f"| {'clean' if method == 'clean' else METHODS[method][0]} | " + " | ".join(cells) + " |")
    return lines


def _median(faces: list, key: str, spec: str) -> str:
    values = [f["face"][key] for f in faces if key in f["face"]]
    return format(statistics.median(values), spec) if len(values) == len(faces) else "–"


def _ratio(faces: list, judge: str) -> float | None:
    """The median over faces of the judge's distance to the clean self over its threshold, on the PNG (None when
    the judge found none of the faces)."""
    ratios = [v["distance"] / v["threshold"] for f in faces
              if (v := f["verdicts"]["png"].get(judge)) and v.get("distance") is not None]
    return statistics.median(ratios) if ratios else None


def wild_table(state: dict, judges: list[str]) -> list[str]:
    rows = state.get("wild", {})
    if not rows:
        return []
    thresholds = "their equal-error points on the celeba-id gallery" if state.get("calibration") else (
        "dlib 0.6, the ensemble's similarities at their equal-error points (../shared/models/README.md), "
        "mobilefacenet cosine distance 0.79 (bench/results/faces.md's calibration)")
    lines = ["", "## faces-wild: protected % of faces per judge and version (against each face's clean self)", "",
             f"Cells: PNG / JPEG 85 / JPEG 75 / 0.5× resize. Thresholds: {thresholds}.", "",
             "Face columns are medians over faces inside each detector box; ΔE00 eyes+lips is the mean CIEDE2000 over "
             "the boxes of the eyes and the lips (dlib's 68 landmarks), 2.3 being one just-noticeable difference; "
             "ΔE00 p99 is `advpriv.visibility.face_change` (how visibly the face changed: the 99th percentile over its "
             "box of CIEDE2000 through a 1-pixel blur; by eye, 1.1 invisible side by side, 2.2 faint, 4.3 plain); "
             "'–' where a row predates that measurement.", "",
             "| method | photos | faces | " + " | ".join(judges)
             + " | PSNR | SSIM | face PSNR | face SSIM | face VIF | ΔE00 eyes+lips | ΔE00 p99 | s/face |",
             "|---|---|---|" + "---|" * len(judges) + "---|---|---|---|---|---|---|---|"]  # fmt: skip
    for method, by_photo in rows.items():
        if method == "clean":
            continue
        photos = list(by_photo.values())
        faces = [f for p in photos for f in p["per_face"]]
        cells = [" / ".join(_rate([f["verdicts"][version][j] for f in faces], "self") for version in VERSIONS) for j in judges]
        seconds = statistics.median(p["seconds"] / p["faces"] for p in photos)
        lines.append(f"| {METHODS[method][0]} | {len(photos)} | {len(faces)} | " + " | ".join(cells)
                     + f" | {statistics.median(p['psnr'] for p in photos):.2f} | {statistics.median(p['ssim'] for p in photos):.4f}"
                     + f" | {statistics.median(f['face']['psnr'] for f in faces):.2f} | {statistics.median(f['face']['ssim'] for f in faces):.4f}"
                     + f" | {_median(faces, 'vif', '.3f')} | {_median(faces, 'ciede2000', '.2f')}"
                     + f" | {_median(faces, 'ciede2000_p99', '.2f')}"
                     + f" | {seconds:.1f} |")  # fmt: skip
    lines += ["", "How far each judge was moved: the median over faces of the distance between the protected face (PNG) "
              "and its clean self, over the judge's threshold (above 1: no longer matched; a missed detection is "
              "left out).", "", "| method | " + " | ".join(judges) + " |", "|---|" + "---|" * len(judges)]
    for method, by_photo in rows.items():
        if method == "clean":
            continue
        faces = [f for p in by_photo.values() for f in p["per_face"]]
        cells = ["–" if (r := _ratio(faces, j)) is None else f"{r:.2f}" for j in judges]
        lines.append(f"| {METHODS[method][0]} | " + " | ".join(cells) + " |")
    lines += ["", "The gallery check: percent of photos whose person matches none of their other photos (the largest face "
              "of each of the identity's 3 other clean photos), as a platform that already knows the person would "
              "check. Cells: PNG / JPEG 85 / JPEG 75 / 0.5× resize, over the photos where the judge finds the face.", "",
              "| method | photos | " + " | ".join(judges) + " |", "|---|---|" + "---|" * len(judges)]
    for method, by_photo in rows.items():
        faces = [f for p in by_photo.values() for f in p["per_face"]]
        if not any("matches" in v for f in faces for v in f["verdicts"]["png"].values() if v):
            continue  # a row measured before the gallery check
        cells = [" / ".join(_rate([v for f in faces if (v := f["verdicts"][version][j]) and "matches" in v], "matches")
                            for version in VERSIONS) for j in judges]  # fmt: skip
        name = "clean (reference)" if method == "clean" else METHODS[method][0]
        lines.append(f"| {name} | {len(by_photo)} | " + " | ".join(cells) + " |")
    return lines


def plot(state: dict, out: Path) -> None:
    """Unseen-judge protection of each copy (PNG, JPEG 85, half size) against median SSIM and PSNR, one curve per
    method family; colour = family, marker = copy; the clean photos' rate drawn across."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    rows = state.get("rows", {})

    def unseen(values: list, version: str) -> float:
        return float(_rate([v["verdicts"][version][UNSEEN] for v in values], "matches"))

    families = {"MND (ensemble)": ("mnd-", "C0", (6, -3)), "ensemble PGD": ("pgd", "C1", (4, -11)),
                "LowKey-style": ("lowkey", "C2", (-4, 5))}  # label offsets keep pgd4 and lowkey4 apart
    copies = {"png": ("as written (PNG)", "o", "-", "full"), "jpeg85": ("JPEG 85", "s", "--", "none"),
              "half": ("half size", "^", ":", "none")}
    fig = Figure(figsize=(12, 5.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for prefix, colour, offset in families.values():
        chosen = [m for m in rows if m.startswith(prefix) and m != "mnd-dlib"]
        points = sorted((statistics.median(v["ssim"] for v in rows[m].values()),
                         statistics.median(v["psnr"] for v in rows[m].values()), m) for m in chosen)
        for ax, index in zip(axes, (0, 1)):
            xs = [p[index] for p in points]
            for version, (_, marker, style, fill) in copies.items():
                ax.plot(xs, [unseen(list(rows[p[2]].values()), version) for p in points], marker=marker,
                        linestyle=style, color=colour, fillstyle=fill, markersize=9 if fill == "none" else 5)
            for p, x in zip(points, xs):
                ax.annotate(p[2], (x, unseen(list(rows[p[2]].values()), "png")), fontsize=7, textcoords="offset points",
                            xytext=offset, ha="right" if offset[0] < 0 else "left", color=colour,
                            bbox=dict(boxstyle="square,pad=0.05", facecolor="white", edgecolor="none", alpha=0.8))
    clean = unseen(list(rows["clean"].values()), "png") if "clean" in rows else None
    for ax, name in zip(axes, ("median SSIM, whole photo (right: less visible)",
                               "median PSNR, dB (right: less visible)")):
        if clean is not None:
            ax.axhline(clean, color="grey", linewidth=1, label=f"clean photos: {clean:.0f} % (the judge's own misses)")
        ax.set(xlabel=name, ylabel=f"probes protected against unseen {UNSEEN} (%)", ylim=(-4, 106))
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colour, marker="o", label=family) for family, (_, colour, _) in families.items()]
    handles += [Line2D([], [], color="black", marker=marker, linestyle=style, fillstyle=fill, label=label)
                for label, marker, style, fill in copies.values()]
    handles += axes[0].get_legend_handles_labels()[0]  # the clean line
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8)
    probes = len(next(iter(rows.values()), {}))
    fig.suptitle(f"Transfer to an unseen face model ({UNSEEN}): protection vs visibility, {probes} celeba-id probes")
    fig.savefig(out, dpi=110)


def plot_wild(state: dict, out: Path) -> None:
    """faces-wild: how far the unseen judge moved, and the faces it no longer matches, against the median visible
    change (`face_change`), one curve per method family; the line at 1 is the judge's threshold."""
    from matplotlib.figure import Figure

    families = {"MND out of the box (dlib + FaceNet)": "mnd-default", "MND, four-model ensemble": "mnd-",
                "ensemble PGD": "pgd", "LowKey-style": "lowkey"}
    fig = Figure(figsize=(12, 5), layout="constrained")
    distance, fooled = fig.subplots(1, 2)
    rows = state["wild"]
    taken: set[str] = set()
    for colour, (family, prefix) in enumerate(families.items()):
        chosen = [m for m in rows if m.startswith(prefix) and m not in taken and m != "mnd-dlib"]
        taken.update(chosen)
        points = []
        for method in chosen:
            faces = [f for p in rows[method].values() for f in p["per_face"]]
            if all("ciede2000_p99" in f["face"] for f in faces):
                points.append((statistics.median(f["face"]["ciede2000_p99"] for f in faces), _ratio(faces, UNSEEN),
                               float(_rate([f["verdicts"]["png"][UNSEEN] for f in faces], "self")), method))
        if not points:
            continue
        points.sort()
        xs, ratios, rates, names = zip(*points)
        for ax, ys in ((distance, ratios), (fooled, rates)):
            ax.plot(xs, ys, marker="o", color=f"C{colour}", label=family)
            for x, y, name in zip(xs, ys, names):
                ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4 + 8 * colour), fontsize=7,
                            color=f"C{colour}")
    distance.axhline(1.0, color="grey", linewidth=1)
    distance.set(xlabel="median visible change of the face (face_change, CIEDE2000 p99)",
                 ylabel=f"median distance to the clean face / threshold, unseen {UNSEEN}")
    fooled.set(xlabel="median visible change of the face (face_change, CIEDE2000 p99)",
               ylabel=f"faces no longer matched by unseen {UNSEEN}, PNG (%)", ylim=(-4, 104))
    for ax in (distance, fooled):
        ax.axvline(JND, color="grey", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
    distance.legend(fontsize=8, loc="upper left")
    fig.suptitle("faces-wild at full size: transfer to an unseen face model against visible change "
                 "(dotted: one just-noticeable difference)")
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=20)
    parser.add_argument("--methods", default="mnd-dlib,mnd-low,mnd-medium,mnd-high,pgd4,pgd8,pgd12,lowkey4,lowkey8,lowkey12")
    parser.add_argument("--wild", type=int, default=0, help="how many faces-wild photos")
    parser.add_argument("--wild-methods", default="mnd-medium")
    parser.add_argument("--out", type=Path, default=RESULTS / "transfer.md")
    parser.add_argument("--plot", action="store_true")
    parser.add_argument("--restart", action="store_true")
    parser.add_argument("--save-dir", type=Path, help="also write each faces-wild result here, as METHOD/NAME.png")
    args = parser.parse_args()
    args.methods, args.wild_methods = args.methods.split(","), args.wild_methods.split(",")
    unknown = sorted(set(args.methods + args.wild_methods) - set(METHODS))
    if unknown:
        sys.exit(f"unknown methods {unknown}; choose from {sorted(METHODS)}")
    if not CELEBA_ID.is_dir() or not (MODELS / f"{UNSEEN}.onnx").is_file():
        sys.exit(f"this benchmark needs {CELEBA_ID} and {MODELS}")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    embedders = [load_embedder("dlib"), *map(load_embedder, ensemble_specs())]
    dlib = embedders[:1]
    judges = [load_judge("dlib"), *map(load_judge, ensemble_specs()),
              load_judge(f"{MODELS / UNSEEN}.onnx:threshold=0.79,name={UNSEEN}")]  # fmt: skip
    assert all(e.name != UNSEEN for e in embedders), "the unseen judge must never be attacked"
    saved = args.out.with_suffix(".json")
    state = json.loads(saved.read_text()) if saved.is_file() and not args.restart else {}
    names = [j.name for j in judges]

    def save() -> None:
        lines = ["# Transfer and robustness of face protection", "",
                 f"Command: `OMP_NUM_THREADS=1 python bench/transfer.py {' '.join(a for a in sys.argv[1:] if a != '--restart')}`"
                 " (rows accumulate across runs of this script; each row says how many probes it covers)", "",
                 f"One CPU thread, shared 2-core machine (other jobs running: seconds are indicative); "
                 f"updated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
                 f"Attack ensemble: dlib + {', '.join(ENSEMBLE)}. Unseen judge: {UNSEEN}.", ""]  # fmt: skip
        lines += probe_table(state, names) + wild_table(state, names)
        saved.write_text(json.dumps(state, indent=1, default=float))
        args.out.write_text("\n".join(lines) + "\n")

    if args.identities:
        run_probes(args, judges, embedders, dlib, state, save)
    if args.wild:
        run_wild(args, judges, embedders, dlib, state, save)
    save()
    if args.plot and state.get("rows"):
        plot(state, args.out.with_suffix(".png"))
    if args.plot and state.get("wild"):
        plot_wild(state, args.out.with_name(args.out.stem + ("_wild" if state.get("rows") else "") + ".png"))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
