"""The HTTP service and web page (`advpriv serve`): a thin layer over the Python API.

Example:
    >>> from advpriv.serve import ServeSettings, create_app   # doctest: +SKIP
    >>> app = create_app(ServeSettings(token="s3cret"))        # doctest: +SKIP
"""

from .app import create_app
from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
