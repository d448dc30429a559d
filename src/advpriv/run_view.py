"""How `advpriv protect` shows a run while it works: one bar over the files, the current file's stage in words
(finding faces, optimising step k of n with λ and the quality loss, judging the copies, writing), and the time
left. It listens to `advpriv.progress`, where the work reports its stages.

Example:
    >>> stage_text({"stage": "protecting", "step": 12, "total": 50, "lam": 256.0, "quality": 0.4213})
    'optimising 12/50 λ 256 quality loss 0.421'
    >>> share({"stage": "protecting", "step": 50, "total": 50}), share({"stage": "checking"})
    (0.9, 0.9)
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column

STAGES = {"preparing": "finding faces", "protecting": "optimising", "checking": "judging the copies",
          "writing": "writing"}
"""`advpriv.progress`'s stage names as a person reads them."""
SHARES = {"preparing": 0.0, "protecting": 0.05, "checking": 0.9, "writing": 0.98}
"""Roughly where in a file's time each stage starts (optimising takes the most), for the time left."""


def stage_text(report: dict) -> str:
    """A progress report in words."""
    text = STAGES.get(report["stage"], report["stage"])
    if report.get("total"):
        text += f" {report['step']}/{report['total']}"
    if "lam" in report:
        text += f" λ {report['lam']:.3g} quality loss {report['quality']:.3g}"
    return text


def share(report: dict) -> float:
    """The part of a file's work done at this report (0 to 1)."""
    start = SHARES.get(report["stage"], 0.0)
    if not report.get("total"):
        return start
    end = min((s for s in SHARES.values() if s > start), default=1.0)
    return start + (end - start) * report["step"] / report["total"]


class RunView:
    """The bar of a run over `files`: call `start(k)` as the k-th file begins; it is the `advpriv.progress` listener."""

    def __init__(self, files: list[Path], console: Console) -> None:
        self.files, self.current = files, 0
        description, clock = Column(no_wrap=True, overflow="ellipsis", ratio=1), Column(no_wrap=True, min_width=7)
        self.progress = Progress(TextColumn("{task.description}", table_column=description), BarColumn(bar_width=8),
                                 MofNCompleteColumn(), TimeElapsedColumn(table_column=clock), TextColumn("left"),
                                 TimeRemainingColumn(table_column=clock), console=console)
        self.task = self.progress.add_task(self._name(), total=len(files))

    def start(self, k: int) -> None:
        self.current = k
        self.progress.update(self.task, completed=k, description=self._name())

    def __call__(self, report: dict) -> None:
        self.progress.update(self.task, completed=self.current + share(report),
                             description=f"{self._name()}: {escape(stage_text(report))}")

    def _name(self) -> str:
        return escape(self.files[self.current].name) if self.current < len(self.files) else ""
