"""A batch of image files protected into one output folder: what to protect, what to call the outputs, and the
folder's records kept across runs, so a batch resumes where it stopped.

`plan_batch` finds the images (advpriv's own outputs in folders left out), skips inputs whose output exists with
the bytes verified when it was written (unless forced) and names the rest's outputs; `protect_files` runs it in
this process (`advpriv batch` runs the same plan on Ray); `merge_metrics` writes the folder's metrics table with
earlier records kept (a file run again replaces its record).

Several runs may share one folder: `protect_into` claims each output's name atomically before protecting (a name
someone else holds gets the next suffix), merges take turns under a lock, and a tampered table's records are
validated, its outputs honoured only as regular files in the folder (`advpriv.protect.outdir`).

Example:
    >>> for report in protect_files(["photos/"], "protected/"):  # doctest: +SKIP
    ...     print(report.input, report.success, report.error)
    >>> completed("no-such-folder")
    {}
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from .. import progress
from ..images import MAX_PIXELS, atomic_write, find_images
from .api import Protected
from .files import (FACE_TARGET, METRICS_CSV, METRICS_JSON, FileReport, make_protector, protect_one, real_path,
                    report_from_row, write_metrics)
from .outdir import Claim, claim, locked, read_regular

OWN_OUTPUT = re.compile(r"\.protected(-\d+)?\.(png|jpg)$", re.IGNORECASE)
"""The names advpriv writes (`OutputNamer`): never taken as inputs from a folder."""
ADVPRIV_OUTPUT = "written by advpriv (name one explicitly to protect it again)"


def output_name(stem: str, n: int, fmt: str) -> str:
    """The n-th name advpriv tries for an input's output.

    >>> output_name("cat", 0, "png"), output_name("cat", 2, "jpg")
    ('cat.protected.png', 'cat.protected-2.jpg')
    """
    return f"{stem}.protected{'' if n == 0 else f'-{n}'}.{fmt}"


class OutputNamer:
    """Picks `<stem>.protected.<fmt>` in `outdir`, never a path in `taken` (the inputs, earlier outputs) and never
    a name used twice in a run; an input's own earlier output (`own`, by real input path) keeps its name."""

    def __init__(self, outdir: Path, taken: list[Path], fmt: str, own: dict[str, Path] | None = None) -> None:
        self.outdir, self.fmt, self.own = outdir, fmt, own or {}
        self.taken = {real_path(p) for p in taken}

    def __call__(self, source: Path) -> Path:
        candidates = (self.outdir / output_name(source.stem, n, self.fmt) for n in itertools.count())
        earlier = self.own.get(real_path(source))
        if earlier is not None and earlier.suffix == f".{self.fmt}":
            candidates = itertools.chain([earlier], candidates)
        path = next(p for p in candidates if real_path(p) not in self.taken)
        self.taken.add(real_path(path))
        return path


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


def records(outdir: str | os.PathLike, problems: list[str] | None = None) -> list[FileReport]:
    """The records of `outdir`'s metrics table (none when there is no table). A table that cannot be read (not a
    regular file, too big, not JSON) or rows that are not records are dropped, with one line appended to `problems`."""
    path = Path(outdir) / METRICS_JSON
    try:
        rows = json.loads(read_regular(path))
        if not isinstance(rows, list):
            raise ValueError("not a list of records")
    except FileNotFoundError:
        return []
    except (OSError, ValueError, RecursionError) as e:
        _note(problems, f"{path}: cannot be read ({e}); its records are dropped")
        return []
    found = [report_from_row(row) for row in rows]
    kept = [r for r in found if r is not None]
    if len(kept) < len(found):
        _note(problems, f"{path}: {len(found) - len(kept)} of {len(found)} records are not advpriv's (tampered or "
                        "damaged) and were dropped")
    return kept


def _note(problems: list[str] | None, problem: str) -> None:
    if problems is not None:
        problems.append(f"{problem}; the table is written anew when this run ends.")


def _in_folder(output: str, folder: os.stat_result | None) -> str | None:
    """`output` as an absolute path when it names a file directly in `folder` (its stat), else None; a stat, not a
    realpath, since every record is checked on every run."""
    path = os.path.abspath(output)
    try:
        return path if folder is not None and os.path.samestat(os.stat(os.path.dirname(path)), folder) else None
    except OSError:
        return None


def _folder(outdir: str | os.PathLike) -> os.stat_result | None:
    try:
        return os.stat(outdir)
    except OSError:
        return None


def _verified(record: FileReport, folder: os.stat_result | None) -> bool:
    """Whether `record` succeeded and its output, a regular file (not a link) directly in `folder`, has the bytes
    written."""
    if not (record.success and not record.error and record.output and record.sha256):
        return False
    output = _in_folder(record.output, folder)
    try:
        return output is not None and hashlib.sha256(read_regular(output, links=False)).hexdigest() == record.sha256
    except OSError:
        return False


def completed(outdir: str | os.PathLike) -> dict[str, FileReport]:
    """Earlier records of `outdir`, by real input path, whose output exists with the verified bytes and succeeded."""
    folder = _folder(outdir)
    return {real_path(r.input): r for r in records(outdir) if _verified(r, folder)}


