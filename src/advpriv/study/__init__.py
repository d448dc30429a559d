"""The rating study (`advpriv study ...`): build a folder of pairs, serve a rating page, report MOS and detection.

Example:
    >>> from advpriv.study import make_study, study_report   # doctest: +SKIP
    >>> make_study(Path("originals"), {"mnd": Path("out")}, Path("study"))   # doctest: +SKIP
    >>> print(format_report(study_report(Path("study"))))   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {"make_study": "make", "Manifest": "manifest", "Pair": "manifest", "StudyError": "manifest",
          "load_manifest": "manifest", "format_report": "report", "study_report": "report"}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """Each name imported from its module on first use: the report needs scipy, which the command line should not
    load for every other command."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
