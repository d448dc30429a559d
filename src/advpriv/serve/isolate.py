"""Run calls in child processes that are killed at their deadline.

A request that overruns frees its worker the moment it is answered 504, and one that exhausts memory takes down
only its child, never the server. Each child runs one call at a time and keeps what it loaded (the models) between
calls; a killed child is replaced by a fresh one, started at once. A call that finds its child still starting
(imports, models) waits for it, and gets TimeoutError, the child left running, when the deadline comes first;
`starting()` tells callers to refuse work until then.

Example:
    >>> import time
    >>> pool = ProcessPool(1)                                      # doctest: +SKIP
    >>> pool.call(divmod, (7, 2), deadline=time.monotonic() + 60)  # doctest: +SKIP
    (3, 1)
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable

from advpriv import progress

CONTEXT = multiprocessing.get_context("spawn")  # a fork of a threaded server could inherit a held lock


class WorkerDied(RuntimeError):
    """The child process ended in the middle of a call (killed by the system, most often for memory)."""


def _child(conn: Connection, warm: Callable[[], None] | None, started: Any) -> None:
    """The child's loop: warm up and set `started`, then receive (function, args, seconds left), call
    function(*args, deadline) and send its progress reports (`advpriv.progress`) and then its outcome, one call
    after the other."""
    if warm is not None:
        try:
            warm()
        except Exception:  # logged now; the first call meets the same problem and reports it
            traceback.print_exc(file=sys.stderr)
    started.set()
    while True:
        try:
            fn, args, seconds = conn.recv()
        except EOFError:
            return
        try:
            with progress.listening(lambda report: conn.send(("progress", report))):
                outcome = ("ok", fn(*args, time.monotonic() + seconds))
        except Exception as e:  # sent back to the parent, which raises it there
            if not getattr(e, "expected", False):
                traceback.print_exc(file=sys.stderr)
            outcome = ("error", e)
        try:
            conn.send(outcome)
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            conn.send(("error", RuntimeError(f"{type(e).__name__}: {e}")))


class ChildProcess:
    """One spawned process that runs calls one at a time; `call` kills it when the deadline passes."""

    def __init__(self, warm: Callable[[], None] | None = None) -> None:
        self.warm, self.process, self.conn, self.started = warm, None, None, CONTEXT.Event()

    def start(self) -> None:
        self.conn, child_end = CONTEXT.Pipe()
        self.started = CONTEXT.Event()
        self.process = CONTEXT.Process(target=_child, args=(child_end, self.warm, self.started), daemon=True,
                                       name="advpriv-worker")
        self.process.start()
        child_end.close()

    def is_starting(self) -> bool:
        return self.process is None or not self.started.is_set()

    def call(self, fn: Callable[..., Any], args: tuple, deadline: float,
             on_progress: progress.Listener | None = None) -> Any:
        """fn(*args, deadline) in the child; TimeoutError (child killed) at `deadline` on `time.monotonic`.
        `on_progress` receives the call's progress reports as they come."""
        if self.process is None or not self.process.is_alive():
            self.stop()
            self.start()
        if not self.started.wait(max(0.0, deadline - time.monotonic())):
            raise TimeoutError("the worker process was still starting when the deadline came")
        try:
            self.conn.send((fn, args, deadline - time.monotonic()))
            status = "progress"
            while status == "progress":
                if not self.conn.poll(max(0.0, deadline - time.monotonic())):
                    self.stop()
                    self.start()
                    raise TimeoutError("the work ran past its deadline; its process was stopped")
                status, value = self.conn.recv()
                if status == "progress" and on_progress is not None:
                    on_progress(value)
        except (EOFError, ConnectionError):
            self.process.join(5)
            code = self.process.exitcode
            self.stop()
            self.start()
            raise WorkerDied(f"the worker process ended (exit code {code}) while working on this request") from None
        if status == "error":
            raise value
        return value

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join(5)
            self.process.close()
        if self.conn is not None:
            self.conn.close()
        self.process = self.conn = None


class ProcessPool:
    """`size` child processes; `call` borrows a free one (callers never outnumber `size`: the work queue's threads)."""

    def __init__(self, size: int, warm: Callable[[], None] | None = None) -> None:
        self.children = [ChildProcess(warm) for _ in range(size)]
        self.free: queue.SimpleQueue[ChildProcess] = queue.SimpleQueue()
        for child in self.children:
            self.free.put(child)

    def start(self) -> None:
        """Start every child now, so the first requests need not wait for one to import the models."""
        for child in self.children:
            child.start()

    def starting(self) -> int:
        """Children not yet ready for work (starting up, or replacing one that was killed)."""
        return sum(child.is_starting() for child in self.children)

    def call(self, fn: Callable[..., Any], args: tuple, deadline: float,
             on_progress: progress.Listener | None = None) -> Any:
        child = self.free.get()
        try:
            return child.call(fn, args, deadline, on_progress)
        finally:
            self.free.put(child)

    def stop(self) -> None:
        for child in self.children:
            child.stop()
