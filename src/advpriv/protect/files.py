"""One image file: decode, protect, encode without metadata, re-read and verify, and report; the metrics table.

A bad file gets an error naming it, never an exception (a batch goes on). `advpriv.protect.batch` runs many.

Example:
    >>> data, report = protect_one(Path("cat.jpg"), "cat.jpg", make_protector("efficientnet-lite0", "mnd"),
    ...                            "png")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .. import progress
from ..images import MAX_PIXELS, ImageError, atomic_write, encode_image, load_image
from ..faces import NoFaceError
from ..faces.verdicts import judge_names, recognised
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
    sha256: str = ""
    error: str | None = None


def report_from_row(row: object) -> FileReport | None:
    """A metrics table's row as a `FileReport` (unknown keys ignored, missing ones defaulted), or None when it is
    not one: no input path, or a field of the wrong type (a tampered or damaged table).

    >>> report_from_row({"input": "a.png", "success": True}).success, report_from_row({"input": 5})
    (True, None)
    """
    if not isinstance(row, dict):
        return None
    values = {k: v for k, v in row.items() if k in _FIELD_TYPES}
    paths = [values.get("input"), values.get("output") or ""]
    if not all(isinstance(p, str) and "\0" not in p for p in paths) or not values["input"]:
        return None
    if not all(isinstance(v, _FIELD_TYPES[k]) and (bool in _FIELD_TYPES[k] or not isinstance(v, bool))
               for k, v in values.items()):
        return None
    return FileReport(**values)


def _json_types(hint: object) -> tuple[type, ...]:
    """The JSON value types a field's type hint accepts: containers by their kind only, a float also as an int."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return sum((_json_types(h) for h in typing.get_args(hint)), ())
    return (int, float) if hint is float else (typing.get_origin(hint) or hint,)


_FIELD_TYPES = {name: _json_types(hint) for name, hint in typing.get_type_hints(FileReport).items()}


FACE_TARGET = "dlib"


def make_protector(target: str | nn.Module, method: str, trust_code: bool = False,
                   **options) -> Callable[[torch.Tensor], Protected]:
    """One image (3,H,W) -> `Protected`, for the face target or a classifier (loaded once, here; a TorchScript
    file only with `trust_code`)."""
    if target == FACE_TARGET:
        from ..faces import Identity
        from .face_protect import protect_faces

        if options.get("as_images"):  # found and described once per run, not once per photo
            options["as_images"] = Identity(options["as_images"], options.get("aligned", False))
        return lambda image: protect_faces(image, method=method, **options)
    model = load_target(target, trust_code)
    return lambda image: protect([image], target=model, method=method, **options)[0]


def protect_encoded(image: torch.Tensor, protector: Callable[[torch.Tensor], Protected], fmt: str,
                    name: str) -> tuple[bytes, FileReport]:
    """Protect one decoded image and encode it as `fmt`; the report judges those bytes, decoded again. Its stages,
    "preparing", "protecting" (MND's steps) and "checking", are reported to `advpriv.progress`.

    Example:
        >>> data, report = protect_encoded(load_image("cat.jpg"), make_protector("efficientnet-lite0", "mnd"),
        ...                                "png", "cat.jpg")  # doctest: +SKIP
    """
    progress.stage("preparing")
    result = protector(image)
    progress.stage("checking")
    data = encode_image(result.image, fmt)
    check = result.recheck(load_image(io.BytesIO(data), name=name))
    variants = check.versions(fmt)
    return data, FileReport(input=name, success=check.success, before=result.before, after=check.summary,
                            seconds=result.seconds, metrics=result.metrics, faces=check.faces, variants=variants,
                            survival=survival_line(variants), sha256=hashlib.sha256(data).hexdigest())


def protect_one(source: bytes | Path, name: str, protector: Callable[[torch.Tensor], Protected], fmt: str,
                max_pixels: int = MAX_PIXELS, seed: int = 0) -> tuple[bytes | None, FileReport]:
    """The protected file's bytes (None on failure) and its report; every failure lands in `report.error`, so one
    odd file never stops a batch. Torch is seeded right before protecting, so the result depends only on the file,
    the seed and the thread count, not on the order of a batch.

    >>> protect_one(b"not an image", "notes.txt", None, "png")[1].error
    'notes.txt: not a readable image (unknown or corrupt format); re-export it as PNG or JPEG.'
    """
    try:
        image = load_image(io.BytesIO(source) if isinstance(source, bytes) else source, max_pixels=max_pixels, name=name)
        torch.manual_seed(seed)
        return protect_encoded(image, protector, fmt, name)
    except ImageError as e:
        return None, FileReport(input=name, error=str(e))
    except NoFaceError as e:
        return None, FileReport(input=name, error=f"{name}: {e}")
    except Exception as e:  # noqa: BLE001 (one odd file must not stop the batch; the type says what broke)
        return None, FileReport(input=name, error=f"{name}: {type(e).__name__}: {e}; this file was skipped, "
                                                  "please report it if it is a valid image.")


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


def real_path(path: str | os.PathLike) -> str:
    """The absolute path with symlinks resolved; a symlink loop stays as named instead of raising.

    >>> real_path("/") == os.sep
    True
    """
    return os.path.realpath(path)


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
