"""Benchmark: seconds per training epoch on this CPU under the usual speed-ups, for a preset's training steps.

Times minibatches of real training steps (`Parties`) on random images after warm-up, and scales them to one epoch
of the 8,000 training images. Variants: plain fp32 (the baseline), channels-last memory format, bf16 autocast,
torch.compile (compile time reported apart), and larger minibatches. The adversarial rotation is timed with and
without its frozen-encoder steps reading cached features (steps 3 and 4 run E without gradients).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/obfuscator_speed.py --preset private
    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/obfuscator_speed.py --preset reduced --stage adversarial
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import replace

import torch

from advpriv.obfuscate.config import TrainConfig
from advpriv.obfuscate.train import Parties

TRAIN_IMAGES = 8000


def seconds_per_epoch(cfg: TrainConfig, stage: str, steps: int, channels_last: bool = False, bf16: bool = False,
                      compile_: bool = False) -> tuple[float, float]:
    """(seconds per epoch, seconds of warm-up including compilation) of `stage`'s minibatch steps."""
    torch.manual_seed(0)
    parties = Parties(cfg)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for k, m in parties.nets.items():
        m.to(memory_format=fmt)
        if compile_:
            parties.nets[k] = torch.compile(m)
    if compile_:
        parties.updated = {k: torch.compile(m) for k, m in parties.updated.items()}
    x = torch.rand(cfg.batch_size, 3, *cfg.image_size).to(memory_format=fmt)
    y_u, y_p = (torch.randint(0, 2, (cfg.batch_size,)).float() for _ in range(2))
    step = getattr(parties, stage)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with autocast:
        t = time.perf_counter()
        for i in range(5):
            step(x, y_u, y_p, i, 10.0)
        warm = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(steps):
            step(x, y_u, y_p, i, 10.0)
    per_batch = (time.perf_counter() - t) / steps
    return per_batch * TRAIN_IMAGES / cfg.batch_size, warm


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="private")
    p.add_argument("--stage", default="utility", choices=("utility", "adversarial"))
    p.add_argument("--steps", type=int, default=20, help="timed minibatches per variant (a multiple of 5)")
    p.add_argument("--variants", nargs="*", default=["fp32", "channels_last", "bf16", "compile", "batch64",
                                                     "batch128"])
    a = p.parse_args()
    torch.set_num_threads(1)
    cfg = TrainConfig.preset(a.preset)
    print(f"preset {a.preset}, stage {a.stage}, {cfg.image_size[0]}x{cfg.image_size[1]}, width {cfg.width}, "
          f"{torch.get_num_threads()} thread, {a.steps} timed minibatches per variant")
    for v in a.variants:
        run_cfg = replace(cfg, batch_size=int(v[5:])) if v.startswith("batch") else cfg
        s, warm = seconds_per_epoch(run_cfg, a.stage, a.steps, channels_last=v == "channels_last", bf16=v == "bf16",
                                    compile_=v == "compile")
        print(f"{v:>14}: {s:6.1f} s per epoch (batch {run_cfg.batch_size}; warm-up {warm:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
