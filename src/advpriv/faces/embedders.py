"""Face embedders: a model from face chips to descriptors, with its own input contract, distance and threshold.

An embedder states the chips it takes: `alignment` ("dlib": dlib's `get_face_chip`, 150 pixels with padding 0.25,
resized to `input_size`; "arcface": the ArcFace 5-point template scaled to `input_size`), RGB in [0,1]. It returns
descriptors (N,D); two faces match when `distance` < `threshold`. `file_embedder` loads a user's model from an
ONNX file (converted by onnx2torch, so gradients flow), a `torch.export` `.pt2` file or a TorchScript file.

Example:
    >>> import torch
    >>> dlib = dlib_embedder()
    >>> d = dlib(torch.rand(2, 3, 150, 150))
    >>> dlib.distance(d[:1], d[1:]).shape, dlib.threshold, dlib.alignment
    (torch.Size([1]), 0.6, 'dlib')
    >>> file_embedder("mobileface.onnx", threshold=1 - 0.179).input_size  # doctest: +SKIP
    112
"""

from __future__ import annotations

import importlib.util
import sys
import types
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from advpriv.faces.align import ALIGNMENTS, resize_chip
from advpriv.faces.dlib_resnet import CHIP_SIZE, MATCH_THRESHOLD, dlib_resnet
from advpriv.model_trust import UntrustedModelError, check_export_archive, check_export_graph, require_trust

METRICS = ("l2", "cosine")
# A model's input range: (offset, scale) such that it takes (x − offset) / scale of 8-bit pixels x; "-1..1" as
# insightface's models take, "0..255" the pixels themselves (OpenCV's SFace)
PIXEL_RANGES = {"0..1": (0.0, 255.0), "-1..1": (127.5, 128.0), "0..255": (0.0, 1.0)}
RANGES = tuple(PIXEL_RANGES)
DEFAULT_SIZE = 112
MIN_SIZE, MAX_SIZE = 16, 1024  # chip sides accepted: a 1024² chip already costs 12 MB a face, per model and step
ONNX2TORCH = "onnx2torch==1.5.15"


class FaceEmbedder(nn.Module):
    """Wrap `model` (chips in [0,1] at `input_size` → (N,D)) with its metric ("l2" or "cosine"), threshold and
    the `alignment` ("dlib" or "arcface") of the chips it takes."""

    def __init__(
        self,
        model: nn.Module,
        threshold: float,
        metric: str = "l2",
        input_size: int = CHIP_SIZE,
        name: str = "face",
        alignment: str = "dlib",
    ) -> None:
        super().__init__()
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.threshold, self.metric, self.input_size, self.name = threshold, metric, input_size, name
        self.alignment = alignment

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.model(resize_chip(chips, self.input_size))

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Row-wise distance between descriptors (N,D) and (N,D) or (1,D): L2, or 1 − cosine similarity."""
        if self.metric == "l2":
            return (a - b).square().sum(1).add(1e-12).sqrt()
        return 1 - F.cosine_similarity(a, b, dim=1)

    def train(self, mode: bool = True) -> "FaceEmbedder":
        """Embedders stay in eval mode during attacks."""
        return super().train(False)


@lru_cache(maxsize=4)
def _dlib_embedder(device: str) -> FaceEmbedder:
    return FaceEmbedder(dlib_resnet(device), MATCH_THRESHOLD, "l2", CHIP_SIZE, name="dlib")


def dlib_embedder(device: torch.device | str = "cpu") -> FaceEmbedder:
    """dlib's ResNet (the model behind `face_recognition`): L2 distance, match below 0.6. Loaded once per device."""
    return _dlib_embedder(str(torch.device(device)))


def reads_arcface(embedders: Sequence[FaceEmbedder]) -> bool:
    """Whether any of `embedders` reads ArcFace-aligned chips (and so needs each face's ArcFace points).

    >>> reads_arcface([dlib_embedder()])
    False
    """
    return any(embedder.alignment == "arcface" for embedder in embedders)


class PixelRange(nn.Module):
    """Feed `model` chips in [0,1] as (x − offset) / scale of 8-bit pixels x, per `value_range` of PIXEL_RANGES.

    >>> PixelRange(nn.Identity(), "-1..1")(torch.tensor([0.0, 1.0]))
    tensor([-0.9961,  0.9961])
    """

    def __init__(self, model: nn.Module, value_range: str) -> None:
        super().__init__()
        self.model = model
        self.offset, self.scale = PIXEL_RANGES[value_range]

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.model((chips * 255 - self.offset) / self.scale)


