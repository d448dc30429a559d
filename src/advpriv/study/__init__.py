"""The rating study (`advpriv study ...`): build a folder of pairs, serve a rating page, report MOS and detection.

Example:
    >>> from advpriv.study import make_study, study_report   # doctest: +SKIP
    >>> make_study(Path("originals"), {"mnd": Path("out")}, Path("study"))   # doctest: +SKIP
    >>> print(format_report(study_report(Path("study"))))   # doctest: +SKIP
"""

from .make import make_study
from .manifest import Manifest, Pair, StudyError, load_manifest
from .report import format_report, study_report

__all__ = ["Manifest", "Pair", "StudyError", "format_report", "load_manifest", "make_study", "study_report"]
