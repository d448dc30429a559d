"""Every docstring example in the package runs (those marked `# doctest: +SKIP` need files or models)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import advpriv

MODULES = sorted(m.name for m in pkgutil.walk_packages(advpriv.__path__, "advpriv.") if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, report=True)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (see the output above)"
