"""Face models named in one string, for the command line and the HTTP service: `PATH[:key=value,...]`.

A spec states the model's input contract, because a file alone does not say it:
- `threshold=T` (a distance: two faces match below it) or `similarity=s` (a cosine similarity: they match at or
  above it; the same as threshold=1−s with metric=cosine). One of the two is required.
- `metric`: cosine (the default) or l2.
- `size`: the chip side in pixels; read from the model's input shape when that is static (a different size= is an
  error), else given here, else 112.
- `align`: arcface (the ArcFace 5-point template scaled to size) or dlib (dlib's 150-pixel chip, padding 0.25,
  resized to size).
- `range`: the input values, 0..1 (RGB / 255), -1..1 ((x − 127.5) / 128 of 8-bit RGB x) or 0..255 (8-bit RGB).
- `name`: how reports call the model (default: the file's stem).

`load_embedder(spec)`: a face model to attack. "dlib" is dlib's ResNet, "facenet" FaceNet (`advpriv.faces.facenet`,
once fetched); otherwise an ONNX file (converted by onnx2torch), a `torch.export` `.pt2` file or a TorchScript file
(any other suffix). Defaults: align=arcface for ONNX and .pt2, dlib for TorchScript; range=0..1.
`load_judge(spec)`: a face model that re-checks the written file. "dlib" is the real dlib-bin pipeline; otherwise
an ONNX file run by onnxruntime, with the same options; defaults align=arcface, range=-1..1 (MobileFaceNet's).

The options follow the last ":" of the spec, so paths may hold colons (C:\\models\\net.pt:threshold=0.4).

Example:
    >>> parse_spec("models/net.onnx:similarity=0.3,size=160,range=-1..1")
    ('models/net.onnx', {'similarity': '0.3', 'size': '160', 'range': '-1..1'})
    >>> load_judge("dlib").name
    'dlib'
    >>> load_embedder("mobileface.onnx:similarity=0.179,size=112,align=arcface,range=0..1")  # doctest: +SKIP
    FaceEmbedder(...)
"""

from __future__ import annotations

import math
from pathlib import Path

from advpriv.faces.align import ALIGNMENTS
from advpriv.faces.embedders import MAX_SIZE, METRICS, MIN_SIZE, RANGES, FaceEmbedder, dlib_embedder, file_embedder
from advpriv.faces.judges import DlibJudge, Judge, OnnxJudge
from advpriv.models.registry import REGISTRY, resolve

DLIB = "dlib"
FACENET = "facenet"
OPTIONS = ("threshold", "similarity", "metric", "size", "align", "range", "name")


