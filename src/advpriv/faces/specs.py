"""Face models named in one string, for the command line and the HTTP service: `PATH[:key=value,...]`.

- `load_embedder(spec)`: a face model to attack. "dlib" is dlib's ResNet; otherwise a TorchScript file taking
  dlib-aligned RGB chips in [0,1] (N,3,size,size) and returning descriptors (N,D). Options: `threshold` (required:
  the distance below which two faces match), `metric` (cosine, the default, or l2), `size` (input side in pixels,
  default 112), `name` (default: the file's stem).
- `load_judge(spec)`: a face model that re-checks the written file. "dlib" is the real dlib-bin pipeline;
  otherwise an ONNX file taking 1×3×112×112 faces aligned to the ArcFace 5-point template, scaled (x − 127.5)/128,
  compared by cosine distance. Options: `threshold` (required), `name`.

The options follow the last ":" of the spec, so paths may hold colons (C:\\models\\net.pt:threshold=0.4).

Example:
    >>> parse_spec("models/net.pt:threshold=0.4,metric=l2")
    ('models/net.pt', {'threshold': '0.4', 'metric': 'l2'})
    >>> load_judge("dlib").name
    'dlib'
    >>> load_embedder("net.pt:threshold=0.4")  # doctest: +SKIP
    FaceEmbedder(...)
"""

from __future__ import annotations

from pathlib import Path

from advpriv.faces.embedders import METRICS, FaceEmbedder, dlib_embedder, torchscript_embedder
from advpriv.faces.judges import DlibJudge, Judge, OnnxJudge

DLIB = "dlib"
EMBEDDER_OPTIONS = ("threshold", "metric", "size", "name")
JUDGE_OPTIONS = ("threshold", "name")


class SpecError(ValueError):
    """A face-model spec that cannot be used; the message says what to fix."""


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split "PATH:key=value,key=value" into the path and its options (none when no "key=" follows the last ":")."""
    path, colon, tail = spec.rpartition(":")
    if not colon or "=" not in tail:
        return spec, {}
    options = {}
    for item in tail.split(","):
        key, equals, value = item.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise SpecError(f"{spec!r}: cannot read option {item!r}; write options as key=value separated by commas")
        options[key.strip()] = value.strip()
    return path, options


def _check_keys(spec: str, options: dict[str, str], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise SpecError(f"{spec!r}: unknown option {', '.join(unknown)}; the options are {', '.join(allowed)}")


def _threshold(spec: str, path: Path, options: dict[str, str], example: str) -> float:
    if "threshold" not in options:
        raise SpecError(
            f"{path}: give the model's match threshold (the distance below which two faces are the same person), "
            f"e.g. {path}:threshold={example}; calibrate it on clean pairs with advpriv.faces.judges.equal_error_threshold"
        )
    try:
        value = float(options["threshold"])
    except ValueError:
        raise SpecError(f"{spec!r}: threshold must be a number, got {options['threshold']!r}") from None
    if not value > 0:
        raise SpecError(f"{spec!r}: threshold must be a positive distance, got {value}")
    return value


def _existing(spec: str, path: str, kind: str) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise SpecError(f"{spec!r}: no {kind} file at {file}; give the path of your model file (or 'dlib')")
    return file


def load_embedder(spec: str) -> FaceEmbedder:
    """A face model to attack, from "dlib" or "model.pt:threshold=T[,metric=cosine|l2][,size=112][,name=N]"."""
    path, options = parse_spec(spec)
    if path == DLIB:
        if options:
            raise SpecError(f"{spec!r}: dlib takes no options (its threshold is 0.6 and its chips 150 pixels)")
        return dlib_embedder()
    _check_keys(spec, options, EMBEDDER_OPTIONS)
    file = _existing(spec, path, "TorchScript")
    threshold = _threshold(spec, file, options, "0.4")
    metric = options.get("metric", "cosine")
    if metric not in METRICS:
        raise SpecError(f"{spec!r}: metric must be one of {', '.join(METRICS)}, got {metric!r}")
    try:
        size = int(options.get("size", "112"))
    except ValueError:
        raise SpecError(f"{spec!r}: size must be a whole number of pixels, got {options['size']!r}") from None
    if size < 8:
        raise SpecError(f"{spec!r}: size must be at least 8 pixels, got {size}")
    try:
        return torchscript_embedder(file, threshold, metric, size, name=options.get("name"))
    except ValueError as error:
        raise SpecError(str(error)) from None


def load_judge(spec: str) -> Judge:
    """A judge, from "dlib" or "model.onnx:threshold=T[,name=N]" (ArcFace-aligned 112×112 input, cosine distance)."""
    path, options = parse_spec(spec)
    if path == DLIB:
        if options:
            raise SpecError(f"{spec!r}: the dlib judge takes no options (it matches below 0.6, as dlib does)")
        return DlibJudge()
    _check_keys(spec, options, JUDGE_OPTIONS)
    file = _existing(spec, path, "ONNX")
    threshold = _threshold(spec, file, options, "0.79")
    try:
        judge = OnnxJudge(file, threshold, name=options.get("name"))
    except ImportError as error:
        raise SpecError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise SpecError(f"{file} could not be opened as an ONNX model ({str(error).strip().splitlines()[0]})") from None
    shape = judge.session.get_inputs()[0].shape
    if len(shape) != 4 or any(isinstance(d, int) and d != want for d, want in zip(shape[1:], (3, 112, 112))):
        raise SpecError(
            f"{file} takes input {shape}; an ONNX judge must take 1×3×112×112 ArcFace-aligned faces (NCHW RGB)"
        )
    return judge
