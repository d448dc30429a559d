"""The rating study (`advpriv study ...`): build a folder of pairs, serve a rating page, report MOS and detection.

Example:
    >>> from advpriv.study import make_study, study_report   # doctest: +SKIP
    >>> make_study(Path("originals"), {"mnd": Path("out")}, Path("study"))   # doctest: +SKIP
    >>> print(format_report(study_report(Path("study"))))   # doctest: +SKIP
"""

from __future__ import annotations

from ..lazy import lazy_names

_HOMES = {"make_study": "make", "Manifest": "manifest", "Pair": "manifest", "StudyError": "manifest",
          "load_manifest": "manifest", "format_report": "report", "study_report": "report"}
__all__ = sorted(_HOMES)
__getattr__ = lazy_names(__name__, _HOMES)  # the report needs scipy, which other commands should not load
