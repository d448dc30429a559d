"""Benchmark: the privacy–utility–device-cost frontier of the obfuscator against fresh attackers, on this CPU.

Each named configuration below is the "reduced" preset plus a split point (VGG block, bottleneck, pooling, noise)
and an objective. For each one it trains (resuming from out/frontier/NAME), freezes the encoder, trains a fresh
decoder, a fresh gender classifier and a linear probe until their validation loss stops improving, measures the
encoder's single-thread latency and feature bytes, and appends the point to RESULTS/points.json. Then it draws
RESULTS/frontier.png with `advpriv.obfuscate.frontier` (adding, marked as such, the encoders measured by
bench/obfuscator.py under its earlier protocol) and tabulates the points in RESULTS/points.md. The baselines use the paper's split (block 2, no
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
from advpriv.obfuscate.checkpoint import NOPEEK
from advpriv.obfuscate.config import PRESETS
from advpriv.obfuscate.evaluate import average_face_ms_ssim, evaluate_encoder, knn_accuracy
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
    p.add_argument("--attack-epochs", type=int, default=15, help="most epochs of each fresh attacker")
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--attack-batch", type=int, default=128)
    p.add_argument("--plot-only", action="store_true")
    p.add_argument("--knn-only", action="store_true", help="add the kNN attacker to saved points that lack it")
    return p.parse_args()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def prepare(name: str, data, work: Path) -> tuple[dict, TrainConfig]:
    """Train configuration `name` (or load it when trained); its frozen encoder "E", cloud "C", and config."""
    _, overrides, *baseline = CONFIGS[name]
    cfg = TrainConfig.preset("reduced", **overrides)
    folder = work / (name if not baseline else "split2")
    run = load_run(train(data, cfg, folder))
    parts = run.parties("obfuscator")
    if baseline and baseline[0] == "noise":
        std = baseline[1] * feature_rms(parts["E"], data, split_indices(data, cfg.seed)["val"])
        parts["E"] = NoisyEncoder(parts["E"], std)
    elif baseline:
        folder = work / name
        if not (folder / NOPEEK).is_file():
            folder.mkdir(parents=True, exist_ok=True)
            run.config.save(folder / "config.json")
            train_nopeek(data, run.config, folder, alpha=baseline[1])
        parts = load_run(folder).parties("nopeek")
    return parts, run.config


def measure(name: str, data, attack: AttackConfig, work: Path) -> dict:
    """Train (or resume) configuration `name`, attack its frozen encoder afresh, and measure its device cost."""
    t = time.time()
    parts, cfg = prepare(name, data, work)
    train_s = time.time() - t
    t = time.time()
    splits, private = split_indices(data, cfg.seed), data.labels_of(cfg.private)
    report, _ = evaluate_encoder(name, parts["E"], parts["C"], data, splits, data.labels_of(cfg.utility), private,
                                 cfg.widths, attack, cfg.split_point)
    knn = knn_accuracy(parts["E"], data, splits, private)
    device = device_report(parts["E"], cfg.image_size, repeats=50)  # noise costs nothing measurable
    return {"name": name, "series": CONFIGS[name][0], "config": asdict(cfg), "report": report.as_dict(),
            "knn_accuracy": knn, "encoder_ms": device.latency_ms_torch,
            "feature_bytes_fp16": device.feature_bytes_fp16, "image_bytes_uint8": device.image_bytes_uint8,
            "macs": device.macs, "train_s": train_s, "evaluate_s": time.time() - t}


EARLIER = {"obfuscator": "paper's method, reduced (earlier protocol)", "noise": "noise baseline (earlier protocol)",
           "nopeek": "NoPeek (earlier protocol)"}


def earlier_points(path: Path = ROOT / "bench" / "results" / "obfuscator.json") -> list[dict]:
    """The reduced paper-method, matched-noise and NoPeek encoders of bench/obfuscator.py, for the plot only: their
    attackers ran 3 fixed epochs (no early stopping, no linear probe), at the paper's split (blocks 1–2)."""
    if not path.is_file():
        return []
    earlier = json.loads(path.read_text())
    cost = earlier["device"]["trained"]
    return [{"name": r["name"], "series": EARLIER[r["name"]], "report": r, "encoder_ms": cost["latency_ms_torch"],
             "feature_bytes_fp16": cost["feature_bytes_fp16"]} for r in earlier["reports"] if r["name"] in EARLIER]


