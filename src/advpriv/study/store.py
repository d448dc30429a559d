"""Ratings in SQLite (standard library): rater id, pair, method, mode, score or choice, seconds taken. Nothing else.

Example:
    >>> import tempfile
    >>> store = RatingStore(Path(tempfile.mkdtemp()) / "ratings.sqlite")
    >>> store.add(Rating("r1", "p01", "mnd", "dsis", 5, None, 2.5))
    >>> store.all()[0].score
    5
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import astuple, dataclass
from pathlib import Path

RATINGS = "ratings.sqlite"
MODES = ("dsis", "choice")
CHOICES = ("changed", "original")
SCHEMA = """CREATE TABLE IF NOT EXISTS ratings (
    rater TEXT NOT NULL, pair TEXT NOT NULL, method TEXT NOT NULL, mode TEXT NOT NULL,
    score INTEGER CHECK (score BETWEEN 1 AND 5), choice TEXT CHECK (choice IN ('changed', 'original')),
    seconds REAL NOT NULL)"""


@dataclass(frozen=True)
class Rating:
    """One answer. dsis: `score` 5 (imperceptible) .. 1 (very annoying). choice: which image the rater picked as
    the changed one (`changed` when right)."""

    rater: str
    pair: str
    method: str
    mode: str
    score: int | None
    choice: str | None
    seconds: float


class RatingStore:
    """Append-only ratings in one SQLite file; a fresh connection per call, so any thread may use it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with closing(self._connect()) as db, db:
            db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def add(self, rating: Rating) -> None:
        with closing(self._connect()) as db, db:
            db.execute("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?)", astuple(rating))

    def count(self, rater: str) -> int:
        """How many answers `rater` has given."""
        with closing(self._connect()) as db:
            return db.execute("SELECT COUNT(*) FROM ratings WHERE rater = ?", (rater,)).fetchone()[0]

    def all(self) -> list[Rating]:
        with closing(self._connect()) as db:
            return [Rating(*row) for row in db.execute("SELECT * FROM ratings ORDER BY rowid")]
