"""Rewrite a results file's generated part and keep what was written by hand below its "## Notes" heading.

Example (from a script in bench/, which Python puts on the import path):
    >>> from notes import write_keeping_notes  # doctest: +SKIP
    >>> write_keeping_notes(Path("bench/results/speed.md"), "# table\\n")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path


def write_keeping_notes(markdown: Path, generated: str) -> None:
    """Write `generated` to `markdown`, followed by the "## Notes" section the file already has, if any."""
    notes = markdown.read_text().partition("\n## Notes")[1:] if markdown.exists() else ()
    markdown.write_text(generated + "".join(notes))
