"""What `advpriv protect` tells a person at the end of a run: the verdict per file in plain words and colour
(`advpriv.faces.verdicts.protection_verdict`, the same words as the service's page), which models were tested,
and a table of the counts that fits the terminal, dropping its least needed columns when it cannot (every number
stays in the metrics file).

Example:
    >>> report = FileReport("cat.png", success=True, seconds=1.0,
    ...                     variants={"png": {"success": True, "summary": "tiger", "faces": []}})
    >>> verdict_lines([report], attacked=[])
    ['[green]cat.png (1.0 s): Protected: the classifier is fooled on every copy. It sees “tiger” as written (png).[/green]']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from .faces.verdicts import copy_label, judge_names, protection_verdict
from .protect.files import FileReport

COLOURS = {"all": "green", "attacked": "yellow", "none": "red"}
SHOWN = 5
"""Up to this many files get a line each; more are counted per verdict."""
FOLD_AT = 16
"""A file name or label longer than this folds onto more lines before a column is left out for it."""


@dataclass
class Column:
    """A table column: its header, one cell per row (rich markup), and whether it may wrap (text) or not (numbers)."""

    header: str
    cells: list[str]
    wraps: bool = False


def verdicts(reports: Sequence[FileReport], attacked: Sequence[str], impersonate: bool = False) -> list[dict | None]:
    """`protection_verdict` of each report (None for a file that failed)."""
    return [None if r.error or not r.variants else protection_verdict(r.success, r.variants, attacked, impersonate)
            for r in reports]


def verdict_lines(reports: Sequence[FileReport], attacked: Sequence[str], impersonate: bool = False) -> list[str]:
    """One coloured line per file ("name (s): headline detail"), or with more than `SHOWN` files one per verdict
    with the count and the first files it concerns."""
    judged = [(r, v) for r, v in zip(reports, verdicts(reports, attacked, impersonate)) if v is not None]
    if len(judged) <= SHOWN:
        return [_coloured(v["case"], f"{Path(r.input).name} ({r.seconds:.1f} s): {v['headline']} {v['detail']}")
                for r, v in judged]
    lines = []
    for case in COLOURS:
        names = [Path(r.input).name for r, v in judged if v["case"] == case]
        if names:
            headline = next(v["headline"] for _, v in judged if v["case"] == case)
            shown = ", ".join(names[:3]) + ", …" * (len(names) > 3)
            lines.append(_coloured(case, f"{headline} {len(names)} of {len(judged)} files: {shown}"))
    return lines


def _coloured(case: str, text: str) -> str:
    return f"[{COLOURS[case]}]{escape(text)}[/{COLOURS[case]}]"


def _names(names: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c".

    >>> _names(["dlib"]), _names(["dlib", "facenet", "sface"])
    ('dlib', 'dlib, facenet and sface')
    """
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def scope_line(attacked: Sequence[str], judges: Sequence[str]) -> str:
    """Which face models the run tested, and what it did not.

    >>> scope_line(["dlib"], ["dlib"])
    'Tested against dlib only, the model it attacked: not against other face models (add some: advpriv models add / fetch, or --judge MODEL.onnx:threshold=T).'
    >>> scope_line(["dlib", "facenet"], ["dlib", "mobilefacenet"])
    'Attacked dlib and facenet; also judged by mobilefacenet, which the protection never saw.'
    """
    unseen = [j for j in judges if j not in attacked]
    if unseen:
        return f"Attacked {_names(attacked)}; also judged by {_names(unseen)}, which the protection never saw."
    models = "the model" if len(attacked) == 1 else "the models"
    return (f"Tested against {_names(attacked)} only, {models} it attacked: not against other face models (add some: "
            "advpriv models add / fetch, or --judge MODEL.onnx:threshold=T).")


def _face_quality(faces: list[dict]) -> tuple[str, str]:
    """The most changed face's visible change (`advpriv.visibility.face_change`) and CIEDE2000 in its eyes and lips,
    as table cells ('' when unknown)."""
    rated = [face["quality"] for face in faces if face.get("quality")]
    skin = max((q["ciede2000_p99"] for q in rated if "ciede2000_p99" in q), default=None)
    change = max((q["ciede2000"] for q in rated if "ciede2000" in q), default=None)
    return ("" if skin is None else f"{skin:.1f}", "" if change is None else f"{change:.1f}")


