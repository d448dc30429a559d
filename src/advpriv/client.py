"""A small client for `advpriv serve`: protect photos remotely, and run DeepObfuscator's phone/cloud split.

The device side runs the exported encoder locally with onnxruntime; only its features travel to the server's
`/v1/features/predict`, never the photo.

Example:
    >>> client = Client("http://127.0.0.1:8000", token="s3cret")                     # doctest: +SKIP
    >>> result = client.protect("me.jpg", out="me.protected.png", strength="high")   # doctest: +SKIP
    >>> result["success"], result["metrics"]["psnr"]                                 # doctest: +SKIP
    (True, 44.8)
    >>> encoder = LocalEncoder("encoder.onnx")                                       # doctest: +SKIP
    >>> client.predict_features(encoder(["me.jpg"]))                                 # doctest: +SKIP
    [{'Smiling': True, 'probability': 0.93}]
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Sequence

import httpx
import numpy as np
import torch
import torch.nn.functional as F

from .feature_wire import FORMATS, encode_features
from .images import atomic_write, load_image, quantize
from .serve.settings import TOKEN_ENV


def _named(photo: str | os.PathLike | bytes) -> tuple[str, bytes]:
    """(file name, bytes) of a photo given as a path or as bytes."""
    if isinstance(photo, (bytes, bytearray)):
        return "photo", bytes(photo)
    return Path(photo).name, Path(photo).read_bytes()


class ClientError(RuntimeError):
    """The server refused a request; `status` and `code` say why, the message says what to do."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code = status, code


class Client:
    """Talks to one advpriv server; the token defaults to $ADVPRIV_TOKEN. Close it (or use `with`) when done.

    Example:
        >>> with Client("http://127.0.0.1:8000") as client:   # doctest: +SKIP
        ...     client.health()["status"]
        'ok'
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8000", token: str | None = None, timeout: float = 600) -> None:
        token = token or os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def protect(self, photo: str | os.PathLike | bytes, out: str | os.PathLike | None = None,
                as_photos: Sequence[str | os.PathLike | bytes] = (), **options: str) -> dict:
        """Protect one photo (path or bytes) with the server's options (target, method, mode, strength, format).

        as_photos: with mode="impersonate", photos (paths or bytes) of the identity to be recognised as.
        Returns the JSON report with the image decoded into `image_bytes`; writes it to `out` when given
        (refusing to overwrite the photo itself).
        """
        if out is not None and not isinstance(photo, (bytes, bytearray)) and Path(out).resolve() == Path(photo).resolve():
            raise ValueError(f"{out} is the input photo; choose another output path so the original is kept.")
        files = [("image", _named(photo)), *(("as", _named(p)) for p in as_photos)]
        reply = self._check(self.http.post("/v1/protect", files=files, data={**options, "response": "json"}))
        report = reply.json()
        report["image_bytes"] = base64.b64decode(report.pop("image_base64"))
        if out is not None:
            atomic_write(out, report["image_bytes"])
        return report

    def predict_features(self, features: np.ndarray, fmt: str = "npy") -> list[dict]:
        """Send encoder features (N,C,h,w), float32 or float16, to the cloud classifier; its predictions."""
        body = encode_features(features, fmt)
        reply = self._check(self.http.post("/v1/features/predict", content=body,
                                           headers={"Content-Type": FORMATS[fmt]}))
        return reply.json()["predictions"]

    def health(self) -> dict:
        return self._check(self.http.get("/healthz")).json()

    def close(self) -> None:
        """Close the connections kept open to the server."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @staticmethod
    def _check(reply: httpx.Response) -> httpx.Response:
        if reply.is_success:
            return reply
        try:
            error = reply.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = {"code": "http_error", "message": reply.text[:200]}
        raise ClientError(reply.status_code, error["code"], error["message"])


class LocalEncoder:
    """The device half: an encoder exported by `advpriv obfuscator export`, run with onnxruntime on this machine."""

    def __init__(self, onnx_path: str | os.PathLike, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        shape = self.session.get_inputs()[0].shape
        self.image_size = (int(shape[2]), int(shape[3]))

    def __call__(self, photos: Sequence[str | os.PathLike | torch.Tensor], fp16: bool = False) -> np.ndarray:
        """Features (N,C,h,w) of photos (paths or (3,H,W) tensors in [0,1]), resized to the encoder's input size
        as in training (bilinear, antialiased)."""
        batch = torch.stack([_resized(p if isinstance(p, torch.Tensor) else load_image(p, min_side=1), self.image_size)
                             for p in photos])
        features = self.session.run(None, {"image": batch.numpy()})[0]
        return features.astype(np.float16) if fp16 else features


def _resized(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(image.shape[-2:]) == size:
        return image
    return quantize(F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0])
