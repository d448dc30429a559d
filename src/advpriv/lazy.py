"""Names of a package imported from their submodules on first use, so that a command loads only what it runs.

Example (in a package's `__init__.py`):
    >>> __getattr__ = lazy_names("advpriv.serve", {"create_app": "app"})
    >>> __getattr__("create_app").__name__
    'create_app'
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_names(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: each name of `homes` taken from the submodule it names."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)

    return __getattr__
