r"""Griffe extension: the API reference shows docstrings' doctests as Python code.

advpriv's docstrings hold bare doctests (run by tests/test_doctests.py); Markdown would read their `>>>` as quotes
and their brackets as links. Each doctest becomes a fenced `pycon` block, without its `# doctest:` directives.

Example:
    >>> fence_doctests("Text.\n\n>>> 1 + 1  # doctest: +SKIP\n2").splitlines()
    ['Text.', '', '```pycon', '>>> 1 + 1', '2', '```']
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_PROMPT = re.compile(r"^(\s*)>>>")
_DIRECTIVE = re.compile(r"\s*# doctest:.*$")


def fence_doctests(text: str) -> str:
    """`text` with each doctest (a `>>>` line up to the next blank line) fenced at the doctest's indentation."""
    lines: list[str] = []
    indent: str | None = None
    for line in text.split("\n"):
        if indent is None and (prompt := _PROMPT.match(line)):
            indent = prompt.group(1)
            lines.append(f"{indent}```pycon")
        elif indent is not None and (not line.strip() or not line.startswith(indent)):
            lines.append(f"{indent}```")
            indent = None
        lines.append(_DIRECTIVE.sub("", line) if indent is not None else line)
    if indent is not None:
        lines.append(f"{indent}```")
    return "\n".join(lines)


class DoctestFences(griffe.Extension):
    """Fences the doctests of every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
