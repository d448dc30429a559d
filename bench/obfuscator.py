"""Benchmark: the whole DeepObfuscator protocol on the shared 10,000-face CelebA subset, on this CPU.

Trains the utility-only and DeepObfuscator encoders (resuming if the work folder holds a checkpoint), evaluates
them and the matched-noise baseline against fresh attackers, exports the encoder to ONNX (and ExecuTorch if it is
installed), measures its device cost, and writes bench/results/obfuscator.{md,json} and a montage PNG.

The defaults are a reduced configuration that fits a shared 2-core CPU in well under an hour; the paper's
(width 1, FC 4096, native 109×89, 10+10+20 epochs) is `--width 1 --fc 4096 --image-size native ...`.

    python bench/obfuscator.py                      # the documented run
    python bench/obfuscator.py --limit 2000 --work out/bench-pilot --results out/bench-pilot   # a quick pilot
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
from safetensors.torch import load_file, save_file

from advpriv.obfuscate import AttackConfig, TrainConfig, evaluate_run, load_attributes, load_run, train, train_nopeek
from advpriv.obfuscate.checkpoint import NOPEEK
from advpriv.obfuscate.evaluate import ENCODER_NAMES
from advpriv.obfuscate.export import ExportError, check_executorch, check_onnx, device_report, export_executorch, export_onnx
from advpriv.obfuscate.montage import save_montage
from advpriv.obfuscate.networks import Encoder, Widths

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "celeba-attr"


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--work", type=Path, default=ROOT / "out" / "bench-obfuscator", help="run folder (checkpoints)")
    p.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--image-size", default="64x52", help="HxW, or 'native' for 109x89")
    p.add_argument("--width", type=float, default=0.125)
    p.add_argument("--fc", type=int, default=256)
    p.add_argument("--pretrain-epochs", type=int, default=4)
    p.add_argument("--attacker-epochs", type=int, default=2)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--lam", type=float, default=10.0)
    p.add_argument("--lam-hold", type=int, default=3)
    p.add_argument("--lam-decay", type=float, default=0.8)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--pretrain-lr", type=float, default=1e-3)
    p.add_argument("--attack-epochs", type=int, default=3)
    p.add_argument("--attack-lr", type=float, default=1e-3)
    p.add_argument("--decoder-epochs", type=int, default=None,
                   help="epochs of the fresh decoder (default: --attack-epochs)")
    p.add_argument("--attack-width", type=float, default=None, help="fresh attackers' width (default: the encoder's)")
    p.add_argument("--attack-fc", type=int, default=None, help="fresh classifier's FC size (default: the encoder's)")
    p.add_argument("--private-loss", choices=("negative_bce", "entropy"), default="negative_bce",
                   help="encoder's objective against P: make it wrong (authors' code) or unsure")
    p.add_argument("--refresh-every", type=int, default=0, help="retrain R and P for an epoch every N adversarial epochs")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nopeek", type=float, default=None, metavar="ALPHA",
                   help="also train and evaluate the NoPeek baseline with this distance-correlation weight")
    p.add_argument("--reuse-results", action="store_true",
                   help="keep the encoders already evaluated in RESULTS/obfuscator.json; evaluate only the others")
    return p.parse_args()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main() -> None:
    a = parse()
    if not a.data.is_dir():
        sys.exit(f"{a.data} is missing: this benchmark needs ../shared/data/celeba-attr.")
    torch.set_num_threads(a.threads)
    size = None if a.image_size == "native" else tuple(int(v) for v in a.image_size.split("x"))
    cfg = TrainConfig(width=a.width, fc=a.fc, image_size=size, pretrain_epochs=a.pretrain_epochs,
                      attacker_epochs=a.attacker_epochs, epochs=a.epochs, lam=a.lam, lam_hold=a.lam_hold,
                      lam_decay=a.lam_decay, lr=a.lr, pretrain_lr=a.pretrain_lr, private_loss=a.private_loss,
                      refresh_every=a.refresh_every, limit=a.limit, seed=a.seed)
    attack = AttackConfig(epochs=a.attack_epochs, lr=a.attack_lr, seed=a.seed, width=a.attack_width, fc=a.attack_fc,
                          decoder_epochs=a.decoder_epochs)
    times: dict[str, float] = {}
    t0 = time.time()

    data = load_attributes(a.data, cfg.image_size, cfg.limit)
    times["load"] = time.time() - t0
    log(f"loaded {len(data)} images of {data.image_size} in {times['load']:.0f}s")

    sums: dict[str, float] = {}
    stage_start = [time.time()]

    def on_step(stage, epoch, done, total, losses):
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v
            sums[k + "#"] = sums.get(k + "#", 0) + 1
        if done == total:
            means = " ".join(f"{k}={sums[k] / sums[k + '#']:.3f}" for k in sums if not k.endswith("#"))
            log(f"{stage} epoch {epoch + 1}: {means} ({time.time() - stage_start[0]:.0f}s)")
            sums.clear()
            stage_start[0] = time.time()

    t = time.time()
    train(data, cfg, a.work, on_step=on_step)
    if a.nopeek is not None and not (a.work / NOPEEK).is_file():
        train_nopeek(data, cfg, a.work, a.nopeek, on_step=lambda e, d, n, losses: on_step("nopeek", e, d, n, losses))
    times["train"] = time.time() - t

    run = load_run(a.work)
    names = ENCODER_NAMES + (("nopeek",) if a.nopeek is not None else ())
    json_path, rows_path = a.results / "obfuscator.json", a.work / "montage_rows.safetensors"
    previous = json.loads(json_path.read_text()) if a.reuse_results and json_path.is_file() else None
    if previous and previous["config"] != json.loads(json.dumps(asdict(run.config))):
        sys.exit(f"{json_path} was made with another configuration; run without --reuse-results.")
    kept = [r for r in previous["reports"] if r["name"] in names] if previous else []
    todo = tuple(n for n in names if n not in {r["name"] for r in kept})
    t = time.time()
    reports, recon = evaluate_run(run, data, attack, montage_count=8, progress=log, names=todo)
    times["evaluate"] = time.time() - t
    for r in reports:
        log(str(r))
    if previous and rows_path.is_file():
        recon = {**load_file(rows_path), **recon}
    elif previous:
        log(f"{rows_path} not found: the montage shows only the encoders evaluated now")
    save_file({k: v.contiguous() for k, v in recon.items()}, rows_path)
    order = ["original", *names]
    a.results.mkdir(parents=True, exist_ok=True)
    save_montage({k: recon[k] for k in order if k in recon}, a.results / "obfuscator_montage.png")

    t = time.time()
    device = export_and_measure(run, a.work / "export")
    times["export"] = time.time() - t
    times["total"] = time.time() - t0
    command = "python bench/obfuscator.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    earlier = previous and (previous.get("runs") or [{"command": previous["command"], "times_s": previous["times_s"],
                                                      "evaluated": [x["name"] for x in previous["reports"]]}])
    runs = (earlier or []) + [{"command": command.strip(), "times_s": times,
                                                       "evaluated": list(todo)}]
    by_name = {r["name"]: r for r in kept + [r.as_dict() for r in reports]}
    result = {"runs": runs, "config": asdict(run.config), "attack": asdict(attack), "threads": a.threads,
              "images": len(data), "nopeek_alpha": a.nopeek if a.nopeek is not None else (previous or {}).get("nopeek_alpha"),
              "reports": [by_name[n] for n in names if n in by_name], "device": device}
    atomic_write(json_path, json.dumps(result, indent=2).encode())
    atomic_write(a.results / "obfuscator.md", render(result).encode())
    log(f"done in {times['total']:.0f}s; results in {a.results}")


def export_and_measure(run, folder: Path) -> dict:
    """ONNX (+ExecuTorch) of the trained encoder, and the cost of the trained and of the full-size encoder."""
    size = run.config.image_size
    E = run.encoder("obfuscator")
    onnx_path = export_onnx(E, size, folder / "obfuscator.onnx")
    out = {"onnx_max_abs_diff": check_onnx(onnx_path, E, torch.rand(8, 3, *size)),
           "trained": device_report(E, size, onnx_path).as_dict()}
    try:
        pte = export_executorch(E, size, folder / "obfuscator.pte")
        diff = check_executorch(pte, E, torch.rand(1, 3, *size))
        out["executorch"] = f"{pte.name} written ({pte.stat().st_size:,} bytes), runtime max |diff| {diff:.1e}."
    except ExportError as e:
        out["executorch"] = f"not exported: {e}"
    full = Encoder(Widths()).eval()
    full_onnx = export_onnx(full, (109, 89), folder / "full_size.onnx")
    out["full_size_onnx_max_abs_diff"] = check_onnx(full_onnx, full, torch.rand(2, 3, 109, 89))
    out["full_size"] = device_report(full, (109, 89), full_onnx).as_dict()
    return out


def attack_text(at: dict, c: dict) -> str:
    """The fresh attackers' training, in words."""
    dec = at.get("decoder_epochs") or at["epochs"]
    width = at.get("width") or c["width"]
    fc = at.get("fc") or c["fc"]
    return (f"decoder {dec} epochs, classifier {at['epochs']} epochs, Adam {at['lr']}, width {width}, FC {fc}")


