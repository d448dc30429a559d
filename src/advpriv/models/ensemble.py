"""What the default face ensemble holds, for `advpriv models list` and the service: dlib, the fetched registry
models that join by default (those with a `loader`, such as FaceNet, once their weights are in the cache), and
the models the user added, each with its input contract and licence.

Example:
    >>> [m.name for m in ensemble()][0]
    'dlib'
"""

from __future__ import annotations

from dataclasses import dataclass

from advpriv.faces.dlib_resnet import CHIP_SIZE, MATCH_THRESHOLD
from advpriv.faces.embedders import FaceEmbedder
from advpriv.models.download import model_path
from advpriv.models.registry import REGISTRY, ModelEntry, resolve
from advpriv.models.user_models import read_models, user_specs


@dataclass(frozen=True)
class Member:
    """One model of the ensemble: where it comes from, its input contract and licence, and any warning."""

    name: str
    origin: str
    contract: str
    licence: str
    warning: str | None = None

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


DLIB = Member("dlib", "built in", f"size={CHIP_SIZE} align=dlib range=0..1 metric=l2 threshold={MATCH_THRESHOLD}",
              "CC0-1.0")


def _fetched_defaults() -> list[ModelEntry]:
    """Registry models with their own loader (not a spec) whose files are in the cache: they join by default."""
    return [e for e in REGISTRY.values() if e.loader is not None and model_path(e).is_file()]


def ensemble() -> list[Member]:
    """The models `advpriv protect` attacks by default, in order."""
    fetched = [Member(e.name, "fetched", contract_text(e.contract), e.licence) for e in _fetched_defaults()]
    added = [Member(m.name, m.path, contract_text(m.options), m.licence, m.problem()) for m in read_models()]
    return [DLIB, *fetched, *added]


def load_ensemble() -> list[FaceEmbedder]:
    """The models of `ensemble()`, loaded (the service attacks these)."""
    from advpriv.faces.specs import DLIB as DLIB_SPEC, load_embedder

    fetched = [resolve(e.loader)(model_path(e)) for e in _fetched_defaults()]
    return [load_embedder(DLIB_SPEC), *fetched, *(load_embedder(spec) for spec in user_specs())]
