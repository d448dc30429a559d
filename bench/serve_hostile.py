"""Probe: does one hostile request still hold `advpriv serve`'s worker or memory? (issue 12, the service)

1. deadline: `--timeout 4`, one 3500×3500 photo with no face: when the 504 comes, and when /healthz shows the
   worker free again (the worker must not stay busy after the answer).
2. memory: one impersonation request with 8 (then 4) blank 3000×3000 PNGs as `as` photos (a ~0.3 MB body): the
   server's peak memory (VmHWM of the server and of every process it started) before and after it.
3. unfinished uploads: ten connections each announce a 19 MB body, send 18 MB of it and stall: the server's
   resident memory (VmRSS, all its processes) and /healthz 5 s later.

    OMP_NUM_THREADS=1 .venv/bin/python bench/serve_hostile.py --label after
    PYTHONPATH=/tmp/h2-before/src OMP_NUM_THREADS=1 .venv/bin/python bench/serve_hostile.py --label before

(the second line runs the code of an older commit, checked out with `git worktree add /tmp/h2-before COMMIT`).
Appends to bench/results/serve_hostile.json; bench/results/serve_hostile.md is written from all its records.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests"))
from serving import running_server  # noqa: E402


def blank_png(side: int, seed: int = 0) -> bytes:
    """A side×side PNG with no face: flat grey with faint noise in one corner (compresses to a few KB)."""
    pixels = np.full((side, side, 3), 128, np.uint8)
    pixels[:8, :8] = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def server_pid(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    return int(out.split("pid=")[1].split(",")[0])


def peak_mb(pid: int, field: str = "VmHWM") -> float:
    """Sum of the peak (or, with field="VmRSS", current) resident memory of `pid` and its descendants, in MB."""
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        status = Path(f"/proc/{p}/status").read_text()
        total += int(next(line for line in status.splitlines() if line.startswith(field)).split()[1]) / 1024
        for task in Path(f"/proc/{p}/task").iterdir():
            stack += [int(c) for c in (task / "children").read_text().split()]
    return round(total, 1)


def wait_idle(url: str, limit: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if httpx.get(f"{url}/healthz", timeout=5).json()["queue"]["running"] == 0:
            return time.monotonic() - start
        time.sleep(0.1)
    return float("inf")


def deadline_probe() -> dict:
    photo = blank_png(3500)
    with running_server("--timeout", "4") as url:
        for _ in range(30):  # until the worker has started and loaded the models: "no face" in a small photo
            warm = httpx.post(f"{url}/v1/protect", files={"image": ("warm.png", blank_png(64))}, timeout=120)
            if warm.status_code == 422:
                break
        assert warm.status_code == 422, warm.text
        start = time.monotonic()
        reply = httpx.post(f"{url}/v1/protect", files={"image": ("wall.png", photo)}, timeout=120)
        answered = time.monotonic() - start
        freed = answered + wait_idle(url, 120)
    return {"status": reply.status_code, "answered_s": round(answered, 2), "worker_free_s": round(freed, 2)}


def memory_probe(count: int) -> dict:
    as_photos = [("as", (f"blank{i}.png", blank_png(3000, i))) for i in range(count)]
    files = [("image", ("me.png", blank_png(64))), *as_photos]
    body_bytes = sum(len(f[1][1]) for f in files)
    with running_server("--timeout", "120") as url:
        pid = server_pid(url)
        idle = httpx.get(f"{url}/healthz").json()
        time.sleep(3)  # let a worker process finish starting
        before = peak_mb(pid)
        reply = httpx.post(f"{url}/v1/protect", files=files, data={"mode": "impersonate"}, timeout=120)
        wait_idle(url, 60)
        after = peak_mb(pid)
    return {"status": reply.status_code, "code": reply.json().get("error", {}).get("code"), "body_kb": round(body_bytes / 1e3),
            "peak_mb_before": before, "peak_mb_after": after, "health": idle["queue"]}


def upload_probe() -> dict:
    with running_server() as url:
        pid = server_pid(url)
        time.sleep(3)
        idle = peak_mb(pid, "VmRSS")
        host, port = url.removeprefix("http://").split(":")
        head = (f"POST /v1/protect HTTP/1.1\r\nHost: {host}\r\nContent-Length: 19000000\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n\r\n").encode()
        chunk, sockets, refused = b"\0" * 1_000_000, [], 0
        for _ in range(10):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sockets.append(sock)
            try:
                sock.sendall(head)
                for _ in range(18):
                    sock.sendall(chunk)
            except OSError:  # answered (503) and closed before the body was sent
                refused += 1
        time.sleep(5)
        held = peak_mb(pid, "VmRSS")
        health = httpx.get(f"{url}/healthz", timeout=10).json()
        for sock in sockets:
            sock.close()
    return {"rss_mb_idle": idle, "rss_mb_stalled": held, "refused": refused, "health": health}


def write_markdown(records: list[dict]) -> None:
    doc = __doc__.split("\n\n")
    lines = ["# `advpriv serve` under hostile requests (issue 12)", "", doc[1], "", "Commands:", "",
             doc[2].strip("\n"), "", doc[3].strip(), "",
             "Memory is summed over the server and its worker processes: from the commit that runs protections in a "
             "worker process, the idle figure includes that process with the face models loaded (about 350 MB).", "",
             "Timeout and identity photos:", "",
             "| run | when | 504 at (s) | worker free at (s) | `as` photos | status | body (KB) | peak MB before | peak MB after |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        d = r["deadline"]
        for count, m in r["memory"].items():
            lines.append(f"| {r['label']} | {r['when']} | {d['answered_s']} ({d['status']}) | {d['worker_free_s']} | "
                         f"{count} | {m['status']} {m['code'] or ''} | {m['body_kb']} | {m['peak_mb_before']} | "
                         f"{m['peak_mb_after']} |")
    lines += ["", "Ten stalled 19 MB uploads (18 MB sent each):", "",
              "| run | when | resident MB idle | resident MB with them | refused while sending | /healthz |",
              "|---|---|---|---|---|---|"]
    for r in records:
        if "uploads" in r:
            u = r["uploads"]
            lines.append(f"| {r['label']} | {r['when']} | {u['rss_mb_idle']} | {u['rss_mb_stalled']} | {u['refused']} | "
                         f"`{json.dumps(u['health'])}` |")
    (RESULTS / "serve_hostile.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="what code this run measures, e.g. before / after")
    args = parser.parse_args()
    record = {"label": args.label, "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "uploads": upload_probe(), "deadline": deadline_probe(),
              "memory": {count: memory_probe(count) for count in (8, 4)}}
    print(json.dumps(record))
    path = RESULTS / "serve_hostile.json"
    records = [*(json.loads(path.read_text()) if path.exists() else []), record]
    path.write_text(json.dumps(records, indent=1) + "\n")
    write_markdown(records)


if __name__ == "__main__":
    main()