def render(r: dict) -> str:
    """The results as Markdown, with each target marked met or missed."""
    rep = {x["name"]: x for x in r["reports"]}
    u, o = rep["utility_only"], rep["obfuscator"]
    c = r["config"]
    ok = lambda b: "**met**" if b else "**missed**"  # noqa: E731
    sigma = lambda x: "" if x["noise_std"] is None else f"{x['noise_std']:.3f}"  # noqa: E731
    rows = "\n".join(
        f"| {x['name']} | {x['utility_accuracy']:.3f} | {x['private_accuracy']:.3f} | {x['majority_rate']:.3f} | "
        f"{x['ms_ssim']:.3f} | {x['ssim']:.3f} | {x['psnr']:.2f} | {sigma(x)} |" for x in r["reports"])
    d = r["device"]

    def dev(k: str, label: str) -> str:
        v = d[k]
        lat = f"{v['latency_ms_torch']:.2f} ms PyTorch, {v['latency_ms_onnxruntime']:.2f} ms onnxruntime"
        return (f"| {label} | {v['parameters']:,} | {v['macs'] / 1e6:.1f} M | {'×'.join(map(str, v['feature_shape']))} | "
                f"{v['feature_bytes_fp32']:,} | {v['feature_bytes_fp16']:,} | {v['image_bytes_uint8']:,} | {lat} |")

    runs = "\n".join(
        f"    {x['command']}\n\n  {x['times_s']['total'] / 60:.1f} min in all (load {x['times_s']['load']:.0f} s, "
        f"training {x['times_s']['train'] / 60:.1f} min, fresh-attacker evaluation of "
        f"{', '.join(x['evaluated']) or 'nothing'} {x['times_s']['evaluate'] / 60:.1f} min, export and device "
        f"measurements {x['times_s']['export']:.0f} s).\n" for x in r["runs"])
    nopeek = (f" NoPeek is trained like the utility-only encoder ({c['pretrain_epochs']} epochs) on "
              f"L_C + {r['nopeek_alpha']}·dCor(x, E(x)).") if r.get("nopeek_alpha") is not None else ""
    return f"""# DeepObfuscator benchmark

Produced by these commands, in this order (wall time measured by each; a run that found a finished checkpoint or
earlier results skips that work):

{runs}
on the shared 2-core CPU (no GPU, shared with another engineer's jobs), PyTorch {torch.__version__},
{r['threads']} thread(s). {r['images']:,} CelebA faces (`../shared/data/celeba-attr`), utility attribute
`{c['utility']}`, private attribute `{c['private']}`, seeded 80/10/10 train/val/test split.

## Configuration (reduced to fit this CPU)

| | this run | paper / library default |
|---|---|---|
| input | {c['image_size'][0]}×{c['image_size'][1]} | native 109×89 |
| VGG width multiplier | {c['width']} (channels {', '.join(map(str, Widths(c['width'], c['fc']).channels()))}) | 1.0 (64, 128, 256, 512, 512) |
| FC hidden size | {c['fc']} | 4096 |
| epochs: utility / R and P pretraining / adversarial | {c['pretrain_epochs']} / {c['attacker_epochs']} / {c['epochs']} | 10 / 10 / 20 |
| λ schedule | {c['lam']} for {c['lam_hold']} epochs, then ×{c['lam_decay']} per epoch | 10 for 10 epochs, then decreasing (library: ×0.8 per epoch) |
| Adam lr: pretraining / adversarial; batch | {c['pretrain_lr'] or c['lr']} / {c['lr']}; {c['batch_size']} | 1e-4 / 1e-4; 32 |
| E against P (step 2) | {c.get('private_loss', 'negative_bce')} | negative_bce (L_C − λ·L_P) |
| attackers refreshed (one epoch of R and of P, P from C) | {f"every {c['refresh_every']} adversarial epochs" if c.get('refresh_every') else 'never'} | never |
| fresh attackers | decoder and attribute classifier from scratch, {attack_text(r['attack'], c)} | issue's protocol (library default: 10 epochs, Adam 1e-3, the encoder's width) |

## Results on the test split (fresh attackers trained on the frozen encoder's training-split features)

| encoder | utility acc | private acc | majority rate | recon MS-SSIM | SSIM | PSNR dB | noise σ |
|---|---|---|---|---|---|---|---|
{rows}

The noise baseline adds N(0, σ²) to the utility-only features, with σ found by bisection so that the utility-only
cloud classifier's validation accuracy matches the DeepObfuscator's; the classifier is not retrained on noise.{nopeek}

## Against the issue's targets

| target | measured | |
|---|---|---|
| obfuscated reconstruction MS-SSIM ≤ 0.35 | {o['ms_ssim']:.3f} | {ok(o['ms_ssim'] <= 0.35)} |
| utility-only reconstruction MS-SSIM ≥ 0.8 | {u['ms_ssim']:.3f} | {ok(u['ms_ssim'] >= 0.8)} |
| private accuracy within 5 points of the majority rate | {o['private_accuracy']:.3f} vs {o['majority_rate']:.3f} ({100 * (o['private_accuracy'] - o['majority_rate']):+.1f} points) | {ok(o['private_accuracy'] - o['majority_rate'] <= 0.05)} |
| utility accuracy within 3 points of the utility-only encoder | {o['utility_accuracy']:.3f} vs {u['utility_accuracy']:.3f} ({100 * (o['utility_accuracy'] - u['utility_accuracy']):+.1f} points) | {ok(u['utility_accuracy'] - o['utility_accuracy'] <= 0.03)} |

For comparison, the paper (full size, 20 epochs, GPU) reports reconstruction MS-SSIM 0.9458 → 0.3175 and gender
accuracy 97.36 % → 58.85 % at about 2 points of utility.

![montage](obfuscator_montage.png)

Rows: test originals, then the fresh decoder's reconstructions from each encoder's features.

## Device side

| encoder | parameters | MACs / image | features | fp32 bytes | fp16 bytes | raw 8-bit image bytes | single-thread latency / image |
|---|---|---|---|---|---|---|---|
{dev('trained', f"trained ({c['image_size'][0]}×{c['image_size'][1]}, width {c['width']})")}
{dev('full_size', 'paper size (109×89, width 1), untrained, cost only')}

ONNX export checked against onnxruntime: max |difference| {d['onnx_max_abs_diff']:.1e} (trained),
{d['full_size_onnx_max_abs_diff']:.1e} (paper size); the tolerance is 1e-4.
ExecuTorch: {d['executorch']}
"""


if __name__ == "__main__":
    main()