class OneByOne(nn.Module):
    """Run `model`, which takes a batch of exactly one, on each chip of a batch in turn.

    >>> OneByOne(nn.Flatten())(torch.rand(3, 2, 4)).shape
    torch.Size([3, 8])
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.model(chip[None]) for chip in chips])


class Exported(nn.Module):
    """The module of a `torch.export` program; its train/eval mode was fixed at export, so mode changes stop here."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def train(self, mode: bool = True) -> "Exported":
        self.training = mode
        return self

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.module(chips)


Shape = tuple[int | None, ...]  # a model's input shape, None where a dimension is dynamic


def _onnx2torch_convert() -> Callable:
    """onnx2torch's `convert`, imported without torchvision when that is absent.

    onnx2torch imports torchvision only for its NonMaxSuppression and RoiAlign converters, which face embedders do
    not use; a stand-in module serves that import and is removed again, so nobody else sees it.
    """
    if importlib.util.find_spec("onnx2torch") is None:
        raise ImportError(f"ONNX face models need onnx2torch; install it with: pip install --no-deps {ONNX2TORCH}")
    if importlib.util.find_spec("torchvision") is not None:
        from onnx2torch import convert

        return convert

    def needs_torchvision(*args: object, **kwargs: object) -> None:
        raise ImportError("this ONNX model uses NonMaxSuppression or RoiAlign, which need torchvision")

    ops = types.ModuleType("torchvision.ops")
    ops.nms = ops.box_convert = ops.roi_align = needs_torchvision  # type: ignore[attr-defined]
    stand_in = types.ModuleType("torchvision")
    stand_in.ops = ops  # type: ignore[attr-defined]
    sys.modules.update({"torchvision": stand_in, "torchvision.ops": ops})
    try:
        from onnx2torch import convert
    finally:
        del sys.modules["torchvision"], sys.modules["torchvision.ops"]
    return convert


def _load_onnx(path: Path, trust_code: bool) -> tuple[nn.Module, Shape]:
    """An ONNX network (data, not code: `trust_code` is not needed)."""
    import onnx

    convert = _onnx2torch_convert()
    try:
        proto = onnx.load(str(path))
        dims = proto.graph.input[0].type.tensor_type.shape.dim
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
        module = convert(proto)
    except Exception as error:  # noqa: BLE001 - onnx and onnx2torch raise many types
        raise ValueError(
            f"{path} could not be converted from ONNX to PyTorch by onnx2torch ({_first_line(error)}); "
            "check that it is an ONNX model file (onnx.checker.check_model) with standard operators"
        ) from None
    return module, shape


def _load_exported(path: Path, trust_code: bool) -> tuple[nn.Module, Shape]:
    save_hint = "save your model with torch.export.save(torch.export.export(model, (chips,)), path)"
    try:
        if not trust_code:
            check_export_archive(path)
        program = torch.export.load(str(path))
    except UntrustedModelError:
        raise
    except Exception as error:  # noqa: BLE001 - torch.export raises many types
        raise ValueError(f"{path} is not a torch.export program ({_first_line(error)}); {save_hint}") from None
    module = program.module()
    if not trust_code:
        check_export_graph(module, path)
    first = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name in program.graph_signature.user_inputs)
    shape = tuple(d if isinstance(d, int) else None for d in first.meta["val"].shape)
    return Exported(module), shape


def _load_torchscript(path: Path, trust_code: bool) -> tuple[nn.Module, Shape]:
    require_trust(path, trust_code)
    try:
        return torch.jit.load(str(path), map_location="cpu"), ()
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"{path} is not a TorchScript file ({_first_line(error)}); save your model with "
            "torch.jit.script(model).save(path) or torch.jit.trace, or as .onnx or torch.export .pt2"
        ) from None


