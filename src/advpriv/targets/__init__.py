"""Targets: the models advpriv protects against. Pick one by name, TorchScript file, or `package.module:factory`.

Example:
    >>> from advpriv.targets import load_target
    >>> target = load_target("efficientnet-lite0")   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import os
import sys
import zipfile
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..model_trust import require_trust
from .base import ClassifierTarget

_REGISTRY: dict[str, Callable[[], nn.Module]] = {}


def register_target(name: str) -> Callable[[Callable[[], nn.Module]], Callable[[], nn.Module]]:
    """Decorator: make a zero-argument target factory loadable by `name`."""

    def wrap(factory: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def available_targets() -> list[str]:
    return sorted(_REGISTRY)


def load_target(spec: str | nn.Module, trust_code: bool = False) -> nn.Module:
    """Resolve a target from a registered name, a TorchScript file, or `package.module:factory`.

    A factory returns either a ready target module or a `(model, preprocess)` pair; a TorchScript classifier
    is taken to accept [0,1] RGB and do its own normalisation. TorchScript is code: it loads only with
    `trust_code=True` (`--trust-model-code`).
    """
    if isinstance(spec, nn.Module):
        return spec
    if spec in _REGISTRY:
        return _REGISTRY[spec]()
    if names_file(spec):
        return _load_torchscript(Path(spec), trust_code)
    if ":" in spec:
        return _load_factory(spec)
    raise ValueError(
        f"unknown target {spec!r}: use one of {', '.join(available_targets())}, "
        "a TorchScript file, or package.module:factory."
    )


def names_file(spec: str) -> bool:
    """Whether target `spec` names a TorchScript file (a model file suffix, or an existing file) rather than a
    registered model or a factory.

    >>> names_file("net.pt"), names_file("efficientnet-lite0"), names_file("toy_models:tiny_classifier")
    (True, False, False)
    """
    path = Path(spec)
    return spec not in _REGISTRY and (path.suffix in (".pt", ".ts", ".pth", ".torchscript") or path.is_file())


def _load_torchscript(path: Path, trust_code: bool) -> ClassifierTarget:
    if not path.is_file():
        raise ValueError(f"target file {path} does not exist; give the path of a TorchScript model.")
    if _is_pickled_checkpoint(path):
        raise ValueError(f"{path} is a torch.save checkpoint (pickled weights or module), not TorchScript; advpriv "
                         "does not unpickle models. Save it with torch.jit.script(model).save(PATH), or name a "
                         "package.module:factory that builds it.")
    require_trust(path, trust_code)
    try:
        model = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"{path} is not a TorchScript model ({e}); export it with torch.jit.script or trace.") from None
    return ClassifierTarget(model, name=path.stem)


def _is_pickled_checkpoint(path: Path) -> bool:
    """Whether `path` was written by `torch.save` (a zip with a data.pkl and no TorchScript code, or a legacy
    pickle) rather than by `torch.jit.save`."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [name.split("/", 1)[-1] for name in archive.namelist()]
        return "data.pkl" in names and "constants.pkl" not in names
    with path.open("rb") as f:
        return f.read(2) == b"\x80\x02"  # the pickle protocol 2 header of torch.save's legacy format


def _load_factory(spec: str) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # like uvicorn: a module beside the user is importable
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load target factory {spec!r} ({e}); check the module is importable.") from None
    if not callable(factory):
        raise ValueError(f"target factory {spec!r} is a {type(factory).__name__}, not a function; name a function that "
                         "takes no arguments and returns a model or (model, preprocess).")
    try:
        made = factory()
    except Exception as e:  # noqa: BLE001 (user code: whatever it raises, the user gets one line)
        raise ValueError(f"target factory {spec!r} failed ({type(e).__name__}: {e}); it must take no arguments and "
                         "return a model or (model, preprocess).") from None
    if isinstance(made, tuple):
        model, preprocess = made
        return ClassifierTarget(model, preprocess, name=attr)
    if isinstance(made, nn.Module):
        return made if hasattr(made, "kind") else ClassifierTarget(made, name=attr)
    raise ValueError(f"target factory {spec!r} returned {type(made).__name__}; return a model or (model, preprocess).")


@register_target("efficientnet-lite0")
def _efficientnet_lite0() -> nn.Module:
    from .efficientnet import efficientnet_lite0

    return efficientnet_lite0()


__all__ = ["ClassifierTarget", "available_targets", "load_target", "register_target"]
