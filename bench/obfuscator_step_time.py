"""Benchmark: seconds per DeepObfuscator minibatch, per training step, at a given size (default: the paper's).

Times one minibatch of each stage's update (utility pretraining, then the five adversarial rotation steps) on
random images, after one warm-up minibatch. It tells whether a configuration's full training fits a machine:
seconds per epoch ≈ (training images / batch) × the mean step time.

    OMP_NUM_THREADS=1 .venv/bin/python bench/obfuscator_step_time.py                 # width 1, FC 4096, 109×89
    OMP_NUM_THREADS=1 .venv/bin/python bench/obfuscator_step_time.py --width 0.125 --fc 256 --size 64x52
"""

from __future__ import annotations

import argparse
import time

import torch

from advpriv.obfuscate.config import TrainConfig
from advpriv.obfuscate.train import Parties

STEPS = [("utility", 0)] + [("adversarial", i) for i in range(5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--fc", type=int, default=4096)
    parser.add_argument("--size", default="109x89", help="HxW")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size = tuple(int(v) for v in args.size.split("x"))
    parties = Parties(TrainConfig(width=args.width, fc=args.fc, image_size=size, batch_size=args.batch))
    x = torch.rand(args.batch, 3, *size)
    y_u, y_p = torch.randint(0, 2, (args.batch,)).float(), torch.randint(0, 2, (args.batch,)).float()
    parties.utility(x, y_u, y_p, 0, 10.0)
    print(f"width {args.width}, FC {args.fc}, {size[0]}x{size[1]}, batch {args.batch}, {args.threads} thread(s)")
    times = []
    for stage, i in STEPS:
        start = time.perf_counter()
        getattr(parties, stage)(x, y_u, y_p, i, 10.0)
        times.append(time.perf_counter() - start)
        print(f"{stage:>11} step {i}: {times[-1]:.2f} s")
    print(f"mean {sum(times) / len(times):.2f} s per minibatch")


if __name__ == "__main__":
    main()
