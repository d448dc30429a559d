"""Training configuration of a DeepObfuscator run; the defaults follow the authors' code (Li et al., IoTDI 2021).

Named presets (`PRESETS`) bundle whole configurations: "paper" (the defaults), "reduced" (the paper's method at a
size this CPU trains in minutes) and "private" (what best meets the privacy targets against retrained attackers,
see bench/results/obfuscator-hard/: people kept apart, three seeds).

Example:
    >>> cfg = TrainConfig(width=0.25, fc=256, epochs=4, lam_hold=2)
    >>> [round(cfg.lam_at(e), 2) for e in range(4)]
    [10.0, 10.0, 8.0, 6.4]
    >>> TrainConfig.preset("private", seed=1).split_point.bottleneck
    8
    >>> TrainConfig.from_json('{"fc": 2e9}')
    Traceback (most recent call last):
    ...
    ValueError: fc is 2000000000.0; it must be an integer from 1 to 65536
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from advpriv.obfuscate.data import AttributeData, split_indices
from advpriv.obfuscate.networks import SplitPoint, Widths

PRIVATE_LOSSES = ("negative_bce", "entropy")
"""How the encoder fights the attribute adversary (see `TrainConfig.private_loss`)."""
SPLITS_BY = ("image", "identity")
"""What the train/val/test split shuffles (see `TrainConfig.split_by`)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run computes.

    utility / private: attribute names of the cloud task and of the secret (CelebA: Smiling, Male); `utility` may
        name several tasks, comma-separated (e.g. "Smiling,Heavy_Makeup"): the cloud classifier then has one output
        each.
    width, fc: VGG channel multiplier and FC hidden size (paper: 1.0 and 4096).
    image_size: (H, W) the images are resized to; None keeps their native size.
    pretrain_epochs: epochs of E+C utility pretraining; attacker_epochs: epochs of R and of P pretraining
        (the issue leaves both open; 10 each is our choice).
    epochs, lam, lam_hold, lam_decay: adversarial epochs and the λ schedule: λ for the first `lam_hold` epochs,
        then multiplied by `lam_decay` each epoch (the paper says only "then decreasing"; 0.8 is our choice).
    batch_size, lr: minibatch and Adam learning rate for every network (paper: 32 and 1e-4).
    pretrain_lr: Adam learning rate of the three pretraining stages; None means `lr` (as in the paper). A larger
        one lets a short run (few epochs) reach useful pretrained networks.
    private_loss: what E does to the attribute adversary P in rotation step 2. "negative_bce" (the authors' code):
        E minimises L_C − λ·BCE(P(E(x)), private label), i.e. it makes P wrong, which P can undo by flipping.
        "entropy": E minimises L_C + λ·BCE(P(E(x)), ½), i.e. it makes P maximally unsure (Roy & Boddeti, 2019).
    refresh_every: every this many adversarial epochs (0: never, as in the paper), R and P first get one epoch of
        their own training on the frozen encoder, P restarted from the current C, so that E keeps facing attackers
        near their best response instead of ones it has already learned to fool.
    split, bottleneck, pool, noise: where the device stops and what it sends (see `networks.SplitPoint`): VGG blocks
        on the device (paper: 2), channels of a learned 1×1 bottleneck (None: none), average-pool size (H, W) of its
        output (None: keep), std of Gaussian noise on the standardised bottleneck, in training and inference.
    vib: weight β of a variational-information-bottleneck rate term KL(N(z, σ²) ‖ N(0, 1)) added to every encoder
        loss; with vib > 0 the noise std is learned per channel, starting at `noise`.
    limit: use only the first `limit` images of the dataset (None: all). seed: fixes splits, init and shuffling.
    split_by: "image" shuffles images into train/val/test; "identity" shuffles people (the data needs identities),
        so that no face is in two splits. fractions: train's and val's share of the images (test: the rest).
    """

    utility: str = "Smiling"
    private: str = "Male"
    width: float = 1.0
    fc: int = 4096
    image_size: tuple[int, int] | None = None
    pretrain_epochs: int = 10
    attacker_epochs: int = 10
    epochs: int = 20
    lam: float = 10.0
    lam_hold: int = 10
    lam_decay: float = 0.8
    batch_size: int = 32
    lr: float = 1e-4
    pretrain_lr: float | None = None
    private_loss: str = "negative_bce"
    refresh_every: int = 0
    split: int = 2
    bottleneck: int | None = None
    pool: tuple[int, int] | None = None
    noise: float = 0.0
    vib: float = 0.0
    limit: int | None = None
    seed: int = 0
    split_by: str = "image"
    fractions: tuple[float, float] = (0.8, 0.1)

    @classmethod
    def preset(cls, name: str, **overrides) -> TrainConfig:
        """The configuration named `name` in `PRESETS`, with `overrides` on top."""
        if name not in PRESETS:
            raise ValueError(f"no preset named {name!r}; choose one of {', '.join(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})

    def __post_init__(self) -> None:
        _check_types(self)
        if self.private_loss not in PRIVATE_LOSSES:
            raise ValueError(f"private_loss {self.private_loss!r} is unknown; choose one of {', '.join(PRIVATE_LOSSES)}.")
        if self.refresh_every < 0:
            raise ValueError(f"refresh_every is {self.refresh_every}; use 0 (never) or a positive number of epochs.")
        if self.vib < 0:
            raise ValueError(f"vib is {self.vib}; use 0 (off) or a positive rate weight.")
        if self.split_by not in SPLITS_BY:
            raise ValueError(f"split_by {self.split_by!r} is unknown; choose one of {', '.join(SPLITS_BY)}.")
        if not (isinstance(self.fractions, (tuple, list)) and len(self.fractions) == 2
                and all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < 1 for f in self.fractions)
                and sum(self.fractions) < 1):
            raise ValueError(f"fractions is {self.fractions!r}; give train's and val's share, each above 0, "
                             "summing to less than 1 (e.g. 0.6, 0.1)")
        self.split_point  # noqa: B018 (validates the split settings)
        _check_ranges(self)

    @property
    def split_point(self) -> SplitPoint:
        """Where the device stops and what it sends."""
        return SplitPoint(self.split, self.bottleneck, self.pool, self.noise, learn_noise=self.vib > 0)

    @property
    def widths(self) -> Widths:
        return Widths(self.width, self.fc)

    @property
    def utility_tasks(self) -> list[str]:
        """The cloud tasks `utility` names, in order ("Smiling, Young" -> ["Smiling", "Young"])."""
        return [name.strip() for name in self.utility.split(",")]

    @property
    def utility_count(self) -> int:
        """How many cloud tasks `utility` names."""
        return len(self.utility_tasks)

    def splits(self, data: AttributeData) -> dict[str, torch.Tensor]:
        """This run's train/val/test indices of `data` (see `split_by`, `fractions` and `seed`)."""
        return split_indices(data, self.seed, tuple(self.fractions), by_identity=self.split_by == "identity")

    def lam_at(self, epoch: int) -> float:
        """λ in adversarial epoch `epoch` (0-based)."""
        return self.lam * self.lam_decay ** max(0, epoch - self.lam_hold + 1)

    def refreshes_at(self, epoch: int) -> bool:
        """Whether the attackers are refreshed before adversarial epoch `epoch` (0-based; never before the first)."""
        return self.refresh_every > 0 and epoch > 0 and epoch % self.refresh_every == 0

    def lr_of(self, stage: str) -> float:
        """Adam learning rate of a training stage."""
        return self.lr if stage == "adversarial" or self.pretrain_lr is None else self.pretrain_lr

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """The config in `text`; a ValueError says which setting is wrong (unknown keys are ignored)."""
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise ValueError(f"not valid JSON ({e})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"holds a JSON {type(raw).__name__}, not an object of settings")
        known = {f.name for f in fields(cls)}
        for key in ("image_size", "pool", "fractions"):
            if raw.get(key) is not None:
                raw[key] = _pair(key, raw[key])
        return cls(**{k: v for k, v in raw.items() if k in known})

    def save(self, path: Path) -> None:
        from advpriv.images import atomic_write

        atomic_write(path, self.to_json().encode())

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """The config saved at `path`; a ConfigError names the file and what is wrong in it."""
        try:
            return cls.from_json(Path(path).read_bytes()[:MAX_CONFIG_BYTES + 1].decode("utf-8"))
        except (ValueError, OSError) as e:
            raise ConfigError(f"{path}: {e}; restore the file or train the run again.") from None


class ConfigError(ValueError):
    """A saved config cannot be used; the message names the file."""


MAX_CONFIG_BYTES = 1 << 16
"""Longest config.json read: a real one is under 1 KB."""

MAX_SIDE = 4096
"""Largest image side a run may be configured for (CelebA's native images are 218×178)."""

_BOUNDS: dict[str, tuple[type, float, float]] = {
    "width": (float, 1e-3, 8.0), "fc": (int, 1, 65536), "pretrain_epochs": (int, 0, 100_000),
    "attacker_epochs": (int, 0, 100_000), "epochs": (int, 0, 100_000), "lam": (float, 0.0, 1e6),
    "lam_hold": (int, 0, 100_000), "lam_decay": (float, 0.0, 1.0), "batch_size": (int, 1, 65536),
    "lr": (float, 1e-12, 10.0), "pretrain_lr": (float, 1e-12, 10.0), "refresh_every": (int, 0, 100_000),
    "split": (int, 1, 5), "bottleneck": (int, 1, 65536), "noise": (float, 0.0, 1e3), "vib": (float, 0.0, 1e6),
    "limit": (int, 1, 10**9), "seed": (int, 0, 2**63 - 1),
}
"""Type and inclusive range of each numeric setting (None is allowed where the field's default allows it)."""


def _pair(key: str, value: object) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{key} is {value!r}; give two numbers (height, width)")
    return tuple(value)


def _numbers(cfg: TrainConfig):
    """(key, kind, low, high, value) of each numeric setting that is set."""
    for key, (kind, low, high) in _BOUNDS.items():
        value = getattr(cfg, key)
        if value is not None or key not in ("pretrain_lr", "bottleneck", "limit"):
            yield key, kind, low, high, value


def _check_types(cfg: TrainConfig) -> None:
    """Refuse settings of the wrong type, before any other check compares them."""
    for key, kind, low, high, value in _numbers(cfg):
        if isinstance(value, bool) or not isinstance(value, int if kind is int else (int, float)):
            raise ValueError(f"{key} is {value!r}; it must be {'an integer' if kind is int else 'a number'} "
                             f"from {low:g} to {high:g}")
    for key in ("image_size", "pool"):
        if getattr(cfg, key) is not None:
            _pair(key, getattr(cfg, key))


def _check_ranges(cfg: TrainConfig) -> None:
    """Refuse settings outside `_BOUNDS`, before anything is allocated for them."""
    for key, kind, low, high, value in _numbers(cfg):
        if not low <= value <= high:
            raise ValueError(f"{key} is {value!r}; it must be {'an integer' if kind is int else 'a number'} "
                             f"from {low:g} to {high:g}")
    for key, low in (("image_size", 8), ("pool", 1)):
        pair = getattr(cfg, key)
        if pair is not None and not all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= MAX_SIDE
                                        for v in pair):
            raise ValueError(f"{key} is {pair!r}; give two integers from {low} to {MAX_SIDE}")


REDUCED = dict(width=0.125, fc=256, image_size=(64, 52), pretrain_epochs=4, attacker_epochs=2, epochs=6, lam_hold=3,
               pretrain_lr=1e-3)
PRESETS: dict[str, dict] = {
    "paper": {},
    "reduced": REDUCED,
    "private": {**REDUCED, "split": 4, "bottleneck": 8, "pool": (1, 1), "noise": 0.5, "vib": 0.01,
                "attacker_epochs": 0, "epochs": 0},
}
"""Named configurations: the paper's, the same method reduced for a CPU, and the recommended private one."""
DEFAULT_PRESET = "private"
