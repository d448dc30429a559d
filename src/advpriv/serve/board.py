"""The latest progress of each protection in flight, by an id its client chose, for `GET /v1/progress/{job}`.

A client sends a fresh random id with its request (header `X-Advpriv-Job`) and polls for it while it waits; the
worker's reports (`advpriv.progress`) land here. An id lives only while its request does.

Example:
    >>> board = ProgressBoard()
    >>> board.open("0" * 32)
    >>> board.listener("0" * 32)({"stage": "protecting", "step": 3, "total": 60, "eta_s": 12.0})
    >>> board.read("0" * 32)["step"], board.read("f" * 32)
    (3, None)
"""

from __future__ import annotations

import re
import threading
import time

from advpriv.progress import Listener

from .errors import ServiceError

JOB_HEADER = "X-Advpriv-Job"
JOB_ID = re.compile(r"[0-9a-f]{32}")


class ProgressBoard:
    """Per job id: the stage, step, total and time left last reported, and the seconds since the request came."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, tuple[float, dict]] = {}

    def open(self, job: str) -> None:
        """Start showing `job`, waiting for a worker; 422 for a malformed id, 409 for one already in flight."""
        if not JOB_ID.fullmatch(job):
            raise ServiceError(422, "bad_job_id", f"the {JOB_HEADER} header must be 32 lowercase hex digits (a fresh "
                                                  "random id per request); leave it out to protect without progress.")
        with self.lock:
            if job in self.jobs:
                raise ServiceError(409, "job_in_use", f"a request with this {JOB_HEADER} is still running; send a "
                                                      "fresh random id with each request.")
            self.jobs[job] = (time.monotonic(), {"stage": "waiting", "step": None, "total": None, "eta_s": None})

    def listener(self, job: str) -> Listener:
        """Where the worker's reports for `job` go."""
        def report(progress: dict) -> None:
            with self.lock:
                if job in self.jobs:
                    self.jobs[job] = (self.jobs[job][0], progress)
        return report

    def read(self, job: str) -> dict | None:
        """The last report of `job` with `elapsed_s`, or None when no such request is in flight."""
        with self.lock:
            if job not in self.jobs:
                return None
            began, progress = self.jobs[job]
        return {**progress, "elapsed_s": time.monotonic() - began}

    def close(self, job: str) -> None:
        with self.lock:
            self.jobs.pop(job, None)
