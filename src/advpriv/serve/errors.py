"""Errors the service answers with: an HTTP status and a JSON body {"error": {"code", "message"}}.

Example:
    >>> e = ServiceError(413, "too_large", "the upload is 30 MB; the limit is 20 MB.")
    >>> e.body()
    {'error': {'code': 'too_large', 'message': 'the upload is 30 MB; the limit is 20 MB.'}}
"""

from __future__ import annotations

from advpriv.images import ImageError

IMAGE_ERROR_STATUS = {"not_an_image": 415, "too_large": 413, "too_small": 422, "damaged": 400, "missing": 400}


class ServiceError(Exception):
    """An answer other than success; `message` says what went wrong and what to do, in plain words."""

    expected = True  # a refusal, not a fault: no traceback in the server log

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}

    def __reduce__(self) -> tuple:  # crosses from a worker process to the server
        return ServiceError, (self.status, self.code, self.message, self.headers)


def shown(text: str, limit: int = 80, quote: bool = True) -> str:
    """`text` as an error message shows it (quoted unless `quote` is False), cut to `limit` characters: a client's
    10 MB field must not come back as a 10 MB error.

    >>> shown("tiny"), shown("x" * 1000, limit=5), shown("a, b", quote=False)
    ("'tiny'", "'xxxxx'… (1,000 characters)", 'a, b')
    """
    cut = text[:limit]
    cut = repr(cut) if quote else cut
    return cut if len(text) <= limit else f"{cut}… ({len(text):,} characters)"


def problems(errors: list[dict], limit: int = 500) -> str:
    """pydantic's validation errors in one line, where and what, without the values sent (which may be huge).

    >>> problems([{"loc": ("body", "score"), "msg": "Input should be a valid integer", "input": "5" * 10**6}])
    'body.score: Input should be a valid integer'
    """
    return "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in errors[:5])[:limit]


def from_image_error(error: ImageError) -> ServiceError:
    """The status code for an image that could not be decoded, by its cause."""
    kind = error.kind if error.kind in IMAGE_ERROR_STATUS else "damaged"
    code = {"missing": "bad_image", "damaged": "bad_image"}.get(kind, kind)
    return ServiceError(IMAGE_ERROR_STATUS[kind], code, str(error))
