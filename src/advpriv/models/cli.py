"""`advpriv models`: list the face ensemble, add your own ONNX model once, fetch a public one, remove one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from advpriv.models.download import DownloadError, fetch
from advpriv.models.ensemble import ensemble, missing_note
from advpriv.models.registry import REGISTRY
from advpriv.models.user_models import UserModelsError, add_model, read_models, remove_model

app = typer.Typer(help="Face models: list the ensemble, add your own, fetch public ones.", no_args_is_help=True)
console = Console()


def _fail(message: str, code: int = 2) -> None:
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


@app.command("list")
def list_command() -> None:
    """Show the face models `advpriv protect` attacks by default, with their input contract and licence."""
    try:
        members = ensemble()
    except UserModelsError as e:
        _fail(str(e))
    table = Table(title="Face ensemble")
    for column in ("Model", "From", "Contract", "Licence"):
        table.add_column(column, overflow="fold")
    for m in members:
        table.add_row(escape(m.name), escape(m.origin), escape(m.contract), escape(m.licence))
    console.print(table)
    for m in members:
        if m.warning:
            console.print(f"[yellow]warning:[/yellow] {escape(m.warning)}")
    if note := missing_note():
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    console.print(f"Public models to fetch (advpriv models fetch NAME): {', '.join(REGISTRY)}")


@app.command("add")
def add_command(
    path: Annotated[Path, typer.Argument(help="Your face model, an ONNX file (N,3,S,S) -> (N,D).")],
    similarity: Annotated[Optional[float], typer.Option(help="Two faces match at cosine similarity >= S.")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Two faces match below this distance.")] = None,
    size: Annotated[Optional[int], typer.Option(help="Input side in pixels (default: the model's, else 112).")] = None,
    align: Annotated[Optional[str], typer.Option(help="arcface (default) or dlib.")] = None,
    value_range: Annotated[Optional[str], typer.Option("--range", help="0..1 (default), -1..1 or 0..255.")] = None,
    metric: Annotated[Optional[str], typer.Option(help="cosine (default) or l2.")] = None,
    name: Annotated[Optional[str], typer.Option(help="How reports call it (default: the file's stem).")] = None,
    licence: Annotated[str, typer.Option(help="The model's licence, shown by advpriv models list.")] = "not stated",
) -> None:
    """Record your face model and its input contract once; advpriv protect then attacks it with the others."""
    given = {"similarity": similarity, "threshold": threshold, "size": size, "align": align, "range": value_range,
             "metric": metric, "name": name}
    try:
        model = add_model(path, {k: str(v) for k, v in given.items() if v is not None}, licence)
    except UserModelsError as e:
        _fail(str(e))
    console.print(f"added {escape(model.name)} ({escape(model.path)}); advpriv protect now attacks it too")


@app.command("remove")
def remove_command(name: Annotated[str, typer.Argument(help="The model's name, as models list shows it.")]) -> None:
    """Take an added or fetched model out of the ensemble (its file is left where it is)."""
    try:
        model = remove_model(name)
    except UserModelsError as e:
        _fail(str(e))
    console.print(f"removed {escape(model.name)} from the ensemble; {escape(model.path)} was left in place")


@app.command("fetch")
def fetch_command(name: Annotated[str, typer.Argument(help="A public model: " + ", ".join(REGISTRY) + ".")]) -> None:
    """Download a public face model once into your cache (checked by SHA-256) and add it to the ensemble."""
    entry = REGISTRY.get(name)
    if entry is None:
        _fail(f"no public model called {name!r}; choose one of {', '.join(REGISTRY)}")
    columns = (TextColumn(escape(entry.name)), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("fetch", total=entry.size)
            path = fetch(entry, lambda done, total: progress.update(task, completed=done))
        console.print(f"{escape(entry.name)} ({escape(entry.licence)}) is at {escape(str(path))}")
        if entry.loader is None and all(m.name != entry.name for m in read_models()):
            add_model(path, entry.contract | {"name": entry.name}, entry.licence)
            console.print(f"added {escape(entry.name)} to the ensemble; advpriv models remove {escape(name)} drops it")
    except (DownloadError, UserModelsError) as e:
        _fail(str(e), 1)
