"""Calls for `advpriv.serve.isolate`'s tests, in a module a spawned worker process can import cheaply.

Each takes the deadline last, as the worker passes it.
"""

from __future__ import annotations

import os
import time


def answer(value: int, deadline: float) -> int:
    return value


def overrun(deadline: float) -> None:
    """Work well past the deadline, as a detector on a huge photo would."""
    time.sleep(max(0.0, deadline - time.monotonic()) + 60)


def crash(deadline: float) -> None:
    """End the process at once, as the kernel's out-of-memory killer would."""
    os._exit(9)
