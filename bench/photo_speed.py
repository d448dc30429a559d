"""Time protecting one 12-megapixel photo with one face: each stage in Python, then `advpriv protect` end to end.

Usage: OMP_NUM_THREADS=2 .venv/bin/python bench/photo_speed.py [--photo faces-wild/000565.jpg]

The photo is a faces-wild photo (../shared/data) upscaled to 4000×3000 with Pillow's bicubic filter and saved as
JPEG 92 in a temporary folder, so that the face fills a phone portrait's share of the frame (about 700 pixels).
Stages: decode, dlib's detection (HOG, upsampled once, as the judge runs it), MND on the faces' region
(`protect_faces` defaults: dlib's ResNet alone, no re-encoding robustness), the quality report; then the command
line, once with `--strength low` and once with its default `medium`, each in a fresh process (model loading, PNG
writing and the judges' verification of the written file and of its JPEG 85 and half-size copies included).
Writes bench/results/photo_speed.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from advpriv.faces import find_faces
from advpriv.faces.objectives import DODGE_MARGIN
from advpriv.images import load_image
from advpriv.protect.face_protect import protect_faces
from notes import write_keeping_notes  # bench/, beside this script

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"


def upscaled_photo(source: Path, out: Path) -> Path:
    """`source` enlarged to 4000×3000 (Pillow's bicubic) and saved to `out` as JPEG 92: a 12-megapixel photo."""
    Image.open(source).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC).save(out, quality=92)
    return out


def stages(photo: Path) -> dict:
    """Decode, then `protect_faces` as a user calls it (its detection included); detection is timed again alone."""
    from advpriv.faces.detect import forget_boxes  # here, so that profile_mnd.py can time older code too
    forget_boxes()
    start = time.perf_counter()
    image = load_image(photo)
    decoded = time.perf_counter()
    result = protect_faces(image, margin=DODGE_MARGIN)
    done = time.perf_counter()
    forget_boxes()
    faces = find_faces(image, arcface=False)  # as protect_faces finds them for dlib's ResNet alone
    detect = time.perf_counter() - done
    return {"decode": decoded - start, "detect": detect, "mnd": result.seconds,
            "report_and_rest": done - decoded - detect - result.seconds, "total": done - start,
            "faces": len(faces), "success": result.success, "psnr": result.metrics["psnr"], "ssim": result.metrics["ssim"]}


def command_line(photo: Path, strength: str, out: Path) -> dict:
    start = time.perf_counter()
    run = subprocess.run([str(Path(sys.executable).parent / "advpriv"), "protect", str(photo), "-o", str(out),
                          "--strength", strength, "--force"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (row,) = json.loads((out / "advpriv-metrics.json").read_text()) if run.returncode == 0 else [{}]
    return {"strength": strength, "seconds": seconds, "exit": run.returncode, "protect_seconds": row.get("seconds"),
            "psnr": row.get("metrics", {}).get("psnr"), "survival": row.get("survival", run.stderr.strip()[-300:])}


def table(record: dict) -> str:
    s = record["stages"]
    lines = ["# One 12-megapixel photo with one face", "",
             f"Command: `OMP_NUM_THREADS=2 .venv/bin/python bench/photo_speed.py --photo {record['photo']}` "
             f"({record['when']} UTC, load average {record['load']} before the run, 2 cores).", "",
             f"The photo: {record['photo']} upscaled to 4000×3000 (bicubic, JPEG 92); {s['faces']} face found.", "",
             "| stage (Python, models loaded) | seconds |", "|---|---|",
             f"| decode | {s['decode']:.2f} |", f"| detect (dlib HOG, upsampled once) | {s['detect']:.2f} |",
             f"| MND on the faces' region | {s['mnd']:.2f} |", f"| quality report and the rest | {s['report_and_rest']:.2f} |",
             f"| **total** | **{s['total']:.2f}** |", "",
             f"MND: success {s['success']}, PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.4f} on the whole photo.", "",
             "| `advpriv protect` (fresh process) | wall seconds | of which protection | exit | PSNR dB | verdicts (dlib) |",
             "|---|---|---|---|---|---|"]
    for c in record["command_line"]:
        protection = f"{c['protect_seconds']:.1f}" if c["protect_seconds"] is not None else "–"
        psnr = f"{c['psnr']:.2f}" if c["psnr"] is not None else "–"
        lines.append(f"| --strength {c['strength']} | {c['seconds']:.1f} | {protection} | {c['exit']} | {psnr} | {c['survival']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", default="faces-wild/images/000565.jpg", help="a photo under ../shared/data")
    args = parser.parse_args()
    source = DATA / args.photo
    if not source.is_file():
        sys.exit(f"{source} not found: this benchmark needs ../shared/data beside the repository.")
    load = f"{os.getloadavg()[0]:.2f}"
    with tempfile.TemporaryDirectory() as tmp:
        photo = upscaled_photo(source, Path(tmp) / "photo-12mp.jpg")
        protect_faces(load_image(DATA / args.photo), margin=DODGE_MARGIN)  # warm-up: models loaded once
        record = {"photo": args.photo, "when": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "load": load,
                  "stages": stages(photo),
                  "command_line": [command_line(photo, strength, Path(tmp) / strength) for strength in ("low", "medium")]}
    (RESULTS / "photo_speed.json").write_text(json.dumps(record, indent=1))
    write_keeping_notes(RESULTS / "photo_speed.md", table(record))
    print(table(record))


if __name__ == "__main__":
    main()
