"""Protect image files: decode, protect, write without metadata, re-read and verify, and record metrics.

A bad file gets an error naming it and the batch goes on. Inputs are never overwritten.

Example:
    >>> for report in protect_files(["photos/"], "protected/"):  # doctest: +SKIP
    ...     print(report.input, report.success, report.error)
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from ..images import MAX_PIXELS, ImageError, atomic_write, encode_image, find_images, load_image
from ..faces import NoFaceError
from ..faces.verdicts import recognised
from ..targets import load_target
from .api import Protected, protect

METRICS_JSON = "advpriv-metrics.json"
METRICS_CSV = "advpriv-metrics.csv"


@dataclass
class FileReport:
    """What happened to one input file. `success` is measured on the file as written, decoded again.

    variants: per version judged, the file as written (its format, e.g. "png") first, then each platform
    re-encoding of it ("jpeg85", "half"; see `advpriv.protect.reencode`): {"success", "summary", "faces"}.
    survival: those verdicts in one line (see `survival_line`).
    """

    input: str
    output: str | None = None
    success: bool = False
    before: str = ""
    after: str = ""
    seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    faces: list[dict] = field(default_factory=list)
    variants: dict[str, dict] = field(default_factory=dict)
    survival: str = ""
    error: str | None = None


FACE_TARGET = "dlib"


def make_protector(target: str | nn.Module, method: str, **options) -> Callable[[torch.Tensor], Protected]:
    """One image (3,H,W) -> `Protected`, for the face target or a classifier (loaded once, here)."""
    if target == FACE_TARGET:
        from .face_protect import protect_faces

        return lambda image: protect_faces(image, method=method, **options)
    model = load_target(target)
    return lambda image: protect([image], target=model, method=method, **options)[0]


def protect_encoded(image: torch.Tensor, protector: Callable[[torch.Tensor], Protected], fmt: str,
                    name: str) -> tuple[bytes, FileReport]:
    """Protect one decoded image and encode it as `fmt`; the report judges those bytes, decoded again.

    Example:
        >>> data, report = protect_encoded(load_image("cat.jpg"), make_protector("efficientnet-lite0", "mnd"),
        ...                                "png", "cat.jpg")  # doctest: +SKIP
    """
    result = protector(image)
    data = encode_image(result.image, fmt)
    check = result.recheck(load_image(io.BytesIO(data), name=name))
    variants = check.versions(fmt)
    return data, FileReport(input=name, success=check.success, before=result.before, after=check.summary,
                            seconds=result.seconds, metrics=result.metrics, faces=check.faces, variants=variants,
                            survival=survival_line(variants))


def judge_names(faces: list[dict]) -> list[str]:
    """The judges that gave a verdict on any of `faces`, in order of appearance."""
    return list(dict.fromkeys(name for face in faces for name in face["judges"]))


def survival_text(verdict: dict, judges: list[str]) -> str:
    """One version's verdict: "dlib 0/1 · mobilefacenet 1/1" for faces, "protected (tiger)" for a classifier.

    >>> survival_text({"success": False, "summary": "tabby", "faces": []}, [])
    'not protected (tabby)'
    """
    if not judges:
        return f"{'protected' if verdict['success'] else 'not protected'} ({verdict['summary']})"
    return " · ".join("{} {}/{}".format(name, *recognised(verdict["faces"], name)) for name in judges)


def survival_line(variants: dict[str, dict]) -> str:
    """Every version's verdict in one line, the written file first: per judge, faces still recognised (or matching
    the target when impersonating) over faces judged; for a classifier, whether it is fooled and what it sees.

    >>> survival_line({"png": {"success": True, "summary": "tiger", "faces": []},
    ...                "jpeg85": {"success": False, "summary": "tabby", "faces": []}})
    'png: protected (tiger); after jpeg85: not protected (tabby)'
    """
    versions = list(variants.items())
    judges = judge_names([face for _, verdict in versions for face in verdict["faces"]])
    parts = [f"{'after ' * (i > 0)}{name}: {survival_text(verdict, judges)}" for i, (name, verdict) in enumerate(versions)]
    return "; ".join(parts)


class OutputNamer:
    """Picks `<stem>.protected.<fmt>` in `outdir`, never an input's path and never a name used twice in a run."""

    def __init__(self, outdir: Path, inputs: list[Path], fmt: str) -> None:
        self.outdir, self.fmt = outdir, fmt
        self.taken = {p.resolve() for p in inputs}

    def __call__(self, source: Path) -> Path:
        n = 0
        while True:
            suffix = "" if n == 0 else f"-{n}"
            path = self.outdir / f"{source.stem}.protected{suffix}.{self.fmt}"
            if path.resolve() not in self.taken:
                self.taken.add(path.resolve())
                return path
            n += 1


def protect_files(
    inputs: list[str | os.PathLike],
    outdir: str | os.PathLike,
    target: str | nn.Module = FACE_TARGET,
    method: str = "mnd",
    fmt: str = "png",
    max_pixels: int = MAX_PIXELS,
    **options,
) -> Iterator[FileReport]:
    """Yield one `FileReport` per image found in `inputs` (files or folders).

    `options` go to `advpriv.protect` for a classifier target, or to `protect_faces` for the face target "dlib".
    """
    outdir = Path(outdir)
    paths = find_images(inputs)
    protector = make_protector(target, method, **options)
    namer = OutputNamer(outdir, paths, fmt)
    for path in paths:
        report = FileReport(input=str(path))
        try:
            data, report = protect_encoded(load_image(path, max_pixels=max_pixels), protector, fmt, str(path))
            report.output = str(atomic_write(namer(path), data))
        except ImageError as e:
            report.error = str(e)
        except NoFaceError as e:
            report.error = f"{path}: {e}"
        except OSError as e:
            report.error = f"{path}: could not write the output ({e}); check that {outdir} is writable."
        yield report


def write_metrics(reports: list[FileReport], outdir: str | os.PathLike) -> tuple[Path, Path]:
    """Write per-image metrics as JSON and CSV next to the outputs, atomically."""
    outdir = Path(outdir)
    rows = [asdict(r) for r in reports]
    json_path = atomic_write(outdir / METRICS_JSON, json.dumps(rows, indent=2).encode())
    keys = ["input", "output", "success", "before", "after", "survival", "seconds", "error"]
    metric_keys = sorted({k for r in reports for k in r.metrics})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(keys + metric_keys)
    for r in reports:
        writer.writerow([getattr(r, k) for k in keys] + [r.metrics.get(k, "") for k in metric_keys])
    csv_path = atomic_write(outdir / METRICS_CSV, buf.getvalue().encode())
    return json_path, csv_path
