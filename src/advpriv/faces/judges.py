"""Judges: face recognisers run on the saved 8-bit image, other than the model that was attacked.

- `DlibJudge`: the real dlib-bin pipeline, as `face_recognition` runs it: HOG detector (upsampled once),
  5-point landmarks, 150×150 chip with padding 0.25, ResNet descriptor; same person when L2 < 0.6.
- `OnnxJudge`: an ONNX face embedder (e.g. the unseen MobileFaceNet, or an ensemble member) in its own input
  contract: faces aligned to the 5-point ArcFace template (eyes, nose tip and mouth corners from dlib's 68-point
  landmarks) or dlib's chip, at the model's size, scaled (x − 127.5)/128 or to [0,1], compared by cosine (or L2)
  distance. Its threshold is calibrated at the equal-error point on clean pairs (`equal_error_threshold`); the
  model file is the user's, never bundled or downloaded.
- `EmbedderJudge`: an attacked model (FaceNet, a user's `--embedder`) run the same way on the written file, so its
  verdict is the real pipeline's rather than the optimiser's.

`judge_faces` gives, per face found in the clean photo: still detected? still matching?

Example:
    >>> judge = DlibJudge()
    >>> verdicts = judge_faces(judge, "protected.png", "clean.jpg")  # doctest: +SKIP
    >>> [(v.detected, v.matches) for v in verdicts]                   # doctest: +SKIP
    [(True, False)]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import torch
from PIL import Image

from advpriv.faces.align import ALIGNMENTS, ARCFACE_SIZE, arcface_from_chip, resize_chip
from advpriv.faces.detect import CHIP_PADDING, arcface_points, dlib_models, face_boxes, import_dlib, to_uint8
from advpriv.faces.dlib_resnet import CHIP_SIZE, MATCH_THRESHOLD, MODEL_FILE
from advpriv.faces.embedders import METRICS, PIXEL_RANGES, RANGES, FaceEmbedder, input_side
from advpriv.faces.model_files import dlib_model_path
from advpriv.images import load_image

Box = tuple[int, int, int, int]  # left, top, right, bottom
ImageLike = str | os.PathLike | np.ndarray | torch.Tensor


class Judge(Protocol):
    name: str
    threshold: float

    def describe(self, image: np.ndarray) -> list[tuple[Box, np.ndarray]]: ...

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class FaceVerdict:
    """One clean face under a judge: found again in the protected image? distance to the reference, match?"""

    box: Box
    detected: bool
    distance: float | None
    matches: bool


def as_uint8(image: ImageLike) -> np.ndarray:
    """(H,W,3) uint8 RGB from a file path, a (3,H,W) tensor in [0,1], or such an array."""
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    return to_uint8(image)


class DlibJudge:
    """The real dlib-bin pipeline (`face_recognition.face_encodings` with the 5-point model)."""

    name = "dlib"
    threshold = MATCH_THRESHOLD

    @cached_property
    def recogniser(self):  # noqa: ANN201 - a dlib object
        return import_dlib().face_recognition_model_v1(str(dlib_model_path(MODEL_FILE)))

    def describe(self, image: np.ndarray) -> list[tuple[Box, np.ndarray]]:
        predictor = dlib_models()[1]
        out = []
        for box in face_boxes(image):
            shape = predictor(image, box)
            descriptor = np.array(self.recogniser.compute_face_descriptor(image, shape))
            out.append(((box.left(), box.top(), box.right(), box.bottom()), descriptor))
        return out

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.atleast_2d(a) - np.atleast_2d(b), axis=1)


def arcface_image_chip(image: np.ndarray, points: np.ndarray, size: int = ARCFACE_SIZE) -> np.ndarray:
    """A `size`-pixel uint8 face aligned by its 5 points (eyes, nose tip, mouth corners) to the ArcFace template
    (Pillow's bilinear affine transform; `advpriv.faces.align.arcface_chip` is its differentiable twin)."""
    from_chip = arcface_from_chip(points, size).ravel()
    return np.asarray(Image.fromarray(image).transform((size, size), Image.Transform.AFFINE, from_chip, Image.Resampling.BILINEAR))


class ChipJudge:
    """A face embedder run on the 8-bit photo through its own pipeline: dlib's detector, then the chip in the
    embedder's `alignment` ("arcface": dlib's 68-point landmarks to the ArcFace template, Pillow's bilinear warp;
    "dlib": dlib's 150-pixel chip, padding 0.25, resized) at `size`; subclasses give `embed`."""

    name: str
    threshold: float
    metric: str
    alignment: str
    size: int

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """Embeddings (N,D) of aligned uint8 chips (N,S,S,3)."""
        raise NotImplementedError

    def chip(self, image: np.ndarray, box) -> np.ndarray:  # noqa: ANN001 - a dlib rectangle
        """The uint8 chip (S,S,3) of the face in detector `box`, in this judge's alignment."""
        if self.alignment == "arcface":
            return arcface_image_chip(image, arcface_points(image, box), self.size)
        chip = import_dlib().get_face_chip(image, dlib_models()[1](image, box), size=CHIP_SIZE, padding=CHIP_PADDING)
        return to_uint8(resize_chip(torch.from_numpy(chip).permute(2, 0, 1)[None].float() / 255, self.size)[0])

    def describe(self, image: np.ndarray) -> list[tuple[Box, np.ndarray]]:
        out = []
        for box in face_boxes(image):
            descriptor = self.embed(self.chip(image, box)[None])[0]
            out.append(((box.left(), box.top(), box.right(), box.bottom()), descriptor))
        return out

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        if self.metric == "l2":
            return np.linalg.norm(a - b, axis=1)
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        return 1 - cos


class OnnxJudge(ChipJudge):
    """An ONNX face embedder run with onnxruntime on the 8-bit photo, in its input contract.

    `threshold` is the distance (1 − cosine similarity, or L2 with metric="l2") below which two faces match;
    calibrate it with `equal_error_threshold` on clean pairs of your own data (for ../shared's MobileFaceNet on
    celeba-id, 200 identities: 0.79). The chip side is read from the model's input shape when static, else `size`,
    else 112; `alignment` is "arcface" (dlib's 68-point landmarks to the ArcFace template) or "dlib" (dlib's
    150-pixel chip, padding 0.25, resized); `value_range` "-1..1" feeds (x − 127.5)/128 (MobileFaceNet's, the
    default), "0..1" feeds x/255, "0..255" the pixels themselves.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        threshold: float,
        name: str | None = None,
        value_range: str = "-1..1",
        size: int | None = None,
        metric: str = "cosine",
        alignment: str = "arcface",
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX face model at {path}; give the path of your own model file")
        if value_range not in RANGES or metric not in METRICS or alignment not in ALIGNMENTS:
            raise ValueError(
                f"value_range, metric and alignment must be in {RANGES}, {METRICS} and {ALIGNMENTS}; "
                f"got {value_range!r}, {metric!r}, {alignment!r}"
            )
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("the ONNX judge needs onnxruntime: pip install onnxruntime") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.size = input_side(tuple(d if isinstance(d, int) else None for d in model_input.shape), size, path)
        self.threshold, self.name, self.value_range = threshold, name or path.stem, value_range
        self.metric, self.alignment = metric, alignment

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """Embeddings (N,D) of aligned uint8 chips (N,S,S,3), one at a time."""
        x = chips.astype(np.float32).transpose(0, 3, 1, 2)
        offset, scale = PIXEL_RANGES[self.value_range]
        x = (x - offset) / scale
        return np.concatenate([self.session.run(None, {self.input_name: c[None]})[0] for c in x])


class EmbedderJudge(ChipJudge):
    """An attacked model (`advpriv.faces.embedders.FaceEmbedder`) as a judge of the written file: the real
    pipeline's detection, landmarks and warp instead of the optimiser's differentiable chips, with the embedder's
    own name, threshold, distance and contract.

    >>> from advpriv.faces.embedders import dlib_embedder
    >>> judge = EmbedderJudge(dlib_embedder())
    >>> judge.name, judge.threshold, judge.embed(np.zeros((1, 150, 150, 3), np.uint8)).shape
    ('dlib', 0.6, (1, 128))
    """

    def __init__(self, embedder: FaceEmbedder) -> None:
        self.embedder, self.name, self.threshold = embedder, embedder.name, embedder.threshold
        self.metric, self.alignment, self.size = embedder.metric, embedder.alignment, embedder.input_size

    def embed(self, chips: np.ndarray) -> np.ndarray:
        device = next(self.embedder.parameters(), torch.empty(0)).device
        with torch.no_grad():
            return self.embedder(torch.tensor(chips, device=device).permute(0, 3, 1, 2).float() / 255).cpu().numpy()


def equal_error_threshold(same: Sequence[float], different: Sequence[float]) -> float:
    """The distance threshold where false non-matches among `same` equal false matches among `different`."""
    same, different = np.sort(np.asarray(same)), np.sort(np.asarray(different))
    candidates = np.concatenate([same, different])
    false_reject = 1 - np.searchsorted(same, candidates, side="left") / len(same)
    false_accept = np.searchsorted(different, candidates, side="left") / len(different)
    return float(candidates[np.argmin(np.abs(false_reject - false_accept))])


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two inclusive boxes (left, top, right, bottom)."""
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(w, 0) * max(h, 0)
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def judge_faces(
    judge: Judge, protected: ImageLike, clean: ImageLike, gallery: np.ndarray | None = None, min_iou: float = 0.3
) -> list[FaceVerdict]:
    """Per face the judge finds in `clean`: is a face still found there (box IoU ≥ `min_iou`) in `protected`,
    and does it match its clean self, or, when `gallery` (G,D) is given, any gallery descriptor?"""
    return compare_faces(judge, judge.describe(as_uint8(clean)), judge.describe(as_uint8(protected)), gallery, min_iou)


def compare_faces(
    judge: Judge,
    clean_faces: list[tuple[Box, np.ndarray]],
    found: list[tuple[Box, np.ndarray]],
    gallery: np.ndarray | None = None,
    min_iou: float = 0.3,
) -> list[FaceVerdict]:
    """`judge_faces` on faces already described: `clean_faces` and `found` from `judge.describe`."""
    verdicts = []
    for box, clean_descriptor in clean_faces:
        overlaps = [iou(box, other) for other, _ in found]
        if not overlaps or max(overlaps) < min_iou:
            verdicts.append(FaceVerdict(box, False, None, False))
            continue
        descriptor = found[int(np.argmax(overlaps))][1]
        references = clean_descriptor[None] if gallery is None else gallery
        distance = float(judge.distance(descriptor[None], references).min())
        verdicts.append(FaceVerdict(box, True, distance, distance < judge.threshold))
    return verdicts
