"""One /v1/protect request's work, as a worker process does it: decode, find the identity, protect, encode, judge.

It runs in a child process (see `advpriv.serve.isolate`): the judges and classifier targets load there on first
use and stay loaded for the next requests. Every refusal leaves it as a `ServiceError`.

Example:
    >>> request = ProtectRequest(open("me.jpg", "rb").read(), "me.jpg", {**DEFAULTS, "response": "json"})  # doctest: +SKIP
    >>> data, report = protect_upload(ServeSettings(), request, deadline=time.monotonic() + 300)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from advpriv import progress
from advpriv.faces import MODES, NoFaceError, identity_faces
from advpriv.faces.specs import load_judge
from advpriv.images import ImageError, load_image
from advpriv.protect import METHODS, MNDConfig, protect_encoded
from advpriv.protect.files import FACE_TARGET, FileReport, make_protector
from advpriv.protect.strength import STRENGTHS, strength_options
from advpriv.targets import available_targets, load_target

from .errors import ServiceError, from_image_error
from .settings import ServeSettings

MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
DEFAULTS = {"target": FACE_TARGET, "method": "mnd", "mode": "dodge", "strength": "medium", "format": "png",
            "response": "image"}
CHOICES = {"method": METHODS, "mode": MODES, "strength": tuple(STRENGTHS), "format": tuple(MEDIA_TYPES),
           "response": ("image", "json")}
MND_SHARE_OF_TIMEOUT = 0.8  # leave the rest of the deadline for decoding, encoding and the judges
IDENTITY_SIDE = 1024
"""An `as` photo's longest side once decoded: only its largest face's identity is read, and shrinking it while it
is still 8-bit keeps the memory of several photos per request small."""

_loaded: dict[str, object] = {}  # this process's classifier targets, by name, loaded on first use
_judges: list = []  # this process's judges, loaded on first use
_embedders: list = []  # this process's attacked face models (`advpriv models list`), loaded on first use


@dataclass(frozen=True)
class ProtectRequest:
    """The photo to protect (its bytes and safe name), the chosen options, and the `as` photos (name, bytes)."""

    data: bytes
    filename: str
    options: dict[str, str]
    as_photos: tuple[tuple[str, bytes], ...] = ()


def offered_targets(settings: ServeSettings) -> dict[str, str]:
    """Target names clients may choose, each with the spec it loads (names only ever come from the client)."""
    return {FACE_TARGET: FACE_TARGET, **{name: name for name in available_targets()},
            **dict(spec.split("=", 1) for spec in settings.extra_targets)}


def warm(settings: ServeSettings) -> None:
    """Import the protection code and load the face models in a fresh worker process, before its first request."""
    import advpriv.protect.face_protect  # noqa: F401
    from advpriv.faces.detect import dlib_models
    from advpriv.faces.level_scan import prepare

    dlib_models()
    prepare()
    judges_of(settings)


def protect_upload(settings: ServeSettings, request: ProtectRequest, deadline: float) -> tuple[bytes, FileReport]:
    """The protected file and its report; `deadline` (on `time.monotonic`) bounds the MND optimiser. Its stages
    ("reading", then those of `protect_encoded`) are reported to `advpriv.progress`."""
    name, options = request.filename, request.options
    try:
        progress.stage("reading")
        image = load_image(io.BytesIO(request.data), max_pixels=settings.max_pixels, name=name)
        as_images = _identity_photos(settings, request.as_photos)
        time_limit = max(0.0, (deadline - time.monotonic()) * MND_SHARE_OF_TIMEOUT)
        return protect_encoded(image, _protector(settings, options, time_limit, as_images), options["format"], name)
    except ImageError as e:
        raise from_image_error(e) from None
    except NoFaceError as e:
        raise ServiceError(422, "no_face", f"{name}: {e.found_nothing}.") from None
    except MemoryError:
        raise ServiceError(413, "too_large", f"{name}: this photo needs more memory than this server has; "
                                             "downscale it and send it again.") from None
    except ValueError as e:
        raise ServiceError(422, "bad_option", str(e)) from None


def _identity_photos(settings: ServeSettings, photos: tuple[tuple[str, bytes], ...]) -> list[torch.Tensor]:
    """Decode the `as` photos, one at a time, each shrunk to IDENTITY_SIDE; each must show a face."""
    images = [_decode_small(data, name, settings.max_pixels) for name, data in photos]
    if images:
        try:
            identity_faces(images, [f"the `as` photo {name}" for name, _ in photos])
        except NoFaceError as e:
            raise ServiceError(422, "no_face", f"{e.found_nothing}.") from None
    return images


def _decode_small(data: bytes, name: str, max_pixels: int) -> torch.Tensor:
    """An identity photo at most IDENTITY_SIDE on its longest side, shrunk by Pillow while 8-bit (a JPEG is decoded
    at a reduced scale), then converted like any upload; photos Pillow cannot shrink so take the full-size path."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (IDENTITY_SIDE, IDENTITY_SIDE))
            small = ImageOps.exif_transpose(im)
            small.thumbnail((IDENTITY_SIDE, IDENTITY_SIDE))
            buf = io.BytesIO()
            small.save(buf, "PNG")
    except Exception:  # odd modes or a damaged file: load_image decodes it or says what is wrong
        return _shrink(load_image(io.BytesIO(data), max_pixels=max_pixels, name=name))
    return load_image(io.BytesIO(buf.getvalue()), max_pixels=max_pixels, name=name)


def _shrink(image: torch.Tensor) -> torch.Tensor:
    scale = IDENTITY_SIDE / max(image.shape[-2:])
    if scale >= 1:
        return image
    size = [max(1, round(side * scale)) for side in image.shape[-2:]]
    return F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def judges_of(settings: ServeSettings) -> list:
    """The judges of every face result: dlib, then the configured ONNX judges (loaded once per process)."""
    if not _judges:
        _judges.extend(load_judge(spec) for spec in ("dlib", *settings.judges))
    return _judges


def embedders_of() -> list:
    """The face models every face request attacks: the default ensemble of `advpriv.models.ensemble`."""
    if not _embedders:
        from advpriv.models.ensemble import load_ensemble

        _embedders.extend(load_ensemble())
    return _embedders


def _protector(settings: ServeSettings, options: dict[str, str], time_limit: float, as_images: list[torch.Tensor]):
    target = options["target"]
    extra = strength_options(options["strength"], target, options["mode"], MNDConfig(time_limit=time_limit))
    if target == FACE_TARGET:
        return make_protector(FACE_TARGET, options["method"], mode=options["mode"], as_images=as_images,
                              embedders=embedders_of(), judges=judges_of(settings), **extra)
    if target not in _loaded:
        _loaded[target] = load_target(offered_targets(settings)[target], settings.trust_model_code)
    return make_protector(_loaded[target], options["method"], **extra)
