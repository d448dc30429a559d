"""Benchmark: scaling out on this machine, 1 process against 2.

ddp: DeepObfuscator training (every stage, one epoch each) under `torchrun --nproc-per-node N`, N = 1 and 2, on
     the first --limit celeba-attr faces; times `train` (data loading and start-up apart): wall seconds of the
     slowest process, and CPU seconds of all processes together (what the split costs in work).
ray: `advpriv protect` (one process, one torch thread) against `advpriv batch` (Ray, 2 actors of one thread) on the
     first --count imagenet-val images with EfficientNet-Lite0; wall time of each command, and whether the outputs
     are byte-identical.

    OMP_NUM_THREADS=1 .venv/bin/python bench/scale.py ddp --limit 2000 --repeat 3
    OMP_NUM_THREADS=1 .venv/bin/python bench/scale.py ray --count 16 --repeat 2

Prints one JSON line per measurement; bench/results/scale.md holds the results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def ddp(limit: int, procs: list[int], repeat: int, batch_size: int) -> None:
    """Each process count's training seconds (the counts interleaved, `repeat` rounds), with the load average
    before each run (other work on the machine), and the speed-up against the first count in the same round."""
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(repeat):
            results = {}
            for n in procs:
                load = os.getloadavg()[0]
                command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n),
                           __file__, "ddp-worker", "--limit", str(limit), "--batch-size", str(batch_size),
                           "--out", f"{tmp}/run{round_}-{n}"]
                subprocess.run(command, capture_output=True, env=ENV, check=True)
                ranks = [json.loads(path.read_text()) for path in sorted(Path(tmp).glob(f"run{round_}-{n}.rank*"))]
                results[n] = {"images": ranks[0]["images"], "batch_size": ranks[0]["batch_size"],
                              "train_s": max(r["train_s"] for r in ranks), "cpu_s": sum(r["cpu_s"] for r in ranks)}
                print(json.dumps({"round": round_, "processes": n, **results[n], "load_before": load,
                                  "speedup": results[procs[0]]["train_s"] / results[n]["train_s"]}), flush=True)


def ddp_worker(limit: int, batch_size: int, out: str) -> None:
    """Under torchrun: train the reduced preset, one epoch per stage; every process writes its seconds beside
    the run folder."""
    import torch

    from advpriv.obfuscate.config import TrainConfig
    from advpriv.obfuscate.data import load_attributes
    from advpriv.obfuscate.distributed import Distributed
    from advpriv.obfuscate.train import train

    torch.set_num_threads(1)
    cfg = TrainConfig.preset("reduced", pretrain_epochs=1, attacker_epochs=1, epochs=1, limit=limit,
                             batch_size=batch_size)
    data = load_attributes(DATA / "celeba-attr", cfg.image_size, limit)
    t, cpu = time.perf_counter(), time.process_time()
    train(data, cfg, out)
    seconds = {"images": len(data), "batch_size": cfg.batch_size, "train_s": time.perf_counter() - t,
               "cpu_s": time.process_time() - cpu}
    Path(f"{out}.rank{Distributed.from_env().rank}").write_text(json.dumps(seconds))


def ray_bench(count: int, strength: str, steps: int | None, repeat: int) -> None:
    """Wall seconds of `advpriv protect` and `advpriv batch` on the same images (interleaved, `repeat` rounds), the
    load average before each, the seconds spent protecting summed over the files (the rest is start-up: Python,
    models, Ray), and whether the outputs are byte-identical."""
    images = [str(p) for p in sorted((DATA / "imagenet-val" / "images").iterdir())[:count]]
    options = ["--target", "efficientnet-lite0", "--strength", strength] + (["--steps", str(steps)] if steps else [])
    runs = {"protect (1 process, 1 thread)": ["protect"],
            "batch (Ray, 2 actors x 1 thread)": ["batch", "--actors", "2", "--threads", "1"]}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(repeat):
            seconds, outputs = {}, {}
            for i, (name, command) in enumerate(runs.items()):
                outputs[name] = Path(tmp, f"{round_}-{i}")
                load, t = os.getloadavg()[0], time.perf_counter()
                done = subprocess.run([str(BIN / "advpriv"), command[0], *images, "-o", str(outputs[name]),
                                       *command[1:], *options], capture_output=True, text=True, env=ENV)
                seconds[name] = time.perf_counter() - t
                rows = json.loads((outputs[name] / "advpriv-metrics.json").read_text())
                print(json.dumps({"round": round_, "run": name, "images": count, "strength": strength,
                                  "steps": steps, "wall_s": seconds[name], "load_before": load,
                                  "protecting_s": sum(r["seconds"] for r in rows),
                                  "protected": sum(r["success"] for r in rows), "exit": done.returncode}), flush=True)
            one, two = ([p.read_bytes() for p in sorted(d.glob("*.protected.png"))] for d in outputs.values())
            first, second = seconds.values()
            print(json.dumps({"round": round_, "speedup": first / second,
                              "byte_identical": len(one) == count and one == two}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("ddp")
    p.add_argument("--limit", type=int, default=2000)
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32, help="global minibatch")
    p = sub.add_parser("ddp-worker")
    p.add_argument("--limit", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("ray")
    p.add_argument("--count", type=int, default=8)
    p.add_argument("--strength", default="medium")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--steps", type=int, default=None, help="MND steps (default: the strength's)")
    args = parser.parse_args()
    if args.what == "ddp":
        ddp(args.limit, args.procs, args.repeat, args.batch_size)
    elif args.what == "ddp-worker":
        ddp_worker(args.limit, args.batch_size, args.out)
    else:
        ray_bench(args.count, args.strength, args.steps, args.repeat)


if __name__ == "__main__":
    main()