def load_network(path: str | Path, trust_code: bool = False) -> tuple[nn.Module, Shape]:
    """A face network and its declared input shape (empty when unknown), by file suffix: `.onnx` (converted by
    onnx2torch), `.pt2` (`torch.export`), anything else TorchScript. Raises ValueError saying what is wrong, and
    UntrustedModelError for a file that could run code (see `advpriv.model_trust`) unless `trust_code`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no face model file at {path}; give the path of your model file")
    loaders = {".onnx": _load_onnx, ".pt2": _load_exported}
    return loaders.get(path.suffix.lower(), _load_torchscript)(path, trust_code)


def input_side(shape: Shape, size: int | None, path: Path) -> int:
    """The chip side a model takes: from its input `shape` (N,3,S,S) when static, else `size`, else 112.

    >>> input_side((None, 3, 160, 160), None, Path("m.onnx")), input_side((None, 3, None, None), 96, Path("m.onnx"))
    (160, 96)
    """
    if len(shape) not in (0, 4) or (len(shape) == 4 and shape[1] not in (3, None)):
        raise ValueError(f"{path} takes input {shape}; a face model must take RGB chips (N,3,S,S)")
    side = shape[2] if len(shape) == 4 else None
    if side is not None and shape[3] not in (side, None):
        raise ValueError(f"{path} takes {shape[2]}×{shape[3]} input; a face model must take square chips")
    if side is not None and size is not None and size != side:
        raise ValueError(f"{path} takes {side}×{side} chips but size={size} was given; give size={side} or leave it out")
    side = side or size or DEFAULT_SIZE
    if not MIN_SIZE <= side <= MAX_SIZE:
        raise ValueError(f"{path} takes {side}×{side} chips; face models here take chips of {MIN_SIZE} to {MAX_SIZE} "
                         "pixels a side: export it for a smaller input")
    return side


def file_embedder(
    path: str | Path,
    threshold: float,
    metric: str = "cosine",
    size: int | None = None,
    alignment: str = "arcface",
    value_range: str = "0..1",
    name: str | None = None,
    trust_code: bool = False,
) -> FaceEmbedder:
    """A user's face embedder from an ONNX, `torch.export` .pt2 or TorchScript file (see `load_network`), checked
    once on two chips. It takes RGB chips of `size` pixels (read from the file when static) in `alignment`, with
    values in `value_range` ("0..1"; "-1..1" for (x − 127.5)/128; "0..255"), and matches below `threshold` in `metric`.

    TorchScript, and a `.pt2` that holds pickles or calls file operations, load only with `trust_code` (they are
    code; see `advpriv.model_trust`).

    Raises FileNotFoundError when there is no file, ValueError when it cannot be loaded, its input shape disagrees
    with `size`, or it does not map a batch of chips to one finite descriptor each.
    """
    if value_range not in RANGES:
        raise ValueError(f"value range must be one of {RANGES}, got {value_range!r}")
    path = Path(path)
    network, shape = load_network(path, trust_code)
    side = input_side(shape, size, path)
    if len(shape) == 4 and shape[0] is not None:
        if shape[0] != 1:
            raise ValueError(f"{path} takes a fixed batch of {shape[0]}; export it with a batch of 1 or a dynamic batch")
        network = OneByOne(network)
    if value_range != "0..1":
        network = PixelRange(network, value_range)
    embedder = FaceEmbedder(network, threshold, metric, side, name=name or path.stem, alignment=alignment)
    _check_output(embedder, path)
    return embedder


def torchscript_embedder(
    path: str | Path, threshold: float, metric: str = "cosine", input_size: int = DEFAULT_SIZE, name: str | None = None,
    trust_code: bool = False,
) -> FaceEmbedder:
    """A user's TorchScript face embedder taking [0,1] RGB chips of `input_size` (dlib alignment), checked once;
    TorchScript is code, so it loads only with `trust_code=True`."""
    return file_embedder(path, threshold, metric, input_size, alignment="dlib", name=name, trust_code=trust_code)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _check_output(embedder: FaceEmbedder, path: Path) -> None:
    """Run the embedder once on two random chips: it must return two finite descriptors, (2,D)."""
    size = embedder.input_size
    chips = torch.rand((2, 3, size, size), generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            out = embedder(chips)
    except Exception as error:  # noqa: BLE001 - any failure of the user's model is reported with its file
        raise ValueError(
            f"{path} failed on a batch of (2,3,{size},{size}) RGB chips in [0,1] ({_first_line(error)}); "
            "check the input size it expects"
        ) from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2 or out.shape[1] < 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"{path} returned {shape} for 2 chips; a face embedder must return one descriptor per chip, (N,D)"
        )
    if not out.isfinite().all():
        raise ValueError(f"{path} returned NaN or infinite descriptors for 2 chips; check its input range (range=0..1, -1..1 or 0..255)")
