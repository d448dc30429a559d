"""What the issue-21 checks on inputs and servers cost on the normal path (items 11, 12, 13), in a few seconds.

- AVIF: reading the AV1 sequence header (`advpriv.avif_header.frame_sizes`, plus reading the file again) against
  the whole `load_image` of the same photo.
- Run folders: counting a run's parameters on the meta device (`load_run`) for the paper's and the private config.
- Work queue: per-job overhead of `WorkQueue.run` now (a job's timeout counted from its start) and at the commit
  before (`git show c1216ac:src/advpriv/serve/work.py`), on trivial jobs.

    OMP_NUM_THREADS=1 .venv/bin/python bench/hostile_overhead.py
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from advpriv.avif_header import frame_sizes
from advpriv.images import load_image
from advpriv.obfuscate.checkpoint import build_parties
from advpriv.obfuscate.config import TrainConfig
from advpriv.serve.work import WorkQueue

BEFORE = "c1216ac"


def best(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def avif_cost() -> str:
    rng = np.random.default_rng(0)
    pixels = (rng.normal(128, 30, (1536, 2048, 3)).clip(0, 255)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "AVIF", speed=10, quality=60)
    path = Path(tempfile.mkdtemp()) / "photo.avif"
    path.write_bytes(buf.getvalue())
    header = best(lambda: frame_sizes(path.read_bytes()), 20)
    whole = best(lambda: load_image(path))
    return (f"AVIF 2048×1536 ({path.stat().st_size / 1e6:.2f} MB): header check {header * 1e3:.3f} ms, "
            f"load_image {whole * 1e3:.1f} ms ({header / whole:.2%})")


def run_folder_cost() -> str:
    parts = []
    for name, cfg in (("paper, 218×178", TrainConfig(image_size=(218, 178))),
                      ("private", TrainConfig.preset("private"))):
        def count() -> int:
            with torch.device("meta"):
                return sum(p.numel() for m in build_parties(cfg).values() for p in m.parameters())
        parts.append(f"{name}: {count() / 1e6:.1f} M parameters counted in {best(count) * 1e3:.1f} ms")
    return "load_run's parameter count: " + "; ".join(parts)


def queue_overhead(queue_class) -> float:
    async def many() -> None:
        queue = queue_class(workers=1, queue_size=4)
        for _ in range(500):
            await queue.run(lambda deadline: None, timeout=10)
        queue.shutdown()
    return best(lambda: asyncio.run(many()), 3) / 500


def old_queue_class():
    source = subprocess.run(["git", "show", f"{BEFORE}:src/advpriv/serve/work.py"], capture_output=True, text=True,
                            check=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_work.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_work", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_work"] = module
    spec.loader.exec_module(module)
    return module.WorkQueue


def main() -> None:
    torch.set_num_threads(1)
    print(avif_cost())
    print(run_folder_cost())
    old, new = queue_overhead(old_queue_class()), queue_overhead(WorkQueue)
    print(f"WorkQueue.run per trivial job: {BEFORE} {old * 1e6:.0f} µs, now {new * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
