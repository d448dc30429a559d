"""A bounded work queue: protections run on a few worker threads; when every slot is taken, refuse at once.

Refusing (503 with Retry-After) instead of piling requests up keeps the server's memory and latency bounded.
A request's timeout counts from the moment a worker starts on it, not while it waits in the queue (which is bounded
by the queue's size times the timeout). A request that runs past its timeout is answered at once; its work is told
the deadline (the service runs it in a process that is killed then, see `advpriv.serve.isolate`).

Example:
    >>> import asyncio
    >>> queue = WorkQueue(workers=1, queue_size=1)
    >>> asyncio.run(queue.run(lambda deadline: 6 * 7, timeout=5))
    42
"""

from __future__ import annotations

import asyncio
import math
import statistics
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")


class Busy(Exception):
    """Every worker and queue slot is taken; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy; retry after {retry_after} s")
        self.retry_after = retry_after


class WorkQueue:
    """At most `workers` jobs run at once and `queue_size` more wait; `run` raises `Busy` beyond that."""

    def __init__(self, workers: int = 1, queue_size: int = 4) -> None:
        self.workers, self.capacity = workers, workers + queue_size
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="advpriv-work")
        self.lock = threading.Lock()
        self.in_flight = self.running = 0
        self.durations: deque[float] = deque(maxlen=20)
        self.started: dict[int, float] = {}  # running jobs' start times, by thread
        self.timeout = math.inf

    async def run(self, job: Callable[[float], T], timeout: float) -> T:
        """Run `job(deadline)` on a worker (deadline on `time.monotonic`'s clock); TimeoutError when it has run
        `timeout` s (time spent waiting for a worker does not count)."""
        with self.lock:
            if self.in_flight >= self.capacity:
                raise Busy(self.retry_after())
            self.in_flight += 1
            self.timeout = timeout
        loop = asyncio.get_running_loop()
        began = loop.create_future()

        def start() -> None:
            loop.call_soon_threadsafe(lambda: began.done() or began.set_result(None))

        future: Future = self.executor.submit(self._timed, job, timeout, start)
        future.add_done_callback(self._release)
        result = asyncio.wrap_future(future)
        try:
            await asyncio.wait({began, result}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the client left while waiting: the job never starts
            result.cancel()
            raise
        return await asyncio.wait_for(result, timeout)

    def _timed(self, job: Callable[[float], T], timeout: float, on_start: Callable[[], None]) -> T:
        start = time.monotonic()
        deadline = start + timeout
        on_start()
        with self.lock:
            self.running += 1
            self.started[threading.get_ident()] = start
        try:
            return job(deadline)
        finally:
            with self.lock:
                self.running -= 1
                del self.started[threading.get_ident()]
                self.durations.append(time.monotonic() - start)

    def _release(self, _: Future) -> None:
        with self.lock:
            self.in_flight -= 1

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the jobs ahead per worker times the typical job time, which is the
        mean of the recent jobs, and at least as long as the longest running job has taken so far (a few quick
        refusals must not hide slow protections); never more than the timeout allows. Call with the lock held.

        >>> queue = WorkQueue(workers=1, queue_size=1)
        >>> queue.in_flight, queue.durations = 2, deque([0.01, 0.01, 12.0])
        >>> queue.retry_after()
        9
        """
        now = time.monotonic()
        mean = sum(self.durations) / len(self.durations) if self.durations else 10.0
        typical = max([mean, *(now - start for start in self.started.values())])
        return max(1, math.ceil(min(typical, self.timeout) * self.in_flight / self.workers))

    def recent(self) -> dict:
        """How long the last jobs took on this server: their number and median seconds (None before the first).

        >>> queue = WorkQueue()
        >>> queue.durations.extend([3.0, 40.0, 104.0])
        >>> queue.recent()
        {'jobs': 3, 'median_s': 40.0}
        """
        with self.lock:
            return {"jobs": len(self.durations), "median_s": statistics.median(self.durations) if self.durations else None}

    def status(self) -> dict[str, int]:
        with self.lock:
            return {"running": self.running, "waiting": self.in_flight - self.running, "capacity": self.capacity}

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
