"""One file's protection from its bytes, and the output folder's records: what `advpriv batch` needs per file.

`protect_bytes`: decode, seed, protect, encode and judge one file; every failure lands in `report.error`, so one
odd file never stops a batch. `completed`: the folder's earlier records whose output still exists, decodes and
was protected. `merge_metrics`: the folder's metrics table with earlier records kept (a file run again replaces
its record).

Example:
    >>> completed("no-such-folder")
    {}
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Callable

import torch

from advpriv.faces import NoFaceError
from advpriv.images import ImageError, load_image
from advpriv.protect.api import Protected
from advpriv.protect.files import METRICS_JSON, FileReport, protect_encoded, write_metrics


def protect_bytes(data: bytes, name: str, protector: Callable[[torch.Tensor], Protected], fmt: str,
                  max_pixels: int, seed: int = 0) -> tuple[bytes | None, FileReport]:
    """The protected file's bytes (None on failure) and its report; torch is seeded right before protecting, so
    the result depends only on the file, the seed and the thread count."""
    try:
        image = load_image(io.BytesIO(data), max_pixels=max_pixels, name=name)
        torch.manual_seed(seed)
        return protect_encoded(image, protector, fmt, name)
    except (ImageError, NoFaceError) as e:
        return None, FileReport(input=name, error=f"{name}: {e}")
    except Exception as e:  # noqa: BLE001 (one odd file must not stop the batch; the type says what broke)
        return None, FileReport(input=name, error=f"{name}: {type(e).__name__}: {e}; this file was skipped, "
                                                  "please report it if it is a valid image.")


def _key(record: FileReport) -> str:
    """The record's input as an absolute path (`advpriv protect` records the path as given)."""
    return str(Path(record.input).resolve())


def _records(outdir: Path) -> list[FileReport]:
    path = outdir / METRICS_JSON
    if not path.is_file():
        return []
    known = {f.name for f in fields(FileReport)}
    return [FileReport(**{k: v for k, v in row.items() if k in known}) for row in json.loads(path.read_text())]


def completed(outdir: str | os.PathLike) -> dict[str, FileReport]:
    """Earlier records of `outdir`, by resolved input path, whose protected output exists, decodes and was a
    success."""
    done = {}
    for record in _records(Path(outdir)):
        if record.success and not record.error and record.output and Path(record.output).is_file():
            try:
                load_image(record.output)
            except ImageError:
                continue
            done[_key(record)] = record
    return done


def merge_metrics(reports: list[FileReport], outdir: str | os.PathLike) -> tuple[Path, Path]:
    """Write the metrics table (JSON and CSV, atomically): earlier records first, each replaced by this run's
    record of the same input, then this run's new inputs."""
    new = {_key(r): r for r in reports}
    kept = [new.pop(_key(r), r) for r in _records(Path(outdir))]
    return write_metrics(kept + list(new.values()), outdir)
