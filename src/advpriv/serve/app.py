"""`advpriv serve`: the HTTP API and web page, a thin layer over `advpriv.protect` and the DeepObfuscator run.

Routes: `GET /` (web page), `GET /healthz`, `GET /v1/version`, `POST /v1/protect`, `GET /v1/progress/{job}` (a
protection's stage, step and time left while it runs, see `advpriv.serve.board`), `POST /v1/features/predict`,
`GET /v1/outputs/{name}` (only with an output folder), `GET /docs` (only when asked for). With a token set, the /v1
routes that do work need `Authorization: Bearer <token>`; the page, health and version stay open. Protections run
in worker processes that are killed at the request's deadline (see `advpriv.serve.isolate`).

Example:
    >>> app = create_app(ServeSettings(queue_size=2))   # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import math
import re
import uuid
from dataclasses import asdict
from functools import partial
from importlib.resources import files
from pathlib import Path
from urllib.parse import quote

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from advpriv import __version__
from advpriv.faces import MODES
from advpriv.faces.verdicts import protection_verdict
from advpriv.feature_wire import FeatureError, decode_features
from advpriv.images import atomic_write
from advpriv.models.ensemble import ensemble
from advpriv.protect import METHODS
from advpriv.protect.files import FACE_TARGET, FileReport
from advpriv.protect.strength import STRENGTHS

from .board import JOB_HEADER, ProgressBoard
from .errors import ServiceError, problems, shown
from .features import CloudClassifier
from .form import Upload, UploadGate, parse_form
from .isolate import ProcessPool, WorkerDied
from .jobs import CHOICES, DEFAULTS, MEDIA_TYPES, ProtectRequest, judges_of, offered_targets, protect_upload, warm
from .settings import ServeSettings
from .sniff import photo_pixels, require_photo
from .work import Busy, WorkQueue

STATIC = files("advpriv.serve") / "static"
STARTING_RETRY_S = 5  # a worker process imports torch and loads the face models in about 3-5 s on 2 busy cores


def create_app(settings: ServeSettings = ServeSettings()) -> FastAPI:
    """The FastAPI app; the worker processes start (and load the face models) with the server."""
    app = FastAPI(title="advpriv", version=__version__, redoc_url=None, docs_url="/docs" if settings.docs else None)
    queue = WorkQueue(settings.workers, settings.queue_size)
    workers = ProcessPool(settings.workers, partial(warm, settings))
    uploads = UploadGate(settings.max_uploads, settings.body_timeout)
    cloud = CloudClassifier(settings.features_run, settings.features_encoder) if settings.features_run else None
    targets = offered_targets(settings)
    judges = judges_of(settings)
    members = [m.describe() for m in ensemble()]  # the face models every face request attacks
    board = ProgressBoard()
    app.state.queue, app.state.settings = queue, settings

    def require_token(request: Request) -> None:
        if settings.token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), settings.token.encode()):
            raise ServiceError(401, "unauthorized", "this server needs an access token: send the header "
                                                    "`Authorization: Bearer <token>` (ask whoever runs it).")

    def options_of(fields: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(fields) - set(DEFAULTS))
        if unknown:
            raise ServiceError(422, "bad_option", f"unknown form field(s) {shown(', '.join(unknown), quote=False)}; "
                                                  f"the fields are image, {', '.join(DEFAULTS)}.")
        options = {**DEFAULTS, **{k: v for k, v in fields.items() if v != ""}}
        for key, allowed in {**CHOICES, "target": tuple(targets)}.items():
            if options[key] not in allowed:
                raise ServiceError(422, "bad_option", f"{key} {shown(options[key])} is not offered here; choose one of "
                                                      f"{', '.join(allowed)}.")
        return options

    def photos_of(files: dict[str, list[Upload]], mode: str | None) -> tuple[list[Upload], list[Upload]]:
        """The photo to protect and the `as` photos of the identity to impersonate, each sniffed; 4xx otherwise.

        mode: the faces' mode, None for a classifier target.
        """
        unknown = sorted(set(files) - {"image", "as"})
        if unknown:
            raise ServiceError(422, "bad_option", f"unknown file field(s) {shown(', '.join(unknown), quote=False)}; "
                                                  "send the photo as `image` and, to impersonate, the target's photos "
                                                  "as `as`.")
        image, as_photos = [u for u in files.get("image", []) if u.data], [u for u in files.get("as", []) if u.data]
        if len(image) != 1:
            raise ServiceError(422, "missing_image", "no photo received: send it in the multipart field `image`."
                               if not image else "send one photo per request in the field `image`.")
        if mode == "impersonate" and not as_photos:
            raise ServiceError(422, "missing_identity", "impersonation needs photos of the target identity: send "
                                                        "one or more in the multipart field `as`.")
        if as_photos and mode != "impersonate":
            raise ServiceError(422, "bad_option", "`as` photos are only used to impersonate a face (target=dlib, "
                                                  "mode=impersonate); send those options or leave them out.")
        if len(as_photos) > settings.max_as_photos:
            raise ServiceError(422, "too_many_photos", f"{len(as_photos)} `as` photos sent; this server takes at most "
                                                       f"{settings.max_as_photos}: send the clearest ones.")
        for upload in image + as_photos:
            require_photo(upload.data, _safe_name(upload.filename))
        require_pixel_budget(image + as_photos)
        return image, as_photos

    def require_pixel_budget(uploads: list[Upload]) -> None:
        """Refuse (413) before decoding anything when a photo, or all of them together, has too many pixels."""
        total = 0
        for upload in uploads:
            name = _safe_name(upload.filename)
            pixels = photo_pixels(upload.data, name)
            if pixels > settings.max_pixels:
                raise ServiceError(413, "too_large", f"{name}: {pixels:,} pixels; this server decodes at most "
                                                     f"{settings.max_pixels:,} per photo. Downscale it first.")
            total += pixels
        if total > settings.max_request_pixels:
            raise ServiceError(413, "too_large", f"the photos of this request hold {total:,} pixels together; this "
                                                 f"server decodes at most {settings.max_request_pixels:,} per "
                                                 "request. Send fewer or smaller photos.")

    async def run(job, what: str):
        try:
            return await queue.run(job, settings.timeout)
        except WorkerDied:
            raise ServiceError(500, "worker_died", f"the worker stopped while {what}, most often for lack of "
                                                   "memory; try a smaller photo.") from None
        except Busy as e:
            raise ServiceError(503, "busy", f"the server is busy; try again in {e.retry_after} s.",
                               {"Retry-After": str(e.retry_after)}) from None
        except (asyncio.TimeoutError, TimeoutError):
            raise ServiceError(504, "timeout", f"{what} took longer than this server's limit of "
                                               f"{settings.timeout:g} s of work (time waiting in the queue not "
                                               "counted); try a smaller photo.") from None

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, e: ServiceError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        message = {404: f"nothing at {request.url.path}; the API is under /v1 (described at /openapi.json) and the "
                        "page is at /.",
                   405: f"{request.method} is not allowed on {request.url.path}; /openapi.json gives each route's "
                        "method."}
        error = ServiceError(e.status_code, code, message.get(e.status_code, str(e.detail)))
        return JSONResponse(error.body(), status_code=e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        return JSONResponse(ServiceError(422, "bad_request", problems(e.errors())).body(), status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, e: Exception) -> JSONResponse:
        message = f"internal error ({type(e).__name__}); the server log has the details."
        return JSONResponse(ServiceError(500, "internal", message).body(), status_code=500)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """200 "ok" once a worker can take a protection; 503 "starting" (with Retry-After) until then."""
        starting = workers.starting()
        ready = starting < settings.workers
        return JSONResponse({"status": "ok" if ready else "starting", "queue": queue.status(),
                             "receiving": uploads.receiving, "workers": {"total": settings.workers, "starting": starting}},
                            status_code=200 if ready else 503,
                            headers=None if ready else {"Retry-After": str(STARTING_RETRY_S)})

    @app.get("/v1/version")
    async def version() -> dict:
        return {"advpriv": __version__, "torch": torch.__version__, "targets": list(targets), "methods": METHODS,
                "modes": MODES, "strengths": list(STRENGTHS), "formats": list(MEDIA_TYPES), "judges": [j.name for j in judges],
                "ensemble": members, "face_budgets": {name: asdict(level.visibility) if level.visibility else None
                                                      for name, level in STRENGTHS.items()},
                "recent": queue.recent(),
                "features": cloud.describe() if cloud else None, "token_required": settings.token is not None,
                "limits": {"max_upload_bytes": settings.max_upload_bytes, "max_pixels": settings.max_pixels,
                           "max_request_pixels": settings.max_request_pixels, "max_as_photos": settings.max_as_photos,
                           "timeout_s": settings.timeout, "queue": queue.capacity}}

    def field(choices, description: str) -> dict:
        return {"type": "string", "enum": list(choices), "description": description}

    protect_form = {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "format": "binary", "description": "The photo; its type is read from its bytes."},
        "as": {"type": "array", "items": {"type": "string", "format": "binary"},
               "description": "mode=impersonate: photos of the identity to be recognised as (one or more)."},
        "target": field(targets, "dlib: every face in the photo; otherwise a classifier."),
        "method": field(METHODS, "mnd (minimum noticeable difference) or an anchor attack."),
        "mode": field(MODES, "Faces: dodge (not recognised) or impersonate."),
        "strength": field(STRENGTHS, "low: least visible, optimised on the file as written only; medium: also against a random "
                                    "resize/JPEG/blur, within a per-face visibility budget; high: twice the margin, "
                                    "harsher re-encodings, a looser budget (see /v1/version `face_budgets`)."),
        "format": field(MEDIA_TYPES, "Output format; png keeps the protection exactly."),
        "response": field(CHOICES["response"], "image: the protected file; json: report plus base64 image."),
    }}
    binary = {"schema": {"type": "string", "format": "binary"}}

    @app.post("/v1/protect", openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": protect_form}}}})
    async def protect_route(request: Request) -> Response:
        require_token(request)
        form = parse_form(await uploads.read(request, settings.max_upload_bytes), request.headers.get("content-type", ""))
        options = options_of(form.fields)
        image, as_uploads = photos_of(form.files, options["mode"] if options["target"] == FACE_TARGET else None)
        filename = _safe_name(image[0].filename)
        job = ProtectRequest(image[0].data, filename, options, tuple((_safe_name(u.filename), u.data) for u in as_uploads))
        if workers.starting() == settings.workers:
            raise ServiceError(503, "starting", f"the server's worker process is starting (it loads the face models); "
                                                f"try again in {STARTING_RETRY_S} s.",
                               {"Retry-After": str(STARTING_RETRY_S)})
        job_id = request.headers.get(JOB_HEADER)
        if job_id is not None:
            board.open(job_id)
        try:
            listener = board.listener(job_id) if job_id else None
            data, report = await run(lambda deadline: workers.call(protect_upload, (settings, job), deadline, listener),
                                     "protecting this photo")
        finally:
            if job_id is not None:
                board.close(job_id)
        name = f"{Path(filename).stem}.protected.{options['format']}"
        saved = _save(settings.output_dir, name, data)
        if options["response"] == "image":
            headers = {"Content-Disposition": _attachment(name),
                       "X-Advpriv-Success": str(report.success).lower(),
                       "X-Advpriv-PSNR": f"{report.metrics['psnr']:.3f}",
                       "X-Advpriv-SSIM": f"{report.metrics['ssim']:.6f}"}
            return Response(data, media_type=MEDIA_TYPES[options["format"]], headers=headers)
        attacked = [m["name"] for m in members] if options["target"] == FACE_TARGET else [options["target"]]
        return JSONResponse(report_json(report, options, attacked, data, name, saved))

    @app.get("/v1/progress/{job}")
    async def progress_route(job: str, request: Request) -> dict:
        """The stage ("waiting", "reading", "preparing", "protecting", "checking"), step, total and seconds left
        of the protection sent with this job id, with how long the last jobs took here."""
        require_token(request)
        report = board.read(job)
        if report is None:
            raise ServiceError(404, "no_job", "no protection with this job id is running here (it has not started "
                                              f"or has ended); send one with the header {JOB_HEADER}.")
        return {**report, "recent": queue.recent()}

    @app.post("/v1/features/predict", openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-npy": binary, "application/octet-stream": binary}}})
    async def predict_route(request: Request) -> dict:
        require_token(request)
        if cloud is None:
            raise ServiceError(404, "no_features_model", "this server has no cloud classifier; start it with "
                                                         "`advpriv serve --features-run RUN_FOLDER`.")
        body = await uploads.read(request, settings.max_upload_bytes)
        try:
            features = decode_features(body, cloud.feature_shape)
        except FeatureError as e:
            raise ServiceError(422 if e.shape_mismatch else 415, "bad_features", str(e)) from None
        predictions = await run(lambda deadline: cloud.predict(features), "predicting")
        return {"attribute": cloud.attribute, "encoder": cloud.encoder, "predictions": predictions}

    @app.get("/v1/outputs/{name}")
    async def output_route(name: str, request: Request) -> FileResponse:
        require_token(request)
        path = settings.output_dir / name if settings.output_dir and _SAVED.fullmatch(name) else None
        if path is None or not path.is_file():
            raise ServiceError(404, "not_found", f"no saved output named {name!r} on this server.")
        return FileResponse(path)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        index = STATIC / "index.html"
        if not index.is_file():
            raise ServiceError(404, "no_page", "the web page is not installed; use the API at /v1/protect.")
        return HTMLResponse(index.read_text())

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.router.on_startup.append(workers.start)
    app.router.on_shutdown.extend([queue.shutdown, workers.stop])
    return app


_SAVED = re.compile(r"[0-9a-f]{32}-[\w.\-]+")


def _safe_name(filename: str) -> str:
    """The upload's base name with only letters, digits, dot, dash and underscore (for headers and paths)."""
    name = re.sub(r"[^\w.\-]", "_", Path(filename or "photo").name).strip("._") or "photo"
    return name[:100]


