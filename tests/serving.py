"""Start a real `advpriv serve` on a free loopback port for a test, and stop it afterwards.

Example:
    >>> with running_server("--queue", "2") as url:        # doctest: +SKIP
    ...     httpx.get(f"{url}/healthz").json()["status"]
    'ok'
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx

TESTS = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(*args: str, env: dict[str, str] | None = None, ready_s: float = 120) -> Iterator[str]:
    """Yield the base URL of `advpriv serve ARGS` once it answers and its workers have started (tests/ importable
    for module:factory targets)."""
    port = free_port()
    starting = lambda health: health.get("workers", {}).get("starting")  # noqa: E731
    with running_advpriv(["serve", "--host", "127.0.0.1", "--port", str(port), *args], port, env, ready_s,
                         ready=lambda health: not starting(health)) as url:
        yield url


@contextlib.contextmanager
def running_advpriv(args: list[str], port: int, env: dict[str, str] | None = None, ready_s: float = 120,
                    ready: Callable[[dict], bool] = lambda health: True) -> Iterator[str]:
    """Yield the base URL of `python -m advpriv ARGS`, serving on `port`, once its /healthz answers 200 with a body
    for which `ready` holds; stop it afterwards (its output is in the error when it exits or never answers)."""
    inherited = {k: v for k, v in os.environ.items() if k != "ADVPRIV_TOKEN"}  # a developer's token must not leak in
    environ = {**inherited, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
               "OMP_NUM_THREADS": "1", **(env or {})}
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "advpriv", *args], env=environ, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"advpriv {args[0]} exited with {proc.returncode}:\n{log.read().decode()}")
            with contextlib.suppress(httpx.HTTPError):
                health = httpx.get(f"{url}/healthz", timeout=2)
                if health.status_code == 200 and ready(health.json()):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"advpriv {args[0]} did not answer /healthz within {ready_s} s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
