"""`advpriv serve`: start the HTTP service with uvicorn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..model_trust import TRUST_HELP, UNTRUSTED_TORCHSCRIPT
from ..targets import names_file
from .connections import hardened_http
from .settings import TOKEN_ENV, ServeSettings, token_from_env


def share_cores(workers: int) -> int:
    """Give each worker an equal share of the cores (unless $OMP_NUM_THREADS says otherwise): concurrent
    protections that each ask for every core slow each other down far more than they gain."""
    import torch

    if not os.environ.get("OMP_NUM_THREADS"):
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))  # for the worker processes
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return torch.get_num_threads()


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on; keep 127.0.0.1 unless a proxy fronts it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[Optional[str], typer.Option(help=f"Bearer token required by the API (default: ${TOKEN_ENV}; unset: open).")] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest request body accepted, in MB.")] = 20.0,
    max_pixels: Annotated[int, typer.Option(help="Largest decoded image accepted (width × height).")] = ServeSettings.max_pixels,
    workers: Annotated[int, typer.Option(help="Photos protected at the same time.")] = 1,
    queue: Annotated[int, typer.Option(help="Requests that may wait beyond the workers; more are answered 503.")] = 4,
    timeout: Annotated[float, typer.Option(help="Seconds a request may take before it is answered 504.")] = 300.0,
    output_dir: Annotated[Optional[Path], typer.Option(help="Also save protected images here (default: nothing is written to disk).")] = None,
    features_run: Annotated[Optional[Path], typer.Option(help="DeepObfuscator run folder whose cloud classifier answers /v1/features/predict.")] = None,
    features_encoder: Annotated[str, typer.Option(help="Which encoder of that run the devices use: obfuscator, utility_only or nopeek.")] = "obfuscator",
    judge: Annotated[Optional[list[str]], typer.Option(help="Faces: one more judge of each result, an ONNX face model as PATH:threshold=T (e.g. mobilefacenet.onnx:threshold=0.79).")] = None,
    add_target: Annotated[Optional[list[str]], typer.Option(help="Offer one more classifier as NAME=SPEC (TorchScript file, which needs --trust-model-code, or module:factory).")] = None,
    trust_model_code: Annotated[bool, typer.Option("--trust-model-code", help=TRUST_HELP)] = False,
    max_request_pixels: Annotated[int, typer.Option(help="Most decoded pixels of all the photos in one request together.")] = ServeSettings.max_request_pixels,
    max_as_photos: Annotated[int, typer.Option(help="Most photos of the identity to impersonate (`as`) in one request.")] = ServeSettings.max_as_photos,
    header_timeout: Annotated[float, typer.Option(help="Seconds a client may take to send a request's headers.")] = ServeSettings.header_timeout,
    body_timeout: Annotated[float, typer.Option(help="Seconds a client may take to send a request's body (answered 408 after).")] = ServeSettings.body_timeout,
    max_uploads: Annotated[int, typer.Option(help="Request bodies received at the same time; more are answered 503.")] = ServeSettings.max_uploads,
    max_connections: Annotated[int, typer.Option(help="Open connections at most; more requests are answered 503.")] = 64,
    docs: Annotated[bool, typer.Option("--docs", help="Serve the interactive API docs at /docs (they load scripts from a CDN).")] = False,
) -> None:
    """Serve the protection API, the web page at /, and the DeepObfuscator cloud endpoint."""
    import uvicorn

    from advpriv.obfuscate.checkpoint import RunError

    from .app import create_app

    for spec in add_target or []:
        if "=" not in spec:
            raise typer.BadParameter(f"{spec!r} should be NAME=SPEC, e.g. mynet=model.pt", param_hint="--add-target")
        if names_file(spec.split("=", 1)[1]) and not trust_model_code:
            raise typer.BadParameter(f"{spec!r}: {UNTRUSTED_TORCHSCRIPT}", param_hint="--add-target")
    settings = ServeSettings(host=host, port=port, token=token_from_env(token), max_upload_bytes=int(max_upload_mb * 1e6),
                             max_pixels=max_pixels, workers=workers, queue_size=queue, timeout=timeout,
                             output_dir=output_dir, features_run=features_run, features_encoder=features_encoder,
                             judges=tuple(judge or ()), extra_targets=tuple(add_target or ()),
                             trust_model_code=trust_model_code,
                             max_request_pixels=max_request_pixels, max_as_photos=max_as_photos,
                             header_timeout=header_timeout, body_timeout=body_timeout, max_uploads=max_uploads,
                             docs=docs)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
    share_cores(workers)
    try:
        app = create_app(settings)
    except (RunError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo(f"advpriv serving on http://{host}:{port}/ (token {'required' if settings.token else 'not required'})",
               err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", http=hardened_http(header_timeout, max_connections))
