"""What long work is doing now, for whoever waits on it: a stage, the step out of the total, and the time left.

Work reports with `stage` and `step`; a caller that wants to show it wraps the work in `listening`. With nobody
listening, a report costs one context-variable lookup. The service's worker processes send each report to the
server, whose page shows it while the photo is protected.

Example:
    >>> seen = []
    >>> with listening(seen.append):
    ...     stage("protecting")
    ...     step(60, 60)
    >>> [(p["stage"], p["step"], p["total"], p["eta_s"]) for p in seen]
    [('protecting', None, None, None), ('protecting', 60, 60, 0.0)]
"""

from __future__ import annotations

import contextlib
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator

Listener = Callable[[dict], None]


@dataclass
class _Current:
    listener: Listener
    stage: str = ""
    began: float = 0.0


_current: ContextVar[_Current | None] = ContextVar("advpriv_progress", default=None)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call `listener({"stage", "step", "total", "eta_s"})` on every report made inside the block."""
    token = _current.set(_Current(listener))
    try:
        yield
    finally:
        _current.reset(token)


def stage(name: str) -> None:
    """The work enters stage `name` (e.g. "protecting", "checking"); its steps are counted from now."""
    current = _current.get()
    if current is not None:
        current.stage, current.began = name, time.monotonic()
        current.listener({"stage": name, "step": None, "total": None, "eta_s": None})


def step(done: int, total: int, details: Callable[[], dict[str, float]] | None = None) -> None:
    """`done` of `total` steps of the current stage are finished; the time left is the stage's time per step so far
    times the steps to go (work that stops early takes less). `details()`, called only when someone listens, adds
    the state of the work to the report (MND: its λ and quality loss)."""
    current = _current.get()
    if current is None:
        return
    eta = (time.monotonic() - current.began) / done * (total - done) if done > 0 else None
    extra = details() if details is not None else {}
    current.listener({"stage": current.stage, "step": done, "total": total, "eta_s": eta, **extra})
