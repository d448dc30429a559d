"""`advpriv obfuscator train | evaluate | export`: a thin command-line layer over the obfuscate package."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from advpriv.images import ImageError, atomic_write
from advpriv.obfuscate.checkpoint import NOPEEK, RunError, load_run
from advpriv.obfuscate.config import DEFAULT_PRESET, ConfigError, PRESETS, PRIVATE_LOSSES, TrainConfig
from advpriv.obfuscate.data import CELEBA_IDENTITY, DataError, load_attributes
from advpriv.obfuscate.distributed import Distributed, DistributedError
from advpriv.obfuscate.evaluate import ENCODER_NAMES, AttackConfig, evaluate_run
from advpriv.obfuscate.export import (
    ExportError, check_executorch, device_report, export_checked, export_executorch,
)
from advpriv.obfuscate.identity import PSEUDO_IDENTITIES, pseudo_identities
from advpriv.obfuscate.montage import save_montage
from advpriv.obfuscate.nopeek import train_nopeek
from advpriv.obfuscate.train import ConfigMismatch, train as train_run

app = typer.Typer(no_args_is_help=True, help="DeepObfuscator: train an on-device feature encoder that hides the face "
                  "and a private attribute, evaluate it against fresh attackers, export it for phones.")
console = Console(stderr=True)
USER_ERRORS = (DataError, ConfigMismatch, ConfigError, RunError, ImageError, ExportError, DistributedError)


@contextmanager
def _user_errors():
    """Turn user errors into one red line and exit status 2, without a traceback."""
    try:
        yield
    except USER_ERRORS as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2) from None


def _size(text: str, minimum: int = 32, hint: str = "--image-size") -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: write the size as HEIGHTxWIDTH, e.g. 64x52.", param_hint=hint) from None
    if h < minimum or w < minimum:
        raise typer.BadParameter(f"{text!r}: must be at least {minimum}x{minimum}.", param_hint=hint)
    return h, w


def _config(preset: str, given: dict) -> TrainConfig:
    """The preset's configuration with every option the user gave on top (None: not given)."""
    if preset not in PRESETS:
        raise typer.BadParameter(f"{preset!r}: choose one of {', '.join(PRESETS)}.", param_hint="--preset")
    if given["private_loss"] is not None and given["private_loss"] not in PRIVATE_LOSSES:
        raise typer.BadParameter(f"{given['private_loss']!r}: choose one of {', '.join(PRIVATE_LOSSES)}.",
                                 param_hint="--private-loss")
    overrides = {k: v for k, v in given.items() if v is not None}
    if "image_size" in overrides:
        native = overrides["image_size"].lower() == "native"
        overrides["image_size"] = None if native else _size(overrides["image_size"])
    if "pool" in overrides:
        overrides["pool"] = None if overrides["pool"].lower() == "none" else _size(overrides["pool"], 1, "--pool")
    if overrides.get("bottleneck") == 0:
        overrides["bottleneck"] = None
    try:
        return TrainConfig.preset(preset, **overrides)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _load(data: Path, cfg: TrainConfig, run: Path):
    """The dataset; for a split by identity without an identity file, with pseudo-identities kept in RUN."""
    console.print(f"loading {escape(str(data))} ...")
    dataset = load_attributes(data, cfg.image_size, cfg.limit)
    if cfg.split_by == "identity" and dataset.identities is None:
        cache = run / PSEUDO_IDENTITIES
        if not cache.is_file():
            console.print(f"no {CELEBA_IDENTITY} in the data: grouping the faces by dlib's face recogniser "
                          f"(kept in {escape(str(cache))}) ...")
        dataset.identities = pseudo_identities(dataset, cache)
    return dataset


