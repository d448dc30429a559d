"""Image-level protection: the MND optimiser, its objectives, the anchors, and the front doors for tensors and files."""

from .api import METHODS, Check, Protected, protect, verify
from .batch import merge_metrics, protect_files
from .files import FileReport, protect_encoded
from .mnd import MNDConfig, MNDResult, mnd
from .objectives import Misclassify, Objective

__all__ = [
    "METHODS",
    "FileReport",
    "MNDConfig",
    "MNDResult",
    "Misclassify",
    "Objective",
    "Check",
    "Protected",
    "mnd",
    "protect",
    "protect_encoded",
    "protect_files",
    "merge_metrics",
    "verify",
]