def main() -> None:
    a = parse()
    unknown = [n for n in a.names if n not in CONFIGS]
    if unknown:
        sys.exit(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}.")
    torch.set_num_threads(1)
    points_path = a.results / "points.json"
    saved = json.loads(points_path.read_text()) if points_path.is_file() else {"points": []}
    if a.knn_only:
        data = load_attributes(a.data, (64, 52))
        for p in saved["points"]:
            if "knn_accuracy" not in p:
                parts, cfg = prepare(p["name"], data, a.work)
                p["knn_accuracy"] = knn_accuracy(parts["E"], data, split_indices(data, cfg.seed),
                                                 data.labels_of(cfg.private))
                log(f"{p['name']}: kNN gender accuracy {p['knn_accuracy']:.3f}")
                atomic_write(points_path, json.dumps(saved, indent=2).encode())
    elif not a.plot_only:
        if not a.data.is_dir():
            sys.exit(f"{a.data} is missing: this benchmark needs ../shared/data/celeba-attr.")
        attack = AttackConfig(epochs=a.attack_epochs, patience=a.patience, batch_size=a.attack_batch)
        data = load_attributes(a.data, (64, 52))
        splits = split_indices(data, 0)
        saved["average_face_ms_ssim"] = average_face_ms_ssim(data, splits["train"], splits["test"])
        command = "OMP_NUM_THREADS=1 python bench/obfuscator_frontier.py " + " ".join(map(shlex.quote, sys.argv[1:]))
        for name in a.names or CONFIGS:
            log(f"{name}: training and fresh attackers")
            point = {**measure(name, data, attack, a.work), "attack": asdict(attack), "command": command}
            log(json.dumps(point["report"]))
            saved["points"] = [p for p in saved["points"] if p["name"] != name] + [point]
            a.results.mkdir(parents=True, exist_ok=True)
            atomic_write(points_path, json.dumps(saved, indent=2).encode())
    plot_frontier(saved["points"] + earlier_points(), a.results / "frontier.png", saved.get("average_face_ms_ssim"),
                  **attribute_names(saved["points"]), presets=presets_of(saved["points"]))
    atomic_write(a.results / "points.md", table(saved["points"]).encode())
    log(f"wrote {a.results / 'frontier.png'} and points.md")


CELEBA_NAMES = {"Male": "gender", "Smiling": "smiling"}


def attribute_names(points: list[dict]) -> dict[str, str]:
    """The utility task and the private attribute the points were trained for (CelebA attribute names)."""
    configs = [p["config"] for p in points]
    if not configs:
        return {}
    return {role: f"{CELEBA_NAMES.get(configs[0][role], configs[0][role])} (CelebA {configs[0][role]})"
            for role in ("utility", "private")}


def presets_of(points: list[dict]) -> dict[str, str]:
    """Point name → the `TrainConfig` preset it is exactly (e.g. d8-vib0.01 → private)."""
    presets = {name: json.loads(json.dumps(asdict(TrainConfig.preset(name)))) for name in PRESETS}
    return {p["name"]: name for p in points for name, config in presets.items() if p["config"] == config}


def split_text(c: dict) -> str:
    """A configuration's split point and objective, in a few words."""
    parts = [f"block {c['split']}"]
    if c.get("bottleneck"):
        parts.append(f"d={c['bottleneck']}" + (f" pooled {c['pool'][0]}×{c['pool'][1]}" if c.get("pool") else ""))
    if c.get("noise"):
        parts.append(f"noise {c['noise']}" + (f" learned, VIB β {c['vib']}" if c.get("vib") else ""))
    if c.get("epochs"):
        parts.append(f"{c['epochs']} adversarial epochs ({c['private_loss']}, λ {c['lam']})")
    return ", ".join(parts)


def table(points: list[dict]) -> str:
    """The points as a Markdown table, each with the targets it meets (✓) or misses (✗)."""
    reference = {p["config"]["split"]: p["report"]["utility_accuracy"]
                 for p in points if p["series"] == "utility only"}
    rows = []
    for p in points:
        r, c = p["report"], p["config"]
        ref = reference.get(c["split"])
        probe = r.get("linear_probe_accuracy")
        checks = [r["private_accuracy"] <= r["majority_rate"] + 0.05,
                  probe is not None and probe <= r["majority_rate"] + 0.05,
                  r["ms_ssim"] <= 0.35,
                  ref is not None and r["utility_accuracy"] >= ref - 0.03,
                  p["encoder_ms"] <= 10 and p["feature_bytes_fp16"] <= p["image_bytes_uint8"]]
        delta = "–" if ref is None else f"{100 * (r['utility_accuracy'] - ref):+.1f}"
        epochs = "/".join(str(v) for v in (r.get("attacker_epochs") or {}).values())
        rows.append(
            f"| {p['name']} | {p['series']} | {split_text(c)} | {r['utility_accuracy']:.3f} ({delta}) | "
            f"{r['private_accuracy']:.3f} | {'–' if probe is None else f'{probe:.3f}'} | "
            f"{p['knn_accuracy'] if 'knn_accuracy' in p else float('nan'):.3f} | {r['majority_rate']:.3f} | "
            f"{r['ms_ssim']:.3f} | {p['encoder_ms']:.2f} | {p['feature_bytes_fp16']:,} | "
            f"{''.join('✓' if ok else '✗' for ok in checks)} | {epochs} | {p['train_s'] / 60:.1f} / "
            f"{p['evaluate_s'] / 60:.1f} |")
    return ("| point | series | split point and objective | Smiling acc (Δ vs utility-only, same block, points) | "
            "fresh gender classifier | gender linear probe | gender kNN | majority | fresh decoder MS-SSIM | encoder ms/image "
            "(1 thread) | fp16 feature bytes | targets: classifier, probe, MS-SSIM, utility, device | attacker "
            "epochs (decoder/classifier/probe) | train / evaluate min |\n|" + "---|" * 14 + "\n"
            + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
