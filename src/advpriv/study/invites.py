"""Invitations to a study: one secret link per rater, so only invited people can store ratings, each under the
rater id bound to their link.

`invites.json` in the study folder holds, per rater id, the SHA-256 of their token (the token itself is printed
once, in the link, and never stored) and whether the rater was dropped. A dropped rater's link stops working and
the report leaves their ratings out; the ratings themselves stay in `ratings.sqlite`.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> links = add_invites(folder, 2)
    >>> sorted(links.values())
    ['r-01', 'r-02']
    >>> token = next(iter(links))
    >>> Invites.load(folder).rater_of(token)
    'r-01'
    >>> drop_rater(folder, "r-01")
    >>> Invites.load(folder).rater_of(token) is None, Invites.load(folder).dropped
    (True, {'r-01'})
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from advpriv.images import atomic_write

from .manifest import StudyError

INVITES = "invites.json"
RATER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-]{0,47}")
MAX_INVITES = 10_000


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Invites:
    """Rater id -> token digest, and the dropped raters."""

    digests: dict[str, str] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, folder: Path) -> Invites:
        """The study's invitations (none when the file is absent); StudyError when it is damaged."""
        path = Path(folder) / INVITES
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())
            invites = cls({str(k): str(v) for k, v in data["raters"].items()}, {str(r) for r in data["dropped"]})
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise StudyError(f"{path} is damaged ({e}); restore it, or invite the raters again with "
                             "`advpriv study invite`.") from None
        return invites

    def save(self, folder: Path) -> None:
        data = {"raters": self.digests, "dropped": sorted(self.dropped)}
        atomic_write(Path(folder) / INVITES, (json.dumps(data, indent=2) + "\n").encode())

    def rater_of(self, token: str) -> str | None:
        """The rater id bound to `token`, or None for an unknown token or a dropped rater."""
        digest = _digest(token)
        rater = next((r for r, d in self.digests.items() if secrets.compare_digest(d, digest)), None)
        return None if rater in self.dropped else rater


def add_invites(folder: Path, count: int, name: str = "r") -> dict[str, str]:
    """Invite `count` more raters, with ids `NAME-01`, `NAME-02`, … after those already taken; returns token ->
    rater id (print the tokens now: only their digests are kept)."""
    if not RATER_NAME.fullmatch(name):
        raise StudyError(f"rater name {name[:60]!r} should be a letter, then letters, digits or dashes (e.g. r or "
                         "agent-check).")
    invites = Invites.load(folder)
    if not 0 < count <= MAX_INVITES - len(invites.digests):
        raise StudyError(f"{count} invitations asked for; a study takes 1 to {MAX_INVITES} raters in all "
                         f"({len(invites.digests)} invited so far).")
    links, number = {}, 1
    while len(links) < count:
        rater = f"{name}-{number:02d}"
        number += 1
        if rater not in invites.digests:
            token = secrets.token_urlsafe(18)
            invites.digests[rater] = _digest(token)
            links[token] = rater
    invites.save(folder)
    return links


def drop_rater(folder: Path, rater: str) -> None:
    """Revoke `rater`'s link and leave their ratings out of the report (they stay stored)."""
    invites = Invites.load(folder)
    invites.dropped.add(rater)
    invites.save(folder)


def invitation_lines(links: dict[str, str], url: str) -> list[str]:
    """One line per invited rater: their id and their link to the page at `url`."""
    return [f"  {rater}: {url.rstrip('/')}/?invite={token}" for token, rater in links.items()]
