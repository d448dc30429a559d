"""`advpriv batch`: `advpriv protect` on Ray Data. Ray is imported only when the command runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from advpriv.images import MAX_PIXELS
from advpriv.model_trust import TRUST_HELP
from advpriv.protect.batch import plan_batch, skipped_lines
from advpriv.protect.files import FACE_TARGET
from advpriv.protect.job import ProtectJob

console = Console(stderr=True)


def batch_command(
    inputs: Annotated[list[Path], typer.Argument(help="Image files or folders (searched recursively).")],
    outdir: Annotated[Path, typer.Option("-o", "--outdir", help="Folder for protected copies and metrics.")],
    ray_address: Annotated[str, typer.Option("--ray", help="Ray cluster to run on: 'local' (start one on this machine), 'auto' (the cluster this machine belongs to) or ADDRESS (host:port, or ray://host:port).")] = "local",
    actors: Annotated[Optional[int], typer.Option(min=1, help="Actors, each holding its own copy of the models (default: the cluster's CPUs / --threads).")] = None,
    threads: Annotated[int, typer.Option(min=1, help="Torch threads per actor (a file's bytes depend on it: `advpriv protect` on the same number of threads writes the same bytes).")] = 1,
    force: Annotated[bool, typer.Option(help="Protect again inputs whose output already exists and verifies.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed; each file's result depends only on it and the file.")] = 0,
    target: Annotated[str, typer.Option(help="As in `advpriv protect`: dlib, a face model spec PATH:threshold=T|similarity=S, a classifier name or file, or module:factory.")] = FACE_TARGET,
    strength: Annotated[str, typer.Option(help="low, medium or high, as in `advpriv protect`.")] = "medium",
    method: Annotated[str, typer.Option(help="mnd, or an anchor (fgsm, pgd, cw), as in `advpriv protect`.")] = "mnd",
    fmt: Annotated[str, typer.Option("--format", help="Output format: png (lossless, recommended) or jpg.")] = "png",
    mode: Annotated[str, typer.Option(help="Faces: dodge or impersonate (with --as).")] = "dodge",
    as_photos: Annotated[Optional[list[Path]], typer.Option("--as", help="Faces: photos of the identity to impersonate.")] = None,
    aligned: Annotated[bool, typer.Option(help="Faces: each image is one already-aligned face chip.")] = False,
    embedder: Annotated[Optional[list[str]], typer.Option("--embedder", help="Faces: also attack this face model spec (repeatable).")] = None,
    dlib: Annotated[bool, typer.Option("--dlib/--no-dlib", help="Faces: keep dlib's ResNet in the attacked ensemble.")] = True,
    facenet: Annotated[bool, typer.Option("--facenet/--no-facenet", help="Faces: keep FaceNet (fetched by make setup or advpriv models fetch facenet) in the attacked ensemble of --target dlib.")] = True,
    judge: Annotated[Optional[list[str]], typer.Option("--judge", help="Faces: also judge with this ONNX face model spec (repeatable).")] = None,
    target_class: Annotated[Optional[int], typer.Option(help="Classifiers: make the model see this class.")] = None,
    kappa: Annotated[Optional[float], typer.Option(help="Classifiers: confidence margin on the logits.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="MND optimisation steps per image (default: the strength's).")] = None,
    max_pixels: Annotated[int, typer.Option(help="Refuse images larger than this (decompression-bomb guard).")] = MAX_PIXELS,
    trust_model_code: Annotated[bool, typer.Option("--trust-model-code", help=TRUST_HELP)] = False,
) -> None:
    """Protect a photo library on Ray: `advpriv protect`'s pipeline, one file per task, models loaded once per actor;
    resumes by skipping inputs whose output exists and verifies. Needs `pip install 'advpriv\\[scale]'`."""
    if fmt not in ("png", "jpg"):
        _fail(f"unknown format {fmt!r}; choose png or jpg.", 2)
    try:
        job = ProtectJob(target=target, method=method, strength=strength, steps=steps, kappa=kappa,
                         target_class=target_class, mode=mode, as_photos=tuple(map(str, as_photos or ())),
                         aligned=aligned, embedders=tuple(embedder or ()), dlib=dlib, facenet=facenet,
                         judges=tuple(judge or ()),
                         trust_model_code=trust_model_code)
        job.protector()  # load the models here once, so that bad options fail before any actor starts
    except (ValueError, RuntimeError) as e:
        _fail(str(e), 2)
    if importlib.util.find_spec("ray") is None:
        _fail("advpriv batch needs Ray; install it with: pip install 'advpriv[scale]' (make setup does).", 2)
    plan = plan_batch(inputs, outdir, fmt, force)
    if not plan.outputs and not plan.done:
        _fail("no images found in the inputs given; name image files or folders that contain some.", 2)
    for line in skipped_lines(plan.skipped):
        console.print(f"[yellow]skipped[/yellow] {escape(line)}")
    for note in plan.notes:
        console.print(f"[yellow]warning[/yellow] {escape(note)}")
    reports = []
    if plan.outputs:
        from advpriv.scale.ray_batch import connect, protect_on_ray

        connect(ray_address)
        reports = protect_on_ray(plan, outdir, job, fmt=fmt, max_pixels=max_pixels, seed=seed, actors=actors,
                                 threads=threads)
    for r in reports:
        if r.error:
            console.print(f"[red]error[/red] {escape(r.error)}")
    failed = sum(bool(r.error) or not r.success for r in reports)
    console.print(f"{len(reports) - failed} protected, {failed} not protected, {plan.done} skipped (their "
                  f"output exists and verifies; --force protects them again). Outputs and metrics in "
                  f"{escape(str(outdir))}.")
    raise typer.Exit(1 if failed else 0)


def _fail(message: str, code: int) -> None:
    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)