def _attachment(name: str) -> str:
    """A Content-Disposition header for `name`: an ASCII fallback and the exact name as RFC 5987 `filename*`.

    >>> print(_attachment("日本 photo.protected.png"))
    attachment; filename="___photo.protected.png"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%20photo.protected.png
    """
    fallback = re.sub(r"[^A-Za-z0-9.\-_]", "_", name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _save(output_dir: Path | None, name: str, data: bytes) -> str | None:
    """Write to the output folder under a fresh unique name (never overwriting), when one is configured."""
    if output_dir is None:
        return None
    saved = f"{uuid.uuid4().hex}-{name}"
    atomic_write(output_dir / saved, data)
    return saved


def report_json(report: FileReport, options: dict[str, str], attacked: list[str], data: bytes, name: str,
                saved: str | None = None) -> dict:
    """/v1/protect's JSON answer: the report, its one verdict (`protection_verdict`: `attacked` names the models
    optimised against), the options, and the protected file `name` (its bytes in base64; its URL when `saved`)."""
    impersonate = options["mode"] == "impersonate" and options["target"] == FACE_TARGET
    return {
        "success": report.success, "summary": report.after, "before": report.before,
        "verdict": protection_verdict(report.success, report.variants, attacked, impersonate),
        **{k: options[k] for k in ("target", "method", "mode", "strength")},
        "seconds": round(report.seconds, 3),
        "metrics": {k: _number(v) for k, v in report.metrics.items()},
        "faces": [_finite_quality(face) for face in report.faces],
        "variants": {copy: {**v, "faces": [_finite_quality(face) for face in v["faces"]]}
                     for copy, v in report.variants.items()},
        "survival": report.survival,
        "filename": name, "media_type": MEDIA_TYPES[options["format"]],
        "image_base64": base64.b64encode(data).decode(),
        **({"url": f"/v1/outputs/{quote(saved)}"} if saved else {}),
    }


def _finite_quality(face: dict) -> dict:
    """A face's verdict entry with its quality numbers made JSON-safe (see `_number`)."""
    if "quality" not in face:
        return face
    return {**face, "quality": {k: _number(v) for k, v in face["quality"].items()}}


def _number(value: float) -> float | None:
    """JSON has no infinity: an unchanged image's PSNR becomes null."""
    return value if math.isfinite(value) else None