def face_columns(reports: Sequence[FileReport], found: Sequence[dict | None]) -> list[Column]:
    """One row per file and judge: per copy, faces still recognised (or matching the target) over faces known,
    green where the judge is fooled as asked; the most changed face's ΔE (face, eyes) on the file's first row."""
    copies = list(dict.fromkeys(c["name"] for v in found if v for c in v["copies"][1:]))
    file, judge, written, quality = Column("file", [], wraps=True), Column("judge", []), Column("written", []), []
    after = {name: Column(name, []) for name in copies}
    skin, change = Column("ΔE face", []), Column("ΔE eyes", [])
    for r, v in zip(reports, found):
        if v is None:
            for column in (file, judge, written, *after.values(), skin, change):
                column.cells.append(escape(Path(r.input).name) if column is file else
                                    "[red]error[/red]" if column is judge else "")
            continue
        by_copy = {c["name"]: {j["judge"]: j for j in c["judges"]} for c in v["copies"]}
        quality = _face_quality(r.faces)
        for k, name in enumerate(by_copy[v["copies"][0]["name"]]):
            file.cells.append(escape(Path(r.input).name) if k == 0 else "")
            judge.cells.append(escape(name))
            written.cells.append(_count(by_copy[v["copies"][0]["name"]].get(name)))
            for copy, column in after.items():
                column.cells.append(_count(by_copy.get(copy, {}).get(name)))
            skin.cells.append(quality[0] if k == 0 else "")
            change.cells.append(quality[1] if k == 0 else "")
    return [file, judge, written, *after.values(), skin, change]


def _count(row: dict | None) -> str:
    if row is None:
        return ""
    colour = "green" if row["reached"] else "red"
    return f"[{colour}]{row['matched']}/{row['known']}[/{colour}]"


def classifier_columns(reports: Sequence[FileReport]) -> list[Column]:
    """One row per file: what the classifier saw, what it sees on each copy (green when fooled), PSNR and SSIM."""
    copies = list(dict.fromkeys(name for r in reports for name in r.variants))
    columns = [Column("file", [], wraps=True), Column("saw", [], wraps=True),
               *(Column("written" if i == 0 else name, [], wraps=True) for i, name in enumerate(copies)),
               Column("PSNR dB", []), Column("SSIM", [])]
    for r in reports:
        cells = [escape(Path(r.input).name), "[red]error[/red]" if r.error else escape(r.before)]
        for name in copies:
            verdict = r.variants.get(name)
            colour = "green" if verdict and verdict["success"] else "red"
            cells.append(f"[{colour}]{escape(verdict['summary'])}[/{colour}]" if verdict else "")
        cells += ["", ""] if r.error else [f"{r.metrics['psnr']:.1f}", f"{r.metrics['ssim']:.4f}"]
        for column, cell in zip(columns, cells):
            column.cells.append(cell)
    return columns


def _width(column: Column) -> int:
    """The fewest terminal cells `column` needs with nothing cut: its longest header or cell, or for text that may
    wrap, its longest word up to `FOLD_AT` (a longer one folds)."""
    texts = [column.header] + [Text.from_markup(cell).plain for cell in column.cells]
    if not column.wraps:
        return max(map(cell_len, texts))
    return max(min(cell_len(word), FOLD_AT) for text in texts for word in text.split())


def fitted_table(title: str, columns: list[Column], droppable: Sequence[str], width: int) -> tuple[Table, list[str]]:
    """A table of `columns` no wider than `width`: while a cell would have to be cut, the next column of
    `droppable` is left out (text that may wrap, such as file names, wraps instead). Returns the table and the
    headers left out."""
    kept, dropped = list(columns), []
    for header in droppable:
        if sum(map(_width, kept)) + 3 * (len(kept) - 1) <= width:
            break
        kept = [c for c in kept if c.header != header]
        dropped.append(header)
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in kept:
        table.add_column(escape(column.header), no_wrap=not column.wraps, overflow="fold")
    for row in zip(*(column.cells for column in kept)):
        table.add_row(*row)
    return table, dropped


def print_summary(reports: Sequence[FileReport], attacked: Sequence[str], impersonate: bool, out: Console) -> None:
    """The table, then the verdict lines, then (for faces) which models were tested, on `out`."""
    found = verdicts(reports, attacked, impersonate)
    faces = [face for r in reports for face in r.faces]
    judges = judge_names(faces)
    if judges:
        title = "Faces matching the target" if impersonate else "Faces still recognised"
        columns = face_columns(reports, found)
        droppable = ["ΔE eyes", "ΔE face", *(c.header for c in reversed(columns[3:-2]))]
    else:
        title, columns = "What the classifier sees", classifier_columns(reports)
        droppable = ["SSIM", "PSNR dB", *(c.header for c in reversed(columns[3:-2]))]
    table, dropped = fitted_table(title, columns, droppable, out.width)
    out.print(table)
    copies = list(dict.fromkeys(name for r in reports for name in r.variants))
    lines = [f"written: the file as written ({copies[0]}); " + "; ".join(f"{name}: {copy_label(name)}" for name in copies[1:])
             + "."] if copies else []
    if dropped:
        lines.append(f"Left out to fit {out.width} columns: {', '.join(dropped)} (all in advpriv-metrics.json).")
    lines += verdict_lines(reports, attacked, impersonate)
    if judges and attacked:
        lines.append(scope_line(attacked, judges))
    for line in lines:
        out.print(line, highlight=False)
