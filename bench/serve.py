"""Benchmark: `advpriv serve` protecting real face photos over HTTP: latency, throughput, and the service's overhead.

For the first N identities of ../shared/data/celeba-id (one photo each):
1. in-process: `protect_encoded` with the face protector (MND, medium strength, dlib judge), as the server runs it;
2. over HTTP, one request at a time (workers 1): latency per photo, and overhead = HTTP − in-process;
3. over HTTP, 8 clients at once against workers 1 and workers 2 (queue 16): throughput and latency.

    .venv/bin/python bench/serve.py --n 16

Writes bench/results/serve.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
import torch

from advpriv.faces.specs import load_judge
from advpriv.images import load_image
from advpriv.protect.files import FACE_TARGET, make_protector, protect_encoded
from advpriv.protect.strength import strength_options

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "celeba-id"
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests"))
from serving import running_server  # noqa: E402


def photos(n: int) -> list[Path]:
    return [sorted(d.glob("*.jpg"))[0] for d in sorted(DATA.iterdir())[:n]]


def in_process(paths: list[Path]) -> list[dict]:
    protector = make_protector(FACE_TARGET, "mnd", judges=[load_judge("dlib")], **strength_options("medium", FACE_TARGET))
    protect_encoded(load_image(paths[0]), protector, "png", paths[0].name)  # warm-up, as for the server
    rows = []
    for p in paths:
        start = time.perf_counter()
        _, report = protect_encoded(load_image(p), protector, "png", p.name)
        rows.append({"photo": p.name, "seconds": time.perf_counter() - start, "success": report.success})
    return rows


def request(url: str, path: Path) -> dict:
    start = time.perf_counter()
    reply = httpx.post(f"{url}/v1/protect", files={"image": (path.name, path.read_bytes())},
                       data={"response": "json"}, timeout=600)
    seconds = time.perf_counter() - start
    body = reply.json()
    return {"photo": path.name, "status": reply.status_code, "seconds": seconds,
            "success": body.get("success"), "server_seconds": body.get("seconds")}


def over_http(paths: list[Path], workers: int, clients: int) -> dict:
    with running_server("--workers", str(workers), "--queue", "16", "--timeout", "600") as url:
        request(url, paths[0])  # warm-up: loads the models
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            rows = list(pool.map(lambda p: request(url, p), paths))
        wall = time.perf_counter() - start
    ok = [r for r in rows if r["status"] == 200]
    return {"workers": workers, "clients": clients, "rows": rows, "wall_s": wall,
            "photos_per_min": 60 * len(ok) / wall, "answered_200": len(ok)}


def median(rows: list[dict], key: str = "seconds") -> float:
    return statistics.median(r[key] for r in rows)


def p90(rows: list[dict]) -> float:
    values = sorted(r["seconds"] for r in rows)
    return values[min(len(values) - 1, int(0.9 * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="photos (one per identity)")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve.md")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: this benchmark needs ../shared/data/celeba-id beside the repository.")
    paths = photos(args.n)
    torch.set_num_threads(1)  # as the server runs here (OMP_NUM_THREADS=1), so the comparison is like for like
    local = in_process(paths)
    sequential = over_http(paths, workers=1, clients=1)
    runs = [over_http(paths, workers=w, clients=8) for w in (1, 2)]
    result = {"n": len(paths), "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "in_process": local, "sequential": sequential,
              "concurrent": runs}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    overhead = [h["seconds"] - l["seconds"] for h, l in zip(sequential["rows"], local)]
    lines = [
        "# advpriv serve: protecting face photos over HTTP", "",
        f"Command: `.venv/bin/python bench/serve.py --n {args.n}`", "",
        f"Measured {result['measured']} on this 2-core CPU shared with other jobs, one torch thread per process "
        "(the server's workers share one process, so workers 2 may use both cores); "
        f"{len(paths)} celeba-id photos (178×218, one per identity), faces target, MND, medium strength, "
        "dlib judge, PNG, `response=json`. Each server run is warmed up with one request first.", "",
        "| setting | answered 200 | protected | median s/photo | p90 s | photos/min |",
        "|---|---|---|---|---|---|",
        f"| in-process `protect_encoded` | {len(local)} | {sum(r['success'] for r in local)} | "
        f"{median(local):.2f} | {p90(local):.2f} | {60 * len(local) / sum(r['seconds'] for r in local):.1f} |",
    ]
    for run in [sequential, *runs]:
        ok = [r for r in run["rows"] if r["status"] == 200]
        lines.append(f"| HTTP, workers {run['workers']}, {run['clients']} client(s) at once | {len(ok)} | "
                     f"{sum(bool(r['success']) for r in ok)} | {median(ok):.2f} | {p90(ok):.2f} | "
                     f"{run['photos_per_min']:.1f} |")
    lines += ["", f"Service overhead per photo (sequential HTTP minus in-process, same photos): median "
                  f"{statistics.median(overhead):.2f} s. With several clients, latency includes time waiting in "
                  "the queue."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
