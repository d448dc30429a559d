"""Judges: face recognisers run on the saved 8-bit image, other than the model that was attacked.

- `DlibJudge`: the real dlib-bin pipeline, as `face_recognition` runs it: HOG detector (upsampled once),
  5-point landmarks, 150×150 chip with padding 0.25, ResNet descriptor; same person when L2 < 0.6.
- `OnnxJudge`: an unseen ONNX face embedder (e.g. MobileFaceNet) on faces aligned to the 5-point ArcFace
  template (eyes, nose tip and mouth corners from dlib's 68-point landmarks), scaled (x − 127.5)/128,
  compared by cosine distance. Its threshold is calibrated at the equal-error point on clean pairs
  (`equal_error_threshold`); the model file is the user's, never bundled or downloaded.

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

from advpriv.faces.detect import UPSAMPLE, dlib_models, import_dlib, to_uint8
from advpriv.faces.dlib_resnet import MATCH_THRESHOLD, MODEL_FILE
from advpriv.faces.model_files import dlib_model_path
from advpriv.images import load_image

Box = tuple[int, int, int, int]  # left, top, right, bottom
ImageLike = str | os.PathLike | np.ndarray | torch.Tensor

ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
ARCFACE_SIZE = 112


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
        detector, predictor = dlib_models()
        out = []
        for box in detector(image, UPSAMPLE):
            shape = predictor(image, box)
            descriptor = np.array(self.recogniser.compute_face_descriptor(image, shape))
            out.append(((box.left(), box.top(), box.right(), box.bottom()), descriptor))
        return out

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.atleast_2d(a) - np.atleast_2d(b), axis=1)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991) taking points `src` (K,2) to `dst` (K,2), as a 2×3 matrix."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    s, d = src - src_mean, dst - dst_mean
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(sigma) @ sign) / s.var(0).sum()
    return np.hstack([scale * rotation, (dst_mean - scale * rotation @ src_mean)[:, None]])


def arcface_chip(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A 112×112 uint8 face aligned by its 5 points (eyes, nose tip, mouth corners) to the ArcFace template."""
    to_chip = np.vstack([similarity_transform(points, ARCFACE_TEMPLATE), [0, 0, 1]])
    from_chip = np.linalg.inv(to_chip)[:2].ravel()
    size = (ARCFACE_SIZE, ARCFACE_SIZE)
    return np.asarray(Image.fromarray(image).transform(size, Image.Transform.AFFINE, from_chip, Image.Resampling.BILINEAR))


def _arcface_points(shape) -> np.ndarray:  # noqa: ANN001 - a dlib full_object_detection with 68 parts
    """Eye centres, nose tip and mouth corners, image-left first, from dlib's 68 landmarks."""
    p = np.array([(q.x, q.y) for q in shape.parts()], dtype=np.float64)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


class OnnxJudge:
    """An ONNX face embedder (1×3×112×112, ArcFace alignment) run with onnxruntime; cosine distance.

    `threshold` is the cosine distance below which two faces match; calibrate it with `equal_error_threshold`
    on clean pairs of your own data (for ../shared's MobileFaceNet on celeba-id, 200 identities: 0.79).
    """

    def __init__(self, model_path: str | os.PathLike, threshold: float, name: str | None = None) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX face model at {path}; give the path of your own model file")
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("the ONNX judge needs onnxruntime: pip install onnxruntime") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.threshold, self.name = threshold, name or path.stem

    @cached_property
    def predictor68(self):  # noqa: ANN201 - a dlib object
        return import_dlib().shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """Embeddings (N,D) of ArcFace-aligned uint8 chips (N,112,112,3)."""
        x = ((chips.astype(np.float32) - 127.5) / 128).transpose(0, 3, 1, 2)
        return np.concatenate([self.session.run(None, {self.input_name: c[None]})[0] for c in x])

    def describe(self, image: np.ndarray) -> list[tuple[Box, np.ndarray]]:
        detector = dlib_models()[0]
        out = []
        for box in detector(image, UPSAMPLE):
            chip = arcface_chip(image, _arcface_points(self.predictor68(image, box)))
            out.append(((box.left(), box.top(), box.right(), box.bottom()), self.embed(chip[None])[0]))
        return out

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        return 1 - cos


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
