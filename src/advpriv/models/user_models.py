"""The user's own face models, recorded once with their input contract so that `advpriv protect` attacks them too.

They live in `models.json` in platformdirs' user config dir (or in $ADVPRIV_CONFIG_DIR): plain JSON, checked
when read, written atomically. Each record holds the model's absolute path, the SHA-256 it had when added (so a
changed file can be reported) and its spec options (those of `--embedder PATH:key=value,...`).

Example:
    >>> model = UserModel("mine", "/models/mine.onnx", "0" * 64, {"similarity": "0.3", "size": "112"})
    >>> model.spec
    '/models/mine.onnx:similarity=0.3,size=112,name=mine'
    >>> add_model("face.onnx", {"similarity": "0.363", "range": "0..255"})  # doctest: +SKIP
    UserModel(name='face', path='/home/me/face.onnx', ...)
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from platformdirs import user_config_dir

from advpriv.faces.specs import DLIB, FACENET, OPTIONS, load_embedder
from advpriv.images import atomic_write
from advpriv.models.download import sha256_of

CONFIG_ENV = "ADVPRIV_CONFIG_DIR"
VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[\w.+-]+")  # a name ends up inside a spec, where ",", ":" and "=" have meanings
FIELDS = {"name", "path", "sha256", "options", "licence"}


class UserModelsError(ValueError):
    """A user model that cannot be added or a config file that cannot be read; the message says what to fix."""


@dataclass(frozen=True)
class UserModel:
    """A recorded model: its name in reports, absolute path, SHA-256 when added, spec options (without name),
    licence as the user stated it."""

    name: str
    path: str
    sha256: str
    options: dict[str, str] = field(default_factory=dict)
    licence: str = "not stated"

    @property
    def spec(self) -> str:
        """The `--embedder` spec that loads it."""
        options = {**self.options, "name": self.name}
        return f"{self.path}:" + ",".join(f"{k}={v}" for k, v in options.items())

    def problem(self) -> str | None:
        """Why the file may no longer be the model that was added (missing or changed), else None."""
        file = Path(self.path)
        if not file.is_file():
            return f"{self.path} is missing; restore it, or drop it with: advpriv models remove {self.name}"
        if sha256_of(file) != self.sha256:
            return (f"{self.path} has changed since it was added; check it, then add it again with "
                    f"advpriv models remove {self.name} and advpriv models add")
        return None


def config_file() -> Path:
    """The JSON file of the user's models: $ADVPRIV_CONFIG_DIR/models.json, else in the user config dir."""
    return Path(os.environ.get(CONFIG_ENV) or user_config_dir("advpriv")) / "models.json"


def read_models() -> list[UserModel]:
    """The recorded models, in the order they were added (none when there is no config file)."""
    file = config_file()
    if not file.is_file():
        return []
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserModelsError(f"{file} cannot be read ({error}); fix it or move it away to start afresh") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("models"), list):
        raise UserModelsError(f"{file} is not an advpriv models file (version {VERSION}); fix it or move it away")
    return [_record(file, k, item) for k, item in enumerate(data["models"])]


def _record(file: Path, k: int, item: object) -> UserModel:
    """One record of the file, checked: string fields, a hex SHA-256, known spec options."""
    bad = f"{file}: model {k + 1} is not valid"
    if not isinstance(item, dict) or set(item) != FIELDS:
        raise UserModelsError(f"{bad} (it needs exactly {', '.join(sorted(FIELDS))}); fix or remove it")
    options = item["options"]
    if not all(isinstance(item[key], str) for key in FIELDS - {"options"}) or not isinstance(options, dict):
        raise UserModelsError(f"{bad} (options must be an object, the others text); fix or remove it")
    if not _NAME.fullmatch(item["name"]):
        raise UserModelsError(f"{bad} (name {item['name']!r} must be letters, digits, '.', '+', '-' or '_')")
    if not _HEX64.fullmatch(item["sha256"]):
        raise UserModelsError(f"{bad} (sha256 must be 64 hex digits); fix or remove it")
    if not all(isinstance(v, str) for v in options.values()) or not set(options) <= set(OPTIONS) - {"name"}:
        raise UserModelsError(f"{bad} (options must be text values of {', '.join(OPTIONS[:-1])}); fix or remove it")
    return UserModel(item["name"], item["path"], item["sha256"], dict(options), item["licence"])


def _write(models: list[UserModel]) -> None:
    data = {"version": VERSION, "models": [asdict(m) for m in models]}
    atomic_write(config_file(), (json.dumps(data, indent=2) + "\n").encode())


def add_model(path: str | os.PathLike, options: dict[str, str], licence: str = "not stated") -> UserModel:
    """Record the model at `path` with spec `options` (name= defaults to the file's stem), once it has loaded."""
    file = Path(path).expanduser().resolve()
    options = dict(options)
    name = options.pop("name", None) or file.stem
    if not _NAME.fullmatch(name):
        raise UserModelsError(f"cannot name a model {name!r}: use letters, digits, '.', '+', '-' or '_' (--name)")
    models = read_models()
    if name in (DLIB, FACENET):
        raise UserModelsError(f"{name!r} is the name of a built-in model; give this one another name (--name)")
    if any(m.name == name for m in models):
        raise UserModelsError(
            f"a model named {name!r} is already in the ensemble; give this one another name (--name), or first "
            f"advpriv models remove {name}"
        )
    try:
        load_embedder(UserModel(name, str(file), "", options).spec)
    except (ValueError, FileNotFoundError) as error:  # SpecError, or a file refused as untrusted
        raise UserModelsError(str(error)) from None
    model = UserModel(name, str(file), sha256_of(file), options, licence)
    _write([*models, model])
    return model


def remove_model(name: str) -> UserModel:
    """Forget the model called `name` (its file is left alone) and return its record."""
    models = read_models()
    kept = [m for m in models if m.name != name]
    if len(kept) == len(models):
        known = ", ".join(m.name for m in models) or "none"
        raise UserModelsError(f"no added model is called {name!r} (added: {known}); see advpriv models list")
    _write(kept)
    return next(m for m in models if m.name == name)

