"""What `advpriv serve` is configured with: limits, the access token, and the models it loads at start-up.

Example:
    >>> s = ServeSettings(token="s3cret", queue_size=2)
    >>> s.capacity, s.host
    (3, '127.0.0.1')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_ENV = "ADVPRIV_TOKEN"


@dataclass(frozen=True)
class ServeSettings:
    """host/port: where to listen (loopback by default). token: bearer token every /v1 request must carry
    (None: open). max_upload_bytes / max_pixels: the largest request body and decoded image accepted.
    workers: protections computed at once; queue_size: requests that may wait beyond those (more get 503).
    timeout: seconds a request may take before it is answered 504. output_dir: where protected images are
    also saved (None: nothing is written to disk). features_run / features_encoder: a DeepObfuscator run
    folder whose cloud classifier answers /v1/features/predict. judges: extra ONNX judge specs for faces.
    extra_targets: "name=spec" pairs offering more classifier targets (a TorchScript file or module:factory)
    under a name; clients choose targets only by name, never by path. max_request_pixels: decoded pixels of
    all the photos in one request together; max_as_photos: identity photos per request. header_timeout /
    body_timeout: seconds a client may take to send its request's headers / its body; max_uploads: bodies
    received at once (more get 503). docs: serve the interactive API docs at /docs (they load their scripts from
    a CDN, so they are off by default; the schema at /openapi.json is always served). trust_model_code: load
    TorchScript extra targets, which are code.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_upload_bytes: int = 20_000_000
    max_pixels: int = 40_000_000
    workers: int = 1
    queue_size: int = 4
    timeout: float = 300.0
    output_dir: Path | None = None
    features_run: Path | None = None
    features_encoder: str = "obfuscator"
    judges: tuple[str, ...] = field(default_factory=tuple)
    extra_targets: tuple[str, ...] = field(default_factory=tuple)
    max_request_pixels: int = 60_000_000
    max_as_photos: int = 8
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_uploads: int = 4
    docs: bool = False
    trust_model_code: bool = False

    @property
    def capacity(self) -> int:
        """Requests in flight at most: being computed plus waiting."""
        return self.workers + self.queue_size


def token_from_env(flag: str | None) -> str | None:
    """The token given on the command line, else $ADVPRIV_TOKEN, else None (an open server)."""
    return flag or os.environ.get(TOKEN_ENV) or None
