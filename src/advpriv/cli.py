"""Command line: `advpriv protect`, `advpriv demo`, `advpriv serve`, `advpriv obfuscator ...`. A thin layer over the Python API."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional, Sequence

import typer
from rich.console import Console

from rich.markup import escape

from . import progress
from .images import MAX_PIXELS
from .model_trust import TRUST_HELP
from .obfuscate.cli import app as obfuscator_app
from .protect import METHODS, merge_metrics
from .protect.batch import Plan, plan_batch, protect_planned, skipped_lines
from .protect.files import FACE_TARGET, FileReport, make_protector
from .protect.job import ProtectJob
from .protect.strength import strength_options
from .serve.cli import serve_command
from .scale.cli import batch_command
from .study.cli import app as study_app
from .run_view import RunView
from .summary import print_summary
from .models.cli import app as models_app
from .models.ensemble import missing_note

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False, help="Adversarial privacy for images."
)
app.add_typer(obfuscator_app, name="obfuscator")
app.add_typer(study_app, name="study")
app.add_typer(models_app, name="models")
app.command("serve")(serve_command)
app.command("batch")(batch_command)
console = Console(stderr=True)


@app.command("protect")
def protect_command(
    inputs: Annotated[list[Path], typer.Argument(metavar="INPUT...", help="Image files or folders (searched recursively).")],
    outdir: Annotated[Path, typer.Option("-o", "--outdir", metavar="DIR", help="Folder for the protected copies and metrics.")],
    target: Annotated[str, typer.Option(metavar="MODEL", help="What to protect against: dlib (faces), a face model file MODEL:similarity=S, a classifier name or file (see README).")] = FACE_TARGET,
    strength: Annotated[str, typer.Option(metavar="LEVEL", help="low, medium or high: how much change, how robust (see README).")] = "medium",
    method: Annotated[str, typer.Option(metavar="NAME", help=f"{', '.join(METHODS)}.")] = "mnd",
    fmt: Annotated[str, typer.Option("--format", metavar="FMT", help="png (lossless) or jpg.")] = "png",
    mode: Annotated[str, typer.Option(metavar="MODE", help="Faces: dodge (not recognised) or impersonate (as --as).")] = "dodge",
    as_photos: Annotated[Optional[list[Path]], typer.Option("--as", metavar="PHOTO", help="Faces: a photo of the identity to impersonate (repeatable).")] = None,
    aligned: Annotated[bool, typer.Option("--aligned", help="Faces: each image is one aligned face chip.")] = False,
    embedder: Annotated[Optional[list[str]], typer.Option("--embedder", metavar="SPEC", help="Faces: also attack this face model, MODEL:similarity=S (repeatable).")] = None,
    no_dlib: Annotated[bool, typer.Option("--no-dlib", help="Faces: leave dlib out of the attacked models.")] = False,
    no_facenet: Annotated[bool, typer.Option("--no-facenet", help="Faces: leave FaceNet out of them.")] = False,
    judge: Annotated[Optional[list[str]], typer.Option("--judge", metavar="SPEC", help="Faces: also judge the copies with this ONNX model, MODEL:threshold=T (repeatable).")] = None,
    target_class: Annotated[Optional[int], typer.Option(metavar="CLASS", help="Classifiers: the class it must see.")] = None,
    kappa: Annotated[Optional[float], typer.Option(metavar="K", help="Classifiers: margin on the logits.")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, metavar="N", help="Optimisation steps per image.")] = None,
    max_pixels: Annotated[int, typer.Option(metavar="N", help="Refuse larger images (decompression bombs).")] = MAX_PIXELS,
    force: Annotated[bool, typer.Option("--force", help="Protect again inputs already protected in DIR.")] = False,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed.")] = 0,
    trust_model_code: Annotated[bool, typer.Option("--trust-model-code", help=TRUST_HELP)] = False,
) -> None:
    """Protect photos: copies a person sees as unchanged but face recognition (or a classifier) misreads.

    Inputs already protected in DIR are skipped (--force protects them again). Options and examples: README."""
    if fmt not in ("png", "jpg"):
        _fail(f"unknown format {fmt!r}; choose png or jpg.")
    try:
        job = ProtectJob(target=target, method=method, strength=strength, steps=steps, kappa=kappa,
                         target_class=target_class, mode=mode, as_photos=tuple(map(str, as_photos or ())),
                         aligned=aligned, embedders=tuple(embedder or ()), dlib=not no_dlib, facenet=not no_facenet,
                         judges=tuple(judge or ()),
                         trust_model_code=trust_model_code)
        if target == FACE_TARGET and (note := missing_note(not no_facenet)):
            console.print(f"[yellow]note[/yellow] {escape(note)}")
        with console.status("loading the models…"):
            target, options = job.options()
    except ValueError as e:
        _fail(str(e))
    plan = plan_batch(inputs, outdir, fmt, force)
    if not plan.outputs and not plan.done:
        _fail("no images found in the inputs given; name image files or folders that contain some.")
    reports, interrupted = _run(plan, outdir, target=target, method=method, fmt=fmt, max_pixels=max_pixels,
                                seed=seed, **options)
    attacked = [e.name for e in options.get("embedders", ())]
    raise typer.Exit(_summarise(reports, outdir, interrupted, attacked, mode == "impersonate"))


@app.command("demo")
def demo_command(
    outdir: Annotated[Path, typer.Option("-o", "--outdir", help="Folder for the demo's inputs and outputs.")] = Path("demo-out"),
) -> None:
    """Protect scikit-image's bundled sample photos (astronaut, coffee, chelsea) against EfficientNet-Lite0, at the
    default strength (robust to the deployment's resize and to JPEG)."""
    from .demo import write_sample_images

    inputs = write_sample_images(outdir / "inputs")
    target = "efficientnet-lite0"
    plan = plan_batch(inputs, outdir / "protected", "png", force=True)
    reports, interrupted = _run(plan, outdir / "protected", target=target, method="mnd", fmt="png",
                                **strength_options("medium", target))
    raise typer.Exit(_summarise(reports, outdir / "protected", interrupted))


def _run(plan: Plan, outdir: Path, target: str, method: str, fmt: str, max_pixels: int = MAX_PIXELS, seed: int = 0,
         **options) -> tuple[list[FileReport], bool]:
    """Protect the plan's inputs; the reports of the files finished, and whether Ctrl-C or SIGTERM stopped the run."""
    for line in skipped_lines(plan.skipped):
        console.print(f"[yellow]skipped[/yellow] {escape(line)}")
    for note in plan.notes:
        console.print(f"[yellow]warning[/yellow] {escape(note)}")
    if plan.done:
        console.print(f"{plan.done} input(s) already protected in {escape(str(outdir))} (their output exists and verifies) were "
                      "skipped; --force protects them again.")
    if not plan.outputs:
        return [], False
    try:
        with console.status("loading the models…"):
            protector = make_protector(target, method, **options)
    except (ValueError, RuntimeError, OSError) as e:
        _fail(str(e))
    reports: list[FileReport] = []
    view = RunView(list(plan.outputs), console)
    try:
        with _sigterm_as_ctrl_c(), view.progress, progress.listening(view):
            view.start(0)
            for report in protect_planned(plan, protector, fmt, max_pixels, seed):
                reports.append(report)
                if report.error:
                    view.progress.console.print(f"[red]error[/red] {escape(report.error)}")
                view.start(len(reports))
    except KeyboardInterrupt:
        console.print(f"[red]interrupted[/red] after {len(reports)} of {len(plan.outputs)} files; the finished "
                      "files are written and recorded, run the same command again to resume.")
        return reports, True
    return reports, False


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (how a scheduler stops a job) handled as Ctrl-C, so the files finished are recorded and a run again
    resumes; only in the main thread, where Python handles signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _summarise(reports: list[FileReport], outdir: Path, interrupted: bool = False, attacked: Sequence[str] = (),
               impersonate: bool = False) -> int:
    """Print the summary (`advpriv.summary`) and merge the metrics files; the exit code is 130 if interrupted, 1 if
    any file failed. `attacked`: the face models attacked, by name."""
    if not reports:
        return 130 if interrupted else 0
    print_summary(reports, attacked, impersonate, Console())
    json_path, csv_path = merge_metrics(reports, outdir)
    console.print(f"metrics: {escape(str(json_path))} and {escape(str(csv_path))}")
    failed = [r for r in reports if r.error or not r.success]
    if failed:
        console.print(f"[red]{len(failed)} of {len(reports)} images were not protected.[/red]")
    return 130 if interrupted else 1 if failed else 0


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)
