"""`advpriv study make | serve | report`: build a rating study, serve its page, report what raters saw."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from advpriv.images import ImageError

from .manifest import NOISE, StudyError

app = typer.Typer(no_args_is_help=True, help="Rating study: what people see (MOS and forced-choice detection).")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _methods(specs: list[str]) -> dict[str, Path]:
    methods: dict[str, Path] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            _fail(f"--method {spec!r} should be NAME=DIR, e.g. --method mnd=out/mnd")
        if name in methods:
            _fail(f"method {name!r} is given twice; give each method one folder.")
        if not Path(folder).is_dir():
            _fail(f"--method {name}: {folder} is not a folder; name the folder `advpriv protect -o` wrote.")
        methods[name] = Path(folder)
    return methods


@app.command("make")
def make_command(
    folder: Annotated[Path, typer.Argument(help="New study folder to create.")],
    originals: Annotated[Path, typer.Option(help="Folder of the original photos.")],
    method: Annotated[list[str], typer.Option(help="NAME=DIR: a method's outputs (<stem>.protected.png|jpg), matched to the originals by stem (repeatable).")],
    identical: Annotated[int, typer.Option(min=0, help="Hidden references: pairs of an original with itself.")] = 2,
    noisy: Annotated[int, typer.Option(min=0, help="Hidden references: an original against a strongly noised copy.")] = 2,
    noise_psnr: Annotated[float, typer.Option(min=10.0, max=60.0, help="PSNR of the noisy references, in dB.")] = 30.0,
    repeats: Annotated[int, typer.Option(min=0, help="Pairs every rater sees twice (consistency check).")] = 2,
    show_seconds: Annotated[float, typer.Option(min=0.1, help="Seconds each photo of a pair is shown (impairment scale).")] = 3.0,
    gap_seconds: Annotated[float, typer.Option(min=0.0, help="Seconds of mid-grey after each photo.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed for the references' choice, the noise and the pair ids.")] = 0,
) -> None:
    """Build a study folder from originals and each method's protected outputs, plus hidden references."""
    from .make import make_study

    try:
        manifest = make_study(originals, _methods(method), folder, identical, noisy, repeats, noise_psnr,
                              show_seconds, gap_seconds, seed)
    except (StudyError, ImageError) as e:
        _fail(str(e))
    counts = {m: sum(p.method == m for p in manifest.pairs) for m in manifest.methods()}
    noise = [p.psnr for p in manifest.pairs if p.method == NOISE]
    typer.echo(f"{folder}: {len(manifest.pairs)} pairs ({', '.join(f'{m} {n}' for m, n in counts.items())}); "
               f"repeated: {', '.join(manifest.repeats) or 'none'}"
               + (f"; noisy references at {', '.join(f'{v:.2f}' for v in noise)} dB" if noise else ""))
    typer.echo(f"serve it with: advpriv study serve {folder}")


@app.command("serve")
def serve_command(
    folder: Annotated[Path, typer.Argument(help="Study folder (from `advpriv study make`).")],
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 lets raters on the network reach it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
) -> None:
    """Serve the rating page; answers go to FOLDER/ratings.sqlite."""
    import uvicorn

    from .app import create_study_app

    try:
        app = create_study_app(folder)
    except StudyError as e:
        _fail(str(e))
    typer.echo(f"rating study on http://{host}:{port}/ (answers stored in {folder / 'ratings.sqlite'})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@app.command("report")
def report_command(
    folder: Annotated[Path, typer.Argument(help="Study folder.")],
    chart: Annotated[Optional[Path], typer.Option(help="Bar chart to write (default: FOLDER/report.png).")] = None,
) -> None:
    """Print MOS and detection rate per method with 95 % intervals, and the raters screened out; write a chart."""
    from .report import format_report, study_report, write_chart

    try:
        report = study_report(folder)
    except StudyError as e:
        _fail(str(e))
    typer.echo(format_report(report))
    group, title = ((report.humans, "Human raters") if report.humans.raters else
                    (report.agents, "Machine raters only: a pipeline check, not human opinion"))
    if not group.methods:
        typer.echo("No ratings yet, so no chart was written.")
        return
    path = write_chart(group, chart or folder / "report.png", title)
    typer.echo(f"chart: {path}")