def _own_outputs(earlier: list[FileReport], sources: list[str], outdir: str | os.PathLike, folder: tuple[int, int],
                 todo: set[str]) -> dict[str, Path]:
    """For each input in `todo` (real paths; `sources`: the real input of each record), its recorded output when
    that is a file in `outdir` (`folder`: its `_folder`) with a name advpriv writes and no other record names."""
    names = Counter(os.path.basename(r.output) for r in earlier if r.output)
    return {source: Path(outdir) / os.path.basename(r.output) for source, r in zip(sources, earlier)
            if source in todo and r.output and names[os.path.basename(r.output)] == 1
            and OWN_OUTPUT.search(os.path.basename(r.output)) and _in_folder(r.output, folder)}


@dataclass
class Plan:
    """What a batch will do: `outputs` maps each input to protect to its output path, in input order; `done`
    counts inputs skipped as already protected; `skipped` gives each file left out of the folders, with why.

    own: the outputs that are their input's earlier output, replaced in place (any other name is claimed anew,
    see `claim_output`); notes: problems found in the folder's metrics table, one line each.
    """

    outputs: dict[Path, Path]
    done: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    own: set[Path] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def plan_batch(inputs: list[str | os.PathLike], outdir: str | os.PathLike, fmt: str = "png",
               force: bool = False) -> Plan:
    """The plan for protecting `inputs` (files or folders) into `outdir`; `force` protects completed inputs again."""
    skipped: list[tuple[Path, str]] = []
    notes: list[str] = []
    paths = images_to_protect(inputs, skipped)
    earlier = records(outdir, notes)
    sources = [real_path(r.input) for r in earlier]
    folder = _folder(outdir)
    done = {} if force else {source: r for source, r in zip(sources, earlier) if _verified(r, folder)}
    todo = [p for p in paths if real_path(p) not in done]
    own = _own_outputs(earlier, sources, outdir, folder, {real_path(p) for p in todo})
    namer = OutputNamer(Path(outdir), paths + [Path(r.output) for r in done.values()], fmt, own)
    outputs = {p: namer(p) for p in todo}
    return Plan(outputs, len(paths) - len(todo), skipped, {out for p, out in outputs.items()
                                                             if own.get(real_path(p)) == out}, notes)


def claim_output(planned: Path, replace: bool = False) -> Claim:
    """Claim `planned` atomically, or when anyone else holds that name (another run, the user) the input's next
    free one (`-1`, `-2`, ...); `replace`: `planned` is the input's own earlier output, kept when it exists.
    Raises OSError when no name can be created (too long for the file system, a folder not writable).

    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> first, second = claim_output(folder / "x.protected.png"), claim_output(folder / "x.protected.png")
    >>> second.path.name
    'x.protected-1.png'
    """
    planned.parent.mkdir(parents=True, exist_ok=True)
    parts = OWN_OUTPUT.search(planned.name)
    stem, first, fmt = planned.name[:parts.start()], int((parts.group(1) or "-0")[1:]), parts.group(2)
    for n in itertools.count(first):
        path = planned.parent / output_name(stem, n, fmt)
        try:
            return claim(path)
        except FileExistsError:
            if replace and n == first:
                return Claim(path)


def protect_into(source: bytes | Path, name: str, planned: Path, protector: Callable[[torch.Tensor], Protected],
                 fmt: str = "png", max_pixels: int = MAX_PIXELS, seed: int = 0, replace: bool = False) -> FileReport:
    """Claim the output's name (see `claim_output`), then protect `source` and write it there. Every failure lands
    in the report's error, never raised; a name claimed but not written is given back, even on Ctrl-C."""
    try:
        held = claim_output(planned, replace)
    except OSError as e:
        return FileReport(input=name, error=_unclaimed(name, planned.parent, e))
    try:
        data, report = protect_one(source, name, protector, fmt, max_pixels, seed)
        if data is not None:
            progress.stage("writing")
            try:
                report.output = str(atomic_write(held.path, data))
            except OSError as e:
                report.error = f"{name}: could not write the output ({e}); check that {planned.parent} is writable."
        return report
    finally:
        held.release()


def _unclaimed(name: str, folder: Path, error: OSError) -> str:
    """Why no output name could be created for input `name`, and what to do."""
    if error.errno == errno.ENAMETOOLONG:
        size = len(os.fsencode(os.path.basename(error.filename)))
        return (f"{name}: its output name would be {size} bytes, over the limit of the file system of {folder} "
                f"({os.pathconf(folder, 'PC_NAME_MAX')} bytes); rename the file shorter and run again.")
    return f"{name}: could not create its output ({error}); check that {folder} is writable."


def protect_planned(plan: Plan, protector: Callable[[torch.Tensor], Protected], fmt: str = "png",
                    max_pixels: int = MAX_PIXELS, seed: int = 0) -> Iterator[FileReport]:
    """Protect and write each input of `plan`, yielding its report (failures in `report.error`, never raised)."""
    for path, output in plan.outputs.items():
        yield protect_into(path, str(path), output, protector, fmt, max_pixels, seed, output in plan.own)


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
    record of the same input, then this run's new inputs. Runs that merge into one folder at once take turns
    (`advpriv.protect.outdir.locked`), so no run's records are lost."""
    with locked(outdir):
        new = {real_path(r.input): r for r in reports}
        kept = [new.pop(real_path(r.input), r) for r in records(outdir)]
        return write_metrics(kept + list(new.values()), outdir)
