"""The HTTP service and web page (`advpriv serve`): a thin layer over the Python API.

Example:
    >>> from advpriv.serve import ServeSettings, create_app   # doctest: +SKIP
    >>> app = create_app(ServeSettings(token="s3cret"))        # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    """`create_app` imported on first use: the command line should not load FastAPI for every other command."""
    if name != "create_app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .app import create_app

    return create_app
