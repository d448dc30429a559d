"""The default face ensemble, decided in one place for `advpriv protect`, `advpriv serve` and `advpriv models list`:
dlib, the fetched registry models that join by default (those with a `loader`, such as FaceNet, once their weights
are in the cache), and the models the user added, each with its spec, input contract and licence.

Example:
    >>> [m.name for m in ensemble()][0]
    'dlib'
    >>> ensemble(dlib=False, facenet=False) == [m for m in ensemble() if m.origin not in ("built in", "fetched")]
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from advpriv.faces.dlib_resnet import CHIP_SIZE, MATCH_THRESHOLD
from advpriv.faces.embedders import FaceEmbedder
from advpriv.faces.specs import DLIB as DLIB_SPEC, FACENET
from advpriv.models.download import model_path
from advpriv.models.registry import REGISTRY, ModelEntry
from advpriv.models.user_models import UserModelsError, read_models

BUILT_IN, FETCHED = "built in", "fetched"


@dataclass(frozen=True)
class Member:
    """One model of the ensemble: where it comes from, its input contract and licence, any warning, and the
    spec that loads it (`advpriv.faces.specs.load_embedder`)."""

    name: str
    origin: str
    contract: str
    licence: str
    warning: str | None = None
    spec: str = ""

    def describe(self) -> dict[str, str | None]:
        """The member as JSON-ready fields (the service's `ensemble`)."""
        return {"name": self.name, "origin": self.origin, "contract": self.contract, "licence": self.licence,
                "warning": self.warning}


def contract_text(options: dict[str, str]) -> str:
    """A spec's options as one line, e.g. "similarity=0.363 size=112".

    >>> contract_text({"similarity": "0.363", "size": "112"})
    'similarity=0.363 size=112'
    """
    return " ".join(f"{k}={v}" for k, v in options.items())


DLIB = Member(DLIB_SPEC, BUILT_IN, f"size={CHIP_SIZE} align=dlib range=0..1 metric=l2 threshold={MATCH_THRESHOLD}",
              "CC0-1.0", spec=DLIB_SPEC)


def _joining(facenet: bool) -> list[ModelEntry]:
    """Registry models with their own loader (not a spec): they join by default (FaceNet unless `facenet` is False)."""
    return [e for e in REGISTRY.values() if e.loader is not None and (facenet or e.name != FACENET)]


def _fetched(facenet: bool) -> list[ModelEntry]:
    """The joining registry models whose files are fetched (the others are left out; see `missing_note`)."""
    return [e for e in _joining(facenet) if model_path(e).is_file()]


def ensemble(dlib: bool = True, facenet: bool = True) -> list[Member]:
    """The models attacked by default, in order; `dlib` / `facenet` False leave those out (--no-dlib, --no-facenet).
    Each added model's file is hashed, to warn when it changed since it was added."""
    fetched = [Member(e.name, FETCHED, contract_text(e.contract), e.licence, spec=e.name) for e in _fetched(facenet)]
    added = [Member(m.name, m.path, contract_text(m.options), m.licence, m.problem(), m.spec) for m in read_models()]
    return [DLIB] * dlib + fetched + added


def default_specs(dlib: bool = True, facenet: bool = True) -> list[str]:
    """The specs of `ensemble(dlib, facenet)`, to load, without hashing any file (that is `ensemble`'s warning). An
    added model whose file is gone is an error: it is never dropped from the ensemble silently."""
    added = read_models()
    for m in added:
        if not Path(m.path).is_file():
            raise UserModelsError(f"the added model {m.name}: {m.problem()}")
    return [DLIB_SPEC] * dlib + [e.name for e in _fetched(facenet)] + [m.spec for m in added]


def missing_note(facenet: bool = True) -> str | None:
    """One line when a model that joins by default is not fetched (the ensemble then goes without it), else None.

    >>> missing_note(facenet=False) is None
    True
    """
    missing = [e.name for e in _joining(facenet) if not model_path(e).is_file()]
    if not missing:
        return None
    return (f"{', '.join(missing)} not fetched: the default face ensemble goes without it; fetch it once with "
            f"advpriv models fetch {' '.join(missing)} (or make setup)")


def load_ensemble() -> list[FaceEmbedder]:
    """The models of `ensemble()`, loaded (the service attacks these)."""
    from advpriv.faces.specs import load_embedder

    return [load_embedder(spec) for spec in default_specs()]