@app.command()
def train(
    data: Path = typer.Argument(..., help="Dataset folder (CelebA layout, or images + one CSV) or the CSV itself."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder for config, checkpoints and weights."),
    preset: str = typer.Option(DEFAULT_PRESET, help=f"Starting configuration: {', '.join(PRESETS)} (the options "
                               "below override it; see the README for which to use)."),
    utility: str = typer.Option(None, help="Attribute the cloud classifier predicts (default Smiling)."),
    private: str = typer.Option(None, help="Attribute to hide from attackers (default Male)."),
    width: float = typer.Option(None, help="VGG channel multiplier (1.0 = VGG16)."),
    fc: int = typer.Option(None, help="Hidden size of the classifier's two FC layers."),
    image_size: str = typer.Option(None, help="Resize images to HEIGHTxWIDTH, e.g. 64x52, or 'native'."),
    split: int = typer.Option(None, min=1, max=5, help="VGG blocks on the device (the paper: 2)."),
    bottleneck: int = typer.Option(None, min=0, help="Channels of a learned 1x1 bottleneck at the split (0: none)."),
    pool: str = typer.Option(None, help="Average-pool the bottleneck's output to HEIGHTxWIDTH, e.g. 1x1 ('none': keep)."),
    noise: float = typer.Option(None, min=0, help="Std of Gaussian noise on the standardised bottleneck features, "
                                "added in training and on the device (0: none)."),
    vib: float = typer.Option(None, min=0, help="Weight of a variational-information-bottleneck rate term; the "
                              "noise std is then learned per channel, starting at --noise (0: off)."),
    pretrain_epochs: int = typer.Option(None, min=0, help="Epochs of encoder + cloud classifier pretraining."),
    attacker_epochs: int = typer.Option(None, min=0, help="Epochs of decoder and of attribute-adversary pretraining."),
    epochs: int = typer.Option(None, min=0, help="Adversarial epochs (0: none; the encoder is the utility-only one)."),
    lam: float = typer.Option(None, help="Privacy weight λ."),
    lam_hold: int = typer.Option(None, help="Adversarial epochs at full λ before it decays."),
    lam_decay: float = typer.Option(None, help="Factor on λ per epoch after the hold."),
    batch_size: int = typer.Option(None, min=2, help="Images per minibatch, in all: under torchrun each of the N "
                                   "processes takes 1/N of it (a multiple of N)."),
    lr: float = typer.Option(None, help="Adam learning rate of every network."),
    pretrain_lr: float = typer.Option(None, help="Adam learning rate of the pretraining stages (default: --lr)."),
    private_loss: str = typer.Option(None, help="Encoder against the attribute adversary: negative_bce "
                                     "(make it wrong, the authors' code) or entropy (make it unsure)."),
    refresh_every: int = typer.Option(None, min=0, help="Every N adversarial epochs, retrain the decoder and attribute "
                                      "adversaries for an epoch on the frozen encoder first (0: never, as in the paper)."),
    limit: int = typer.Option(None, min=1, help="Use only the first N images."),
    seed: int = typer.Option(None),
    split_by: str = typer.Option(None, help="Shuffle 'image's or 'identity' (people: no face in two splits; "
                                 f"from the data's {CELEBA_IDENTITY}, else grouped by face recognition)."),
    test_fraction: float = typer.Option(None, min=0.01, max=0.9, help="Share of the images in the test split "
                                        "(default 0.1; validation keeps 0.1, training the rest)."),
    threads: int = typer.Option(None, min=1, help="CPU threads for PyTorch."),
    restart: bool = typer.Option(False, help="Discard an existing checkpoint in --out and start over."),
    nopeek: float = typer.Option(None, help="Also train the NoPeek baseline with this distance-correlation weight."),
) -> None:
    """Train utility-only and DeepObfuscator encoders; resumes from the checkpoint in --out if there is one.

    Under `torchrun --nproc-per-node N -m advpriv obfuscator train ...` the N processes train together
    (DistributedDataParallel: gloo on CPU, nccl on GPUs); the first alone writes --out and shows progress."""
    if threads:
        torch.set_num_threads(threads)
    main = Distributed.from_env().is_main
    console.quiet = not main
    cfg = _config(preset, dict(
        utility=utility, private=private, width=width, fc=fc, image_size=image_size, split=split,
        bottleneck=bottleneck, pool=pool, noise=noise, vib=vib, pretrain_epochs=pretrain_epochs,
        attacker_epochs=attacker_epochs, epochs=epochs, lam=lam, lam_hold=lam_hold, lam_decay=lam_decay,
        batch_size=batch_size, lr=lr, pretrain_lr=pretrain_lr, private_loss=private_loss,
        refresh_every=refresh_every, limit=limit, seed=seed, split_by=split_by,
        fractions=None if test_fraction is None else (round(0.9 - test_fraction, 6), 0.1)))
    with _user_errors():
        dataset = _load(data, cfg, out)
        console.print(f"{len(dataset)} images of {dataset.image_size[0]}x{dataset.image_size[1]}")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   TextColumn("{task.fields[losses]}"))
        with Progress(*columns, console=console, disable=not main) as bar:
            tasks: dict[tuple[str, int], int] = {}

            def on_step(stage: str, epoch: int, done: int, total: int, losses: dict[str, float]) -> None:
                key = (stage, epoch)
                if key not in tasks:
                    tasks[key] = bar.add_task(f"{stage} epoch {epoch + 1}", total=total, losses="")
                text = " ".join(f"{k}={v:.3f}" for k, v in losses.items())
                bar.update(tasks[key], completed=done, losses=text)

            folder = train_run(dataset, cfg, out, on_step=on_step, restart=restart)
            if nopeek is not None and main:  # the baseline trains in the first process alone
                train_nopeek(dataset, cfg, out, nopeek,
                             on_step=lambda epoch, done, total, losses: on_step("nopeek", epoch, done, total, losses))
    console.print(f"[green]done:[/green] weights in {escape(str(folder))}")


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="Run folder written by `advpriv obfuscator train`."),
    data: Path = typer.Argument(..., help="The dataset the run was trained on."),
    attack_epochs: int = typer.Option(30, min=1, help="Most epochs of each fresh attacker."),
    patience: int = typer.Option(3, min=0, help="Stop a fresh attacker once its validation loss has not improved "
                                 "for this many epochs (0: train exactly --attack-epochs)."),
    attack_lr: float = typer.Option(1e-3, help="Adam learning rate of the fresh attackers."),
    decoder_epochs: int = typer.Option(None, min=1, help="Epochs of the fresh decoder (default: --attack-epochs)."),
    attack_width: float = typer.Option(None, help="Width multiplier of the fresh attackers (default: the encoder's)."),
    attack_fc: int = typer.Option(None, min=1, help="FC size of the fresh classifier (default: the encoder's)."),
    montage: Path = typer.Option(None, help="Write originals and reconstructions as a PNG here."),
    frontier: Path = typer.Option(None, help="Write the privacy-utility plot of the evaluated encoders as a PNG here."),
    only: list[str] = typer.Option(None, "--only", help="Evaluate only these encoders (repeatable): utility_only, "
                                   "obfuscator, noise, nopeek. Default: all that the run has."),
    report: Path = typer.Option(None, help="Write the results as JSON here (default: RUN/report.json)."),
    threads: int = typer.Option(None, min=1, help="CPU threads for PyTorch."),
) -> None:
    """Freeze each encoder (utility-only, DeepObfuscator, matched noise, NoPeek if trained), train fresh attackers
    from scratch, and report privacy and utility on the test split."""
    if threads:
        torch.set_num_threads(threads)
    with _user_errors():
        opened = load_run(run)
        dataset = _load(data, opened.config, run)
        names = ENCODER_NAMES + (("nopeek",) if (run / NOPEEK).is_file() else ())
        if only:
            unknown = [n for n in only if n not in names]
            if unknown:
                raise typer.BadParameter(f"{', '.join(unknown)}: this run has {', '.join(names)}.", param_hint="--only")
            names = tuple(only)
        attack = AttackConfig(epochs=attack_epochs, patience=patience, lr=attack_lr, width=attack_width, fc=attack_fc,
                              decoder_epochs=decoder_epochs)
        reports, recon = evaluate_run(opened, dataset, attack, progress=console.print, names=names)
    table = Table("encoder", "utility acc", "private acc", "linear probe", "averaging K=16", "majority", "MS-SSIM",
                  "SSIM", "PSNR dB", "noise σ")
    for r in reports:
        table.add_row(r.name, f"{r.utility_accuracy:.3f}", f"{r.private_accuracy:.3f}",
                      f"{r.linear_probe_accuracy:.3f}", f"{r.averaging_accuracy:.3f}", f"{r.majority_rate:.3f}",
                      f"{r.ms_ssim:.3f}", f"{r.ssim:.3f}", f"{r.psnr:.2f}", "" if r.noise_std is None else f"{r.noise_std:.3f}")
    Console().print(table)
    path = report or run / "report.json"
    atomic_write(path, json.dumps([r.as_dict() for r in reports], indent=2).encode())
    console.print(f"report: {escape(str(path))}")
    if montage:
        save_montage(recon, montage)
        console.print(f"montage: {escape(str(montage))}")
    if frontier:
        cost = device_report(opened.encoder("utility_only"), opened.config.image_size)
        points = [{"name": r.name, "series": r.name, "report": r.as_dict(), "encoder_ms": cost.latency_ms_torch,
                   "feature_bytes_fp16": cost.feature_bytes_fp16} for r in reports]
        from advpriv.obfuscate.frontier import plot_frontier  # matplotlib: only for this command

        plot_frontier(points, frontier)
        console.print(f"frontier: {escape(str(frontier))}")


