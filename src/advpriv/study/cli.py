"""`advpriv study make | invite | serve | report`: build a rating study, invite raters, serve its page, report what
raters saw."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from advpriv.images import ImageError

from advpriv.serve.settings import ServeSettings

from .invites import MAX_INVITES, Invites, add_invites, drop_rater, invitation_lines
from .manifest import NOISE, StudyError, load_manifest

DEFAULT_URL = "http://127.0.0.1:8001"

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
    raters: Annotated[int, typer.Option(min=1, max=MAX_INVITES, help="Raters to invite: one secret link each, printed once (more later with `advpriv study invite`).")] = 10,
    url: Annotated[str, typer.Option(help="Where raters will reach `advpriv study serve`, for the printed links.")] = DEFAULT_URL,
) -> None:
    """Build a study folder from originals and each method's protected outputs, plus hidden references, and print
    one invitation link per rater."""
    from .make import make_study

    try:
        manifest = make_study(originals, _methods(method), folder, identical, noisy, repeats, noise_psnr,
                              show_seconds, gap_seconds, seed)
        links = add_invites(folder, raters)
    except (StudyError, ImageError) as e:
        _fail(str(e))
    counts = {m: sum(p.method == m for p in manifest.pairs) for m in manifest.methods()}
    noise = [p.psnr for p in manifest.pairs if p.method == NOISE]
    typer.echo(f"{folder}: {len(manifest.pairs)} pairs ({', '.join(f'{m} {n}' for m, n in counts.items())}); "
               f"repeated: {', '.join(manifest.repeats) or 'none'}"
               + (f"; noisy references at {', '.join(f'{v:.2f}' for v in noise)} dB" if noise else ""))
    typer.echo(f"serve it with: advpriv study serve {folder}")
    _print_links(links, url)


def _print_links(links: dict[str, str], url: str) -> None:
    typer.echo("invitation links, one per rater (only these can answer; they are not stored, keep them):")
    for line in invitation_lines(links, url):
        typer.echo(line)


@app.command("invite")
def invite_command(
    folder: Annotated[Path, typer.Argument(help="Study folder.")],
    count: Annotated[int, typer.Option(min=1, max=MAX_INVITES, help="Raters to invite.")] = 1,
    name: Annotated[str, typer.Option(help="Rater id prefix: ids are NAME-01, NAME-02, ...; start it with `agent-` for a machine rater.")] = "r",
    url: Annotated[str, typer.Option(help="Where raters reach `advpriv study serve`, for the printed links.")] = DEFAULT_URL,
) -> None:
    """Invite more raters to a study: print one new secret link each."""
    try:
        load_manifest(folder)
        links = add_invites(folder, count, name)
    except StudyError as e:
        _fail(str(e))
    _print_links(links, url)


@app.command("serve")
def serve_command(
    folder: Annotated[Path, typer.Argument(help="Study folder (from `advpriv study make`).")],
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 lets raters on the network reach it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    header_timeout: Annotated[float, typer.Option(help="Seconds a client may take to send a request's headers.")] = ServeSettings.header_timeout,
    body_timeout: Annotated[float, typer.Option(help="Seconds a client may take to send a request's body (answered 408 after).")] = ServeSettings.body_timeout,
    max_uploads: Annotated[int, typer.Option(help="Request bodies received at the same time; more are answered 503.")] = ServeSettings.max_uploads,
    max_connections: Annotated[int, typer.Option(help="Open connections at most; more requests are answered 503.")] = 64,
) -> None:
    """Serve the rating page to invited raters; answers go to FOLDER/ratings.sqlite."""
    import uvicorn

    from advpriv.serve.connections import hardened_http

    from .app import create_study_app

    settings = ServeSettings(host=host, port=port, header_timeout=header_timeout, body_timeout=body_timeout,
                             max_uploads=max_uploads)
    try:
        app = create_study_app(folder, settings)
    except StudyError as e:
        _fail(str(e))
    typer.echo(f"rating study on http://{host}:{port}/ (answers stored in {folder / 'ratings.sqlite'})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", http=hardened_http(header_timeout, max_connections))


@app.command("report")
def report_command(
    folder: Annotated[Path, typer.Argument(help="Study folder.")],
    chart: Annotated[Optional[Path], typer.Option(help="Bar chart to write (default: FOLDER/report.png).")] = None,
    raters: Annotated[bool, typer.Option("--raters", help="List every rater: answers, consistency, kept or left out.")] = False,
    drop: Annotated[Optional[list[str]], typer.Option(help="Drop a suspicious rater: their link stops working and their ratings are left out of every report (kept in ratings.sqlite). Repeatable.")] = None,
) -> None:
    """Print MOS and detection rate per method with 95 % intervals, and the raters screened out; write a chart."""
    from .report import format_raters, format_report, study_report, write_chart

    try:
        known = set(study_report(folder).all_raters()) | set(Invites.load(folder).digests) if drop else set()
        for rater in drop or []:
            if rater not in known:
                _fail(f"no rater named {rater[:60]!r} in this study; `advpriv study report {folder} --raters` "
                      "lists them.")
            drop_rater(folder, rater)
            typer.echo(f"dropped {rater}: their link no longer works and their ratings are left out.")
        report = study_report(folder)
    except StudyError as e:
        _fail(str(e))
    if raters:
        typer.echo(format_raters(report))
        typer.echo()
    typer.echo(format_report(report))
    group, title = ((report.humans, "Human raters") if report.humans.raters else
                    (report.agents, "Machine raters only: a pipeline check, not human opinion"))
    if not group.methods:
        typer.echo("No ratings yet, so no chart was written.")
        return
    path = write_chart(group, chart or folder / "report.png", title)
    typer.echo(f"chart: {path}")
