"""The HTTP service and web page (`advpriv serve`): a thin layer over the Python API.

Example:
    >>> from advpriv.serve import ServeSettings, create_app   # doctest: +SKIP
    >>> app = create_app(ServeSettings(token="s3cret"))        # doctest: +SKIP
"""

from __future__ import annotations

from ..lazy import lazy_names
from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
__getattr__ = lazy_names(__name__, {"create_app": "app"})  # FastAPI loads only for the commands that serve
