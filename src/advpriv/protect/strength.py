"""Protection strength in words: how far past the decision boundary a protected image must land.

"medium" is the library default; "low" halves the success margin (less visible, less robust to re-encoding and
to other models), "high" doubles it. For faces the margin is the descriptor distance beyond the match threshold,
for classifiers it is κ on the logits.

Example:
    >>> strength_options("high", target="efficientnet-lite0")
    {'kappa': 2.0}
    >>> strength_options("low", target="dlib", mode="dodge")
    {'margin': 0.1}
"""

from __future__ import annotations

from ..faces.objectives import DODGE_MARGIN, IMPERSONATE_MARGIN
from .files import FACE_TARGET

STRENGTHS = {"low": 0.5, "medium": 1.0, "high": 2.0}
CLASSIFIER_KAPPA = 1.0


def strength_options(strength: str, target: str, mode: str = "dodge") -> dict[str, float]:
    """The protect options (`margin` for the face target, `kappa` for classifiers) that a strength stands for."""
    if strength not in STRENGTHS:
        raise ValueError(f"unknown strength {strength!r}; choose one of {', '.join(STRENGTHS)}.")
    scale = STRENGTHS[strength]
    if target == FACE_TARGET:
        return {"margin": round(scale * (DODGE_MARGIN if mode == "dodge" else IMPERSONATE_MARGIN), 4)}
    return {"kappa": scale * CLASSIFIER_KAPPA}