@app.command()
def export(
    run: Path = typer.Argument(..., help="Run folder written by `advpriv obfuscator train`."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: RUN/export)."),
    encoder: str = typer.Option("obfuscator", help="Which encoder: obfuscator or utility_only."),
    executorch: bool = typer.Option(True, help="Also try an ExecuTorch .pte."),
) -> None:
    """Export the encoder to ONNX (checked with onnxruntime), optionally ExecuTorch, and report its device cost."""
    if encoder not in ("obfuscator", "utility_only"):
        raise typer.BadParameter(f"{encoder!r}: choose obfuscator or utility_only.", param_hint="--encoder")
    out = out or run / "export"
    with _user_errors():
        opened = load_run(run)
        size = opened.config.image_size
        model = opened.encoder(encoder)
        onnx_path = out / f"{encoder}.onnx"
        diff = export_checked(model, size, onnx_path, torch.rand(4, 3, *size))
        console.print(f"ONNX: {escape(str(onnx_path))} (onnxruntime max |diff| {diff:.1e}; noise, if any, checked apart)")
        result = {"onnx": str(onnx_path), "onnx_max_abs_diff": diff, "executorch": None}
        if executorch:
            try:
                pte = export_executorch(model, size, out / f"{encoder}.pte")
                result["executorch"] = str(pte)
                result["executorch_max_abs_diff"] = check_executorch(pte, model, torch.rand(1, 3, *size))
                console.print(f"ExecuTorch: {escape(str(pte))} (runtime max |diff| {result['executorch_max_abs_diff']:.1e})")
            except ExportError as e:
                result["executorch_error"] = str(e)
                console.print(f"[yellow]ExecuTorch skipped:[/yellow] {escape(str(e))}")
        result.update(device_report(model, size, onnx_path).as_dict())
    atomic_write(out / "device_report.json", json.dumps(result, indent=2).encode())
    Console().print_json(json.dumps(result))
