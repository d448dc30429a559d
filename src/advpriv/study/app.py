"""The rating page and its API for one study folder (`advpriv study serve DIR`).

Routes: `GET /` (the page), `GET /healthz`, `GET /v1/study` (pair ids, image URLs, timing; never the methods),
`GET /images/{name}`, `POST /v1/ratings` (one answer as JSON). The page's base styles come from the service's
page (`advpriv.serve`), its own from `study/static`.

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
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from advpriv.serve.app import STATIC as SERVE_STATIC
from advpriv.serve.errors import ServiceError

from .manifest import IMAGES, load_manifest
from .store import CHOICES, MODES, RATINGS, Rating, RatingStore

STATIC = files("advpriv.study") / "static"
IMAGE_NAME = re.compile(r"[\w\-]+\.png")
MAX_SECONDS = 3600.0  # a longer answer time is a tab left open, not time spent looking


class Answer(BaseModel):
    """What the page sends for one trial; the method is looked up here, never sent by the page."""

    rater: str = Field(pattern=r"^[A-Za-z0-9\-]{1,64}$")
    pair: str
    mode: str
    score: int | None = None
    choice: str | None = None
    seconds: float = Field(ge=0)


def create_study_app(folder: Path) -> FastAPI:
    """The FastAPI app serving `folder`'s pairs and storing answers in `folder/ratings.sqlite`."""
    folder = Path(folder)
    manifest = load_manifest(folder)
    store = RatingStore(folder / RATINGS)
    app = FastAPI(title="advpriv rating study", docs_url="/docs", redoc_url=None)

    def rating_of(answer: Answer) -> Rating:
        try:
            pair = manifest.pair(answer.pair)
        except KeyError:
            raise ServiceError(422, "unknown_pair", f"pair {answer.pair!r} is not in this study; reload the page.") from None
        if answer.mode not in MODES:
            raise ServiceError(422, "bad_mode", f"mode {answer.mode!r} is unknown; use one of {', '.join(MODES)}.")
        dsis = answer.mode == "dsis"
        if dsis and (answer.score not in range(1, 6) or answer.choice is not None):
            raise ServiceError(422, "bad_score", "an impairment rating needs a score from 1 to 5 and no choice.")
        if not dsis and (answer.choice not in CHOICES or answer.score is not None):
            raise ServiceError(422, "bad_choice", f"a forced choice needs choice {' or '.join(CHOICES)} and no score.")
        return Rating(answer.rater, pair.id, pair.method, answer.mode, answer.score, answer.choice,
                      round(min(answer.seconds, MAX_SECONDS), 3))

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, e: ServiceError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        message = f"nothing at {request.url.path}; the rating page is at /." if e.status_code == 404 else str(e.detail)
        return JSONResponse(ServiceError(e.status_code, "http_error", message).body(), status_code=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        return JSONResponse(ServiceError(422, "bad_request", str(e.errors())).body(), status_code=422)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "pairs": len(manifest.pairs)}

    @app.get("/v1/study")
    async def study() -> dict:
        return {"pairs": [{"id": p.id, "original": p.original_file, "changed": p.changed_file} for p in manifest.pairs],
                "repeats": manifest.repeats, "show_seconds": manifest.show_seconds,
                "gap_seconds": manifest.gap_seconds, "modes": list(MODES)}

    @app.post("/v1/ratings", status_code=201)
    async def rate(answer: Answer) -> dict:
        store.add(rating_of(answer))
        return {"stored": True}

    @app.get(f"/{IMAGES}/{{name}}")
    async def image(name: str) -> FileResponse:
        path = folder / IMAGES / name
        if not IMAGE_NAME.fullmatch(name) or not path.is_file():
            raise ServiceError(404, "not_found", f"no image named {name!r} in this study.")
        return FileResponse(path, media_type="image/png")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text())

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.mount("/base", StaticFiles(directory=str(SERVE_STATIC)), name="base")
    return app
