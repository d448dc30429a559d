"""The rating page and its API for one study folder (`advpriv study serve DIR`).

Routes: `GET /` (the page), `GET /healthz`, `GET /v1/study` (pair ids, image URLs and sizes, timing; never the methods),
`GET /images/{name}`, `POST /v1/ratings` (one answer as JSON, with the rater's invitation token: the rater id is
the one bound to it, see `advpriv.study.invites`). The page's base styles come from the service's page
(`advpriv.serve`), its own from `study/static`. Bodies are read within the service's size and time limits
(`advpriv.serve.form.UploadGate`); `advpriv study serve` adds its header timeout and connection cap.

Example:
    >>> app = create_study_app(Path("study"))   # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8001)   # doctest: +SKIP
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException

from advpriv.serve.app import STATIC as SERVE_STATIC
from advpriv.serve.errors import ServiceError, problems, shown
from advpriv.serve.form import UploadGate
from advpriv.serve.settings import ServeSettings

from .invites import Invites
from .manifest import IMAGES, load_manifest
from .store import CHOICES, MODES, RATINGS, Rating, RatingStore

STATIC = files("advpriv.study") / "static"
IMAGE_NAME = re.compile(r"[\w\-]+\.png")
MAX_SECONDS = 3600.0  # a longer answer time is a tab left open, not time spent looking


MAX_ANSWER_BYTES = 4096  # one answer is under 200 bytes
PASSES = 3  # times a rater may go through the study in each mode (a reload starts again)


class Answer(BaseModel):
    """What the page sends for one trial; the method is looked up here, never sent by the page. Strict: a score
    is a JSON integer, never "5" or true."""

    model_config = ConfigDict(strict=True, extra="forbid")

    invite: str = Field(min_length=1, max_length=100)
    pair: str = Field(max_length=100)
    mode: str = Field(max_length=100)
    score: int | None = None
    choice: str | None = Field(default=None, max_length=100)
    seconds: float = Field(ge=0, allow_inf_nan=False)


def image_size(path: Path) -> tuple[int, int]:
    """Width and height of an image, from its header only."""
    with Image.open(path) as image:
        return image.size


def create_study_app(folder: Path, settings: ServeSettings = ServeSettings()) -> FastAPI:
    """The FastAPI app serving `folder`'s pairs and storing invited raters' answers in `folder/ratings.sqlite`;
    bodies within `settings.body_timeout` and `settings.max_uploads` at once."""
    folder = Path(folder)
    manifest = load_manifest(folder)
    Invites.load(folder)  # a damaged invitation file is refused at start-up
    store = RatingStore(folder / RATINGS)
    uploads = UploadGate(settings.max_uploads, settings.body_timeout)
    most = PASSES * len(MODES) * (len(manifest.pairs) + len(manifest.repeats))
    sizes = {p.id: image_size(folder / p.original_file) for p in manifest.pairs}  # the page checks the window with them
    app = FastAPI(title="advpriv rating study", docs_url="/docs", redoc_url=None)

    def rater_of(invite: str) -> str:
        rater = Invites.load(folder).rater_of(invite)  # read each time: `study report --drop` acts at once
        if rater is None:
            raise ServiceError(403, "not_invited", "this page was not opened from a valid invitation link; open the "
                                                   "link the study's organiser sent you.")
        if store.count(rater) >= most:
            raise ServiceError(429, "too_many_answers", f"this invitation has given {most} answers, as many as "
                                                        f"{PASSES} full passes in each mode; thank you, you are done.")
        return rater

    def rating_of(answer: Answer) -> Rating:
        try:
            pair = manifest.pair(answer.pair)
        except KeyError:
            raise ServiceError(422, "unknown_pair", f"pair {shown(answer.pair)} is not in this study; reload the "
                                                    "page.") from None
        if answer.mode not in MODES:
            raise ServiceError(422, "bad_mode", f"mode {shown(answer.mode)} is unknown; use one of {', '.join(MODES)}.")
        dsis = answer.mode == "dsis"
        if dsis and (answer.score not in range(1, 6) or answer.choice is not None):
            raise ServiceError(422, "bad_score", "an impairment rating needs a score from 1 to 5 and no choice.")
        if not dsis and (answer.choice not in CHOICES or answer.score is not None):
            raise ServiceError(422, "bad_choice", f"a forced choice needs choice {' or '.join(CHOICES)} and no score.")
        return Rating(rater_of(answer.invite), pair.id, pair.method, answer.mode, answer.score, answer.choice,
                      round(min(answer.seconds, MAX_SECONDS), 3))

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, e: ServiceError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        message = f"nothing at {request.url.path}; the rating page is at /." if e.status_code == 404 else str(e.detail)
        return JSONResponse(ServiceError(e.status_code, "http_error", message).body(), status_code=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        return JSONResponse(ServiceError(422, "bad_request", problems(e.errors())).body(), status_code=422)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "pairs": len(manifest.pairs)}

    @app.get("/v1/study")
    async def study() -> dict:
        return {"pairs": [{"id": p.id, "original": p.original_file, "changed": p.changed_file, "width": sizes[p.id][0],
                           "height": sizes[p.id][1]} for p in manifest.pairs],
                "repeats": manifest.repeats, "show_seconds": manifest.show_seconds,
                "gap_seconds": manifest.gap_seconds, "modes": list(MODES)}

    @app.post("/v1/ratings", status_code=201, openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": Answer.model_json_schema()}}}})
    async def rate(request: Request) -> dict:
        body = await uploads.read(request, MAX_ANSWER_BYTES)
        try:
            answer = Answer.model_validate_json(body)
        except ValidationError as e:
            raise ServiceError(422, "bad_request", f"{problems(e.errors())}; send one answer as JSON with "
                                                   "invite, pair, mode, score (an integer 1 to 5) or choice, and "
                                                   "seconds.") from None
        store.add(rating_of(answer))
        return {"stored": True}

    @app.get(f"/{IMAGES}/{{name}}")
    async def image(name: str) -> FileResponse:
        path = folder / IMAGES / name
        if not IMAGE_NAME.fullmatch(name) or not path.is_file():
            raise ServiceError(404, "not_found", f"no image named {shown(name)} in this study.")
        return FileResponse(path, media_type="image/png")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text())

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.mount("/base", StaticFiles(directory=str(SERVE_STATIC)), name="base")
    return app
