"""The docs site's griffe extension: doctests in docstrings become fenced code in the API reference."""

from __future__ import annotations

import doctest
import importlib.util
from pathlib import Path

import pytest

griffe = pytest.importorskip("griffe", reason="griffe comes with the docs extra: `make docs` installs it")

EXTENSION = Path(__file__).resolve().parents[1] / "docs" / "griffe_doctests.py"


@pytest.fixture(scope="module")
def extension():
    spec = importlib.util.spec_from_file_location("griffe_doctests", EXTENSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_its_own_example_runs(extension) -> None:
    assert doctest.testmod(extension).failed == 0


def test_indented_doctest_is_fenced_at_its_indentation_and_text_around_it_kept(extension) -> None:
    text = "Intro [a][b].\n\nExample:\n    >>> f([1, 2])  # doctest: +SKIP\n    [1, 2]\n\nAfter."
    assert extension.fence_doctests(text).splitlines() == [
        "Intro [a][b].", "", "Example:", "    ```pycon", "    >>> f([1, 2])", "    [1, 2]", "    ```", "", "After."]


def test_griffe_loads_advpriv_with_its_doctests_fenced(extension) -> None:
    src = Path(__file__).resolve().parents[1] / "src"
    module = griffe.load("advpriv.protect.reencode", search_paths=[str(src)],
                         extensions=griffe.load_extensions(extension.DoctestFences))
    docstring = module.docstring.value
    assert "    ```pycon\n    >>> import torch\n" in docstring
    assert docstring.count("```pycon") == docstring.count(">>> import torch") == 1
