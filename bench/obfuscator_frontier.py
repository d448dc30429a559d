"""Benchmark: the privacy–utility–device-cost frontier of the obfuscator against fresh attackers, on this CPU.

Each named configuration below is the "reduced" preset plus a split point (VGG block, bottleneck, pooling, noise)
and an objective. For each one it trains (resuming from out/frontier/NAME), freezes the encoder, trains a fresh
decoder, a fresh gender classifier and a linear probe until their validation loss stops improving, measures the
encoder's single-thread latency and feature bytes, and appends the point to RESULTS/points.json. Then it draws
RESULTS/frontier.png with `advpriv.obfuscate.frontier`. The baselines use the paper's split (block 2, no
bottleneck): Gaussian noise of std σ × the features' RMS on the utility-only encoder, and NoPeek at weight α.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/obfuscator_frontier.py d8 d8-noise0.5   # some points
    OMP_NUM_THREADS=1 .venv/bin/python bench/obfuscator_frontier.py --plot-only                # redraw
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from advpriv.images import atomic_write
from advpriv.obfuscate import AttackConfig, NoisyEncoder, TrainConfig, load_attributes, load_run, train, train_nopeek
from advpriv.obfuscate.baselines import feature_rms
from advpriv.obfuscate.data import split_indices
from advpriv.obfuscate.evaluate import evaluate_encoder
from advpriv.obfuscate.export import device_report
from advpriv.obfuscate.frontier import plot_frontier

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "celeba-attr"
BOTTLENECK = dict(split=4, pool=(1, 1))
NO_ADVERSARY = dict(attacker_epochs=0, epochs=0)
CONFIGS: dict[str, tuple[str, dict] | tuple[str, dict, str, float]] = {
    "split2": ("utility only", dict(NO_ADVERSARY)),
    "split4": ("utility only", dict(NO_ADVERSARY, split=4)),
    "d8": ("bottleneck + noise", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8)),
    "d8-noise0.5": ("bottleneck + noise", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8, noise=0.5)),
    "d8-noise1": ("bottleneck + noise", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8, noise=1.0)),
    "d2": ("bottleneck + noise", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=2)),
    "d4-noise0.5": ("bottleneck + noise", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=4, noise=0.5)),
    "d8-vib0.01": ("VIB (learned noise)", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8, noise=0.5, vib=0.01)),
    "d8-noise0.5-entropy": ("adversarial on noisy features",
                            dict(**BOTTLENECK, bottleneck=8, noise=0.5, attacker_epochs=1, epochs=2, lam_hold=2,
                                 private_loss="entropy")),
    "noise1": ("noise baseline", dict(NO_ADVERSARY), "noise", 1.0),
    "noise2": ("noise baseline", dict(NO_ADVERSARY), "noise", 2.0),
    "nopeek0.5": ("NoPeek", dict(NO_ADVERSARY), "nopeek", 0.5),
    "nopeek2": ("NoPeek", dict(NO_ADVERSARY), "nopeek", 2.0),
}
"""name → (series in the plot, overrides of the "reduced" preset[, baseline "noise" or "nopeek", σ or α])."""


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help=f"configurations to run (default: all): {', '.join(CONFIGS)}")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--work", type=Path, default=ROOT / "out" / "frontier")
    p.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "obfuscator-frontier")
    p.add_argument("--attack-epochs", type=int, default=30, help="most epochs of each fresh attacker")
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--attack-batch", type=int, default=64)
    p.add_argument("--plot-only", action="store_true")
    return p.parse_args()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def measure(name: str, data, attack: AttackConfig, work: Path) -> dict:
    """Train (or resume) configuration `name`, attack its frozen encoder afresh, and measure its device cost."""
    series, overrides, *baseline = CONFIGS[name]
    cfg = TrainConfig.preset("reduced", **overrides)
    folder = work / (name if not baseline else "split2")
    t = time.time()
    train(data, cfg, folder)
    splits = split_indices(data, cfg.seed)
    run = load_run(folder)
    parts = run.parties("obfuscator")
    if baseline and baseline[0] == "noise":
        std = baseline[1] * feature_rms(parts["E"], data, splits["val"])
        parts["E"] = NoisyEncoder(parts["E"], std)
    elif baseline:
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        cfg.save(folder / "config.json")
        train_nopeek(data, cfg, folder, alpha=baseline[1])
        parts = load_run(folder).parties("nopeek")
    train_s = time.time() - t
    t = time.time()
    report, _ = evaluate_encoder(name, parts["E"], parts["C"], data, splits, data.labels_of(cfg.utility),
                                 data.labels_of(cfg.private), cfg.widths, attack, cfg.split_point)
    device = device_report(parts["E"], cfg.image_size, repeats=50)  # noise costs nothing measurable
    return {"name": name, "series": series, "config": asdict(run.config), "report": report.as_dict(),
            "encoder_ms": device.latency_ms_torch, "feature_bytes_fp16": device.feature_bytes_fp16,
            "image_bytes_uint8": device.image_bytes_uint8, "macs": device.macs,
            "train_s": train_s, "evaluate_s": time.time() - t}


def main() -> None:
    a = parse()
    unknown = [n for n in a.names if n not in CONFIGS]
    if unknown:
        sys.exit(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}.")
    torch.set_num_threads(1)
    points_path = a.results / "points.json"
    saved = json.loads(points_path.read_text()) if points_path.is_file() else {"points": []}
    if not a.plot_only:
        if not a.data.is_dir():
            sys.exit(f"{a.data} is missing: this benchmark needs ../shared/data/celeba-attr.")
        attack = AttackConfig(epochs=a.attack_epochs, patience=a.patience, batch_size=a.attack_batch)
        data = load_attributes(a.data, (64, 52))
        command = "OMP_NUM_THREADS=1 python bench/obfuscator_frontier.py " + " ".join(map(shlex.quote, sys.argv[1:]))
        for name in a.names or CONFIGS:
            log(f"{name}: training and fresh attackers")
            point = {**measure(name, data, attack, a.work), "attack": asdict(attack), "command": command}
            log(json.dumps(point["report"]))
            saved["points"] = [p for p in saved["points"] if p["name"] != name] + [point]
            a.results.mkdir(parents=True, exist_ok=True)
            atomic_write(points_path, json.dumps(saved, indent=2).encode())
    plot_frontier(saved["points"], a.results / "frontier.png")
    log(f"wrote {a.results / 'frontier.png'}")


if __name__ == "__main__":
    main()
