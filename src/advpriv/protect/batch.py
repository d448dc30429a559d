"""A batch of image files protected into one output folder: what to protect, what to call the outputs, and the
folder's records kept across runs, so a batch resumes where it stopped.

`plan_batch` finds the images (advpriv's own outputs in folders left out), skips inputs whose output exists with
the bytes verified when it was written (unless forced) and names the rest's outputs; `protect_files` runs it in
this process (`advpriv batch` runs the same plan on Ray); `merge_metrics` writes the folder's metrics table with
earlier records kept (a file run again replaces its record).

Example:
    >>> for report in protect_files(["photos/"], "protected/"):  # doctest: +SKIP
    ...     print(report.input, report.success, report.error)
    >>> completed("no-such-folder")
    {}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterator

from torch import nn

from ..images import MAX_PIXELS, atomic_write, find_images
from .files import FACE_TARGET, METRICS_CSV, METRICS_JSON, FileReport, make_protector, protect_one, real_path, write_metrics

OWN_OUTPUT = re.compile(r"\.protected(-\d+)?\.(png|jpg)$", re.IGNORECASE)
"""The names advpriv writes (`OutputNamer`): never taken as inputs from a folder."""
ADVPRIV_OUTPUT = "written by advpriv (name one explicitly to protect it again)"


class OutputNamer:
    """Picks `<stem>.protected.<fmt>` in `outdir`, never a path in `taken` (the inputs, earlier outputs) and never
    a name used twice in a run."""

    def __init__(self, outdir: Path, taken: list[Path], fmt: str) -> None:
        self.outdir, self.fmt = outdir, fmt
        self.taken = {real_path(p) for p in taken}

    def __call__(self, source: Path) -> Path:
        n = 0
        while True:
            suffix = "" if n == 0 else f"-{n}"
            path = self.outdir / f"{source.stem}.protected{suffix}.{self.fmt}"
            if real_path(path) not in self.taken:
                self.taken.add(real_path(path))
                return path
            n += 1


def images_to_protect(inputs: list[str | os.PathLike], skipped: list[tuple[Path, str]] | None = None) -> list[Path]:
    """`find_images`, less advpriv's own outputs found in folders (an output folder inside an input folder must
    not be protected again); each file left out is appended to `skipped` as (path, reason).

    >>> images_to_protect(["cat.protected.png"])  # named explicitly: kept
    [PosixPath('cat.protected.png')]
    """
    named = {real_path(p) for p in inputs}
    found: list[tuple[Path, str]] = []
    paths = []
    for path in find_images(inputs, found):
        if OWN_OUTPUT.search(path.name) and real_path(path) not in named:
            found.append((path, ADVPRIV_OUTPUT))
        else:
            paths.append(path)
    if skipped is not None:
        own = {METRICS_JSON, METRICS_CSV}
        skipped.extend((p, ADVPRIV_OUTPUT if p.name in own else why) for p, why in found)
    return paths


def skipped_lines(skipped: list[tuple[Path, str]], shown: int = 3) -> list[str]:
    """One line per reason: how many files were left out, and a few of them.

    >>> skipped_lines([(Path("a.txt"), "not images"), (Path("b.xmp"), "not images")])
    ['2 files not images: a.txt, b.xmp']
    """
    by_reason: dict[str, list[str]] = {}
    for path, why in skipped:
        by_reason.setdefault(why, []).append(str(path))
    return [f"{len(paths)} file{'s' * (len(paths) > 1)} {why}: {', '.join(paths[:shown])}{', …' * (len(paths) > shown)}"
            for why, paths in by_reason.items()]


def records(outdir: str | os.PathLike) -> list[FileReport]:
    """The records of `outdir`'s metrics table (none when there is no table, or it cannot be read)."""
    try:
        rows = json.loads((Path(outdir) / METRICS_JSON).read_text())
    except (OSError, ValueError):
        return []
    known = {f.name for f in fields(FileReport)}
    return [FileReport(**{k: v for k, v in row.items() if k in known}) for row in rows if isinstance(row, dict)]


def _verified(record: FileReport) -> bool:
    if not (record.success and not record.error and record.output and record.sha256):
        return False
    try:
        return hashlib.sha256(Path(record.output).read_bytes()).hexdigest() == record.sha256
    except OSError:
        return False


def completed(outdir: str | os.PathLike) -> dict[str, FileReport]:
    """Earlier records of `outdir`, by real input path, whose output exists with the verified bytes and succeeded."""
    return {real_path(r.input): r for r in records(outdir) if _verified(r)}


@dataclass
class Plan:
    """What a batch will do: `outputs` maps each input to protect to its output path, in input order; `done`
    counts inputs skipped as already protected; `skipped` gives each file left out of the folders, with why."""

    outputs: dict[Path, Path]
    done: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def plan_batch(inputs: list[str | os.PathLike], outdir: str | os.PathLike, fmt: str = "png",
               force: bool = False) -> Plan:
    """The plan for protecting `inputs` (files or folders) into `outdir`; `force` protects completed inputs again."""
    skipped: list[tuple[Path, str]] = []
    paths = images_to_protect(inputs, skipped)
    done = {} if force else completed(outdir)
    todo = [p for p in paths if real_path(p) not in done]
    namer = OutputNamer(Path(outdir), paths + [Path(r.output) for r in done.values()], fmt)
    return Plan({p: namer(p) for p in todo}, len(paths) - len(todo), skipped)


def protect_planned(plan: Plan, protector, fmt: str = "png", max_pixels: int = MAX_PIXELS,
                    seed: int = 0) -> Iterator[FileReport]:
    """Protect and write each input of `plan`, yielding its report (failures in `report.error`, never raised)."""
    for path, output in plan.outputs.items():
        data, report = protect_one(path, str(path), protector, fmt, max_pixels, seed)
        if data is not None:
            try:
                report.output = str(atomic_write(output, data))
            except OSError as e:
                report.error = f"{path}: could not write the output ({e}); check that {output.parent} is writable."
        yield report


def protect_files(
    inputs: list[str | os.PathLike],
    outdir: str | os.PathLike,
    target: str | nn.Module = FACE_TARGET,
    method: str = "mnd",
    fmt: str = "png",
    max_pixels: int = MAX_PIXELS,
    seed: int = 0,
    force: bool = False,
    **options,
) -> Iterator[FileReport]:
    """Yield one `FileReport` per image in `inputs` (files or folders) not yet protected in `outdir`.

    `options` go to `advpriv.protect` for a classifier target, or to `protect_faces` for the face target "dlib".
    """
    plan = plan_batch(inputs, outdir, fmt, force)
    yield from protect_planned(plan, make_protector(target, method, **options), fmt, max_pixels, seed)


def merge_metrics(reports: list[FileReport], outdir: str | os.PathLike) -> tuple[Path, Path]:
    """Write the metrics table (JSON and CSV, atomically): earlier records first, each replaced by this run's
    record of the same input, then this run's new inputs."""
    new = {real_path(r.input): r for r in reports}
    kept = [new.pop(real_path(r.input), r) for r in records(outdir)]
    return write_metrics(kept + list(new.values()), outdir)