class SpecError(ValueError):
    """A face-model spec that cannot be used; the message says what to fix."""


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split "PATH:key=value,key=value" into the path and its options (none when no "key=" follows the last ":")."""
    path, colon, tail = spec.rpartition(":")
    if not colon or "=" not in tail:
        return spec, {}
    options: dict[str, str] = {}
    for item in tail.split(","):
        key, equals, value = item.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise SpecError(f"{spec!r}: cannot read option {item!r}; write options as key=value separated by commas")
        if key.strip() in options:
            raise SpecError(f"{spec!r}: {key.strip()} is given twice; give each option once")
        options[key.strip()] = value.strip()
    return path, options


def _check_keys(spec: str, options: dict[str, str]) -> None:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise SpecError(f"{spec!r}: unknown option {', '.join(unknown)}; the options are {', '.join(OPTIONS)}")


def _number(spec: str, options: dict[str, str], key: str) -> float:
    try:
        value = float(options[key])
    except ValueError:
        raise SpecError(f"{spec!r}: {key} must be a number, got {options[key]!r}") from None
    if not math.isfinite(value):
        raise SpecError(f"{spec!r}: {key} must be a finite number, got {options[key]!r}")
    return value


def _threshold(spec: str, path: Path, options: dict[str, str], metric: str, example: str) -> float:
    """The match threshold as a distance, from threshold= or similarity= (cosine: distance = 1 − similarity)."""
    if "threshold" in options and "similarity" in options:
        raise SpecError(f"{spec!r}: give threshold= (a distance) or similarity= (a cosine similarity), not both")
    if "similarity" in options:
        if metric != "cosine":
            raise SpecError(f"{spec!r}: similarity= is a cosine similarity; with metric={metric} give threshold=")
        similarity = _number(spec, options, "similarity")
        if not -1 < similarity < 1:
            raise SpecError(f"{spec!r}: similarity must lie between -1 and 1, got {similarity}")
        return 1 - similarity
    if "threshold" not in options:
        raise SpecError(
            f"{path}: give the model's match threshold, as threshold= (the distance below which two faces are the "
            f"same person) or similarity= (the cosine similarity at or above which they are), e.g. "
            f"{path}:threshold={example}; calibrate it on clean pairs with advpriv.faces.judges.equal_error_threshold"
        )
    value = _number(spec, options, "threshold")
    if not value > 0:
        raise SpecError(f"{spec!r}: threshold must be a positive distance, got {value}")
    return value


def _choice(spec: str, options: dict[str, str], key: str, choices: tuple[str, ...], default: str) -> str:
    value = options.get(key, default)
    if value not in choices:
        raise SpecError(f"{spec!r}: {key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _size(spec: str, options: dict[str, str]) -> int | None:
    if "size" not in options:
        return None
    try:
        size = int(options["size"])
    except ValueError:
        raise SpecError(f"{spec!r}: size must be a whole number of pixels, got {options['size']!r}") from None
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise SpecError(f"{spec!r}: size must be between {MIN_SIZE} and {MAX_SIZE} pixels (a face model's chip side), "
                        f"got {size}")
    return size


def _existing(spec: str, path: str, kind: str) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise SpecError(f"{spec!r}: no {kind} file at {file}; give the path of your model file (or 'dlib')")
    return file


def _dlib_without_options(spec: str, options: dict[str, str]) -> None:
    if options:
        raise SpecError(f"{spec!r}: dlib takes no options (it matches below an L2 distance of 0.6, on 150-pixel chips)")


def load_embedder(spec: str, trust_code: bool = False) -> FaceEmbedder:
    """A face model to attack, from `dlib` or `model.onnx|.pt2|.pt:threshold=T|similarity=S[,metric=cosine|l2]
    [,size=N][,align=arcface|dlib][,range=0..1|-1..1|0..255][,name=N]`. TorchScript files, and .pt2 files that
    hold pickles, load only with `trust_code` (they are code; see `advpriv.model_trust`)."""
    path, options = parse_spec(spec)
    if path == DLIB:
        _dlib_without_options(spec, options)
        return dlib_embedder()
    entry = REGISTRY.get(path)
    if entry is not None and entry.loader is not None:  # a registry model with its own loader, such as facenet
        if options:
            contract = " ".join(f"{k}={v}" for k, v in entry.contract.items())
            raise SpecError(f"{spec!r}: {path} takes no options (its contract is fixed: {contract})")
        return resolve(entry.loader)()
    _check_keys(spec, options)
    kinds = {".onnx": "ONNX", ".pt2": "torch.export .pt2"}
    file = _existing(spec, path, kinds.get(Path(path).suffix.lower(), "TorchScript"))
    metric = _choice(spec, options, "metric", METRICS, "cosine")
    threshold = _threshold(spec, file, options, metric, "0.4")
    default_alignment = "arcface" if file.suffix.lower() in (".onnx", ".pt2") else "dlib"
    alignment = _choice(spec, options, "align", ALIGNMENTS, default_alignment)
    value_range = _choice(spec, options, "range", RANGES, "0..1")
    try:
        return file_embedder(file, threshold, metric, _size(spec, options), alignment, value_range, options.get("name"),
                             trust_code)
    except (ValueError, ImportError) as error:
        raise SpecError(str(error)) from None


def load_judge(spec: str) -> Judge:
    """A judge, from "dlib" or "model.onnx:threshold=T|similarity=S[,...]" (the options of `load_embedder`;
    defaults: align=arcface, range=-1..1, size from the model, cosine)."""
    path, options = parse_spec(spec)
    if path == DLIB:
        _dlib_without_options(spec, options)
        return DlibJudge()
    _check_keys(spec, options)
    file = _existing(spec, path, "ONNX")
    metric = _choice(spec, options, "metric", METRICS, "cosine")
    threshold = _threshold(spec, file, options, metric, "0.79")
    alignment = _choice(spec, options, "align", ALIGNMENTS, "arcface")
    value_range = _choice(spec, options, "range", RANGES, "-1..1")
    try:
        return OnnxJudge(file, threshold, options.get("name"), value_range, _size(spec, options), metric, alignment)
    except (ImportError, ValueError) as error:
        raise SpecError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise SpecError(f"{file} could not be opened as an ONNX model ({str(error).strip().splitlines()[0]})") from None
