"""Benchmark (issue 24): the obfuscator under harder tests: people kept apart, utility that correlates with the
secret, several seeds, and attackers of another family.

Data: ../shared/data/celeba-attr at 64×52, split 60/10/30 by pseudo-identity (RESULTS/pseudo_identities.txt, from
bench/obfuscator_identities.py: celeba-attr has no identity file). Each seed changes the split and the training.
Two settings, private attribute gender (CelebA Male):
  smiling:    the cloud task is Smiling alone (the README's setting); fresh VGG classifier, linear probe, kNN and
              the averaging attack (K = 16); for the private candidates also the ResNet-18-style classifier, and
              for the private preset at seed 0 (time) the VGG decoder and the SSIM decoder (OTHER_FAMILY, DECODERS).
  correlated: four cloud tasks at once (Smiling, Heavy_Makeup, Wearing_Lipstick, Attractive), which predict gender;
              no decoder (the smiling setting measures it); the Bayes limit of the labels is measured per seed.
Every point is appended to RESULTS/points.json as soon as it is measured; --summarise writes points.md (means and
spreads over seeds) and frontier.png.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/obfuscator_hard.py --setting smiling --seeds 0 1 2
    OMP_NUM_THREADS=1 .venv/bin/python bench/obfuscator_hard.py --summarise
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from advpriv.images import atomic_write
from advpriv.obfuscate import AttackConfig, NoisyEncoder, TrainConfig, load_attributes, load_run, train, train_nopeek
from advpriv.obfuscate.checkpoint import NOPEEK
from advpriv.obfuscate.config import PRESETS, REDUCED
from advpriv.obfuscate.data import read_identities
from advpriv.obfuscate.evaluate import average_face_ms_ssim, evaluate_encoder, knn_accuracy

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "celeba-attr"
RESULTS = ROOT / "bench" / "results" / "obfuscator-hard"
UTILITY = {"smiling": "Smiling", "correlated": "Smiling,Heavy_Makeup,Wearing_Lipstick,Attractive",
           "smiling128": "Smiling"}
SIZE = {"smiling": (64, 52), "correlated": (64, 52), "smiling128": (128, 128)}
SPLIT = dict(split_by="identity", fractions=(0.6, 0.1))
BOTTLENECK = dict(split=4, pool=(1, 1))
NO_ADVERSARY = dict(attacker_epochs=0, epochs=0)
PRIVATE = {k: v for k, v in PRESETS["private"].items() if k not in REDUCED or REDUCED[k] != v}
CONFIGS: dict[str, tuple[str, dict, str | None, float | None]] = {
    "split4": ("advpriv split points", dict(NO_ADVERSARY, split=4), None, None),
    "d8": ("advpriv split points", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8), None, None),
    "d4": ("bottleneck (deterministic)", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=4), None, None),
    "d2": ("advpriv split points", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=2), None, None),
    "private": ("advpriv split points", dict(PRIVATE), None, None),
    "d8-noise0.5": ("bottleneck + trained noise", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8, noise=0.5), None, None),
    "d8-noise1": ("bottleneck + trained noise", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8, noise=1.0), None, None),
    "d8-noise2": ("bottleneck + trained noise", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8, noise=2.0), None, None),
    "d8+noise0.5": ("noise added to d8", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8), "noise", 0.5),
    "d8+noise1": ("noise added to d8", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8), "noise", 1.0),
    "d8+noise2": ("noise added to d8", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8), "noise", 2.0),
    "d8+noise4": ("noise added to d8", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8), "noise", 4.0),
    "d8+noise8": ("noise added to d8", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8), "noise", 8.0),
    "d8+noise16": ("noise added to d8", dict(NO_ADVERSARY, **BOTTLENECK, bottleneck=8), "noise", 16.0),
    "nopeek0.1": ("NoPeek (block 4)", dict(NO_ADVERSARY, split=4), "nopeek", 0.1),
    "nopeek0.3": ("NoPeek (block 4)", dict(NO_ADVERSARY, split=4), "nopeek", 0.3),
    "nopeek1": ("NoPeek (block 4)", dict(NO_ADVERSARY, split=4), "nopeek", 1.0),
    "nopeek4": ("NoPeek (block 4)", dict(NO_ADVERSARY, split=4), "nopeek", 4.0),
    "nopeek16": ("NoPeek (block 4)", dict(NO_ADVERSARY, split=4), "nopeek", 16.0),
    "nopeek64": ("NoPeek (block 4)", dict(NO_ADVERSARY, split=4), "nopeek", 64.0),
}
"""name → (series, overrides of the "reduced" preset, baseline "noise" (σ on the standardised features of the
trained encoder) or "nopeek" (α), its parameter)."""
PLAN = {
    "smiling": ["split4", "private", "d2"],
    "correlated": ["split4", "d8", "d2", "private", "d8+noise1", "d8+noise2", "d8+noise4", "d8+noise8"],
    "smiling128": ["private"],
}
OTHER_FAMILY = {("smiling", "private"), ("smiling", "d2"), ("smiling128", "private")}
"""(setting, configuration) points also attacked by the ResNet-18-style classifier."""
DECODERS = {("smiling", "private", 0), ("smiling128", "private", 0)}
"""(setting, configuration, seed) points also attacked by the VGG decoder and the SSIM decoder: they take most of the
time (11 of the 13 minutes of a point on one thread)."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def config_of(setting: str, name: str, seed: int) -> TrainConfig:
    return TrainConfig.preset("reduced", **CONFIGS[name][1], **SPLIT, utility=UTILITY[setting],
                              image_size=SIZE[setting], seed=seed)


def prepare(setting: str, name: str, seed: int, data, work: Path) -> tuple[dict, TrainConfig]:
    """Train (or load) the encoder of `name` at `seed`; its frozen "E" and cloud "C", and its config."""
    _, _, baseline, value = CONFIGS[name]
    cfg = config_of(setting, name, seed)
    trained = next(n for n, c in CONFIGS.items() if c[1] == CONFIGS[name][1] and c[2] is None)
    run = load_run(train(data, cfg, work / setting / f"{trained}-seed{seed}"))
    parts = run.parties("obfuscator")
    if baseline == "noise":
        parts["E"] = NoisyEncoder(parts["E"], value)
    elif baseline == "nopeek":
        folder = work / setting / f"{name}-seed{seed}"
        if not (folder / NOPEEK).is_file():
            folder.mkdir(parents=True, exist_ok=True)
            run.config.save(folder / "config.json")
            train_nopeek(data, run.config, folder, alpha=value)
        parts = load_run(folder).parties("nopeek")
    return parts, run.config


def bayes_limit(data, cfg: TrainConfig) -> float:
    """Test accuracy of the Bayes classifier of the private attribute from the utility labels alone: the majority
    private value of each combination of utility labels on the training split (the training majority where a
    combination is unseen)."""
    splits, private = cfg.splits(data), data.labels_of(cfg.private)
    utility = data.labels_of(cfg.utility).reshape(len(data), -1).long()
    cell = (utility * (2 ** torch.arange(utility.shape[1]))).sum(1)
    train, test = splits["train"], splits["test"]
    fallback = float(private[train].mean() >= 0.5)
    guess = {int(c): float(private[train][cell[train] == c].mean() >= 0.5) for c in cell[train].unique()}
    predicted = torch.tensor([guess.get(int(c), fallback) for c in cell[test]])
    return float((predicted == private[test]).float().mean())


def measure(setting: str, name: str, seed: int, data, attack: AttackConfig, work: Path) -> dict:
    t = time.time()
    parts, cfg = prepare(setting, name, seed, data, work)
    train_s = time.time() - t
    t = time.time()
    splits, private = cfg.splits(data), data.labels_of(cfg.private)
    report, _ = evaluate_encoder(name, parts["E"], parts["C"], data, splits, data.labels_of(cfg.utility), private,
                                 cfg.widths, attack, cfg.split_point, decoder=(setting, name, seed) in DECODERS,
                                 other_family=(setting, name) in OTHER_FAMILY)
    point = {"setting": setting, "name": name, "seed": seed, "series": CONFIGS[name][0], "config": asdict(cfg),
             "report": report.as_dict(), "knn_accuracy": knn_accuracy(parts["E"], data, splits, private),
             "split_sizes": {k: len(v) for k, v in splits.items()}, "train_s": train_s}
    if setting == "correlated":
        point["bayes_limit"] = bayes_limit(data, cfg)
    else:
        point["average_face_ms_ssim"] = average_face_ms_ssim(data, splits["train"], splits["test"])
    point["evaluate_s"] = time.time() - t
    return point


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--setting", choices=list(PLAN), default="smiling")
    p.add_argument("--names", nargs="*", help="configurations (default: the setting's plan)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--work", type=Path, default=ROOT / "out" / "obfuscator-hard")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--attack-epochs", type=int, default=15)
    p.add_argument("--decoder-epochs", type=int, default=10)
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--attack-batch", type=int, default=128)
    p.add_argument("--summarise", action="store_true", help="only write points.md and frontier.png")
    p.add_argument("--again", action="store_true", help="measure points already in points.json again")
    a = p.parse_args()
    torch.set_num_threads(1)
    points_path = a.results / "points.json"
    saved = json.loads(points_path.read_text()) if points_path.is_file() else {"points": []}
    if not a.summarise:
        names = a.names or PLAN[a.setting]
        unknown = [n for n in names if n not in CONFIGS]
        if unknown:
            sys.exit(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}.")
        if not a.data.is_dir():
            sys.exit(f"{a.data} is missing: this benchmark needs ../shared/data/celeba-attr.")
        data = load_attributes(a.data, SIZE[a.setting])
        data.identities = read_identities(a.results / "pseudo_identities.txt", data.files)
        attack = AttackConfig(epochs=a.attack_epochs, patience=a.patience, batch_size=a.attack_batch,
                              decoder_epochs=a.decoder_epochs)
        command = "OMP_NUM_THREADS=1 python bench/obfuscator_hard.py " + " ".join(map(shlex.quote, sys.argv[1:]))
        done = {(q["setting"], q["name"], q["seed"]) for q in saved["points"]}
        for seed in a.seeds:
            for name in names:
                if (a.setting, name, seed) in done and not a.again:
                    continue
                log(f"{a.setting} {name} seed {seed}")
                point = {**measure(a.setting, name, seed, data, attack, a.work), "attack": asdict(attack),
                         "command": command}
                log(json.dumps({k: point[k] for k in ("report", "knn_accuracy", "train_s", "evaluate_s")}))
                key = (a.setting, name, seed)
                saved["points"] = [q for q in saved["points"] if (q["setting"], q["name"], q["seed"]) != key] + [point]
                a.results.mkdir(parents=True, exist_ok=True)
                atomic_write(points_path, json.dumps(saved, indent=2).encode())
    from obfuscator_hard_summary import summarise  # matplotlib: only for the summary

    summarise(saved["points"], a.results)


if __name__ == "__main__":
    main()
