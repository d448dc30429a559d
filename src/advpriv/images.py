"""Image I/O: decode any photo to float RGB in [0,1], write 8-bit copies with no metadata, atomically.

Example:
    >>> from advpriv.images import load_image, save_image
    >>> x = load_image("photo.jpg")            # doctest: +SKIP
    >>> save_image(x, "out/photo.png")         # doctest: +SKIP
"""

from __future__ import annotations

import errno
import os
import tempfile
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from advpriv.avif_header import HeaderError, frame_sizes

register_heif_opener()  # HEIC/HEIF photos (iPhones) decode like any other format

MAX_PIXELS = 50_000_000
"""Largest image (width × height) that is decoded; bigger files are refused as possible decompression bombs."""
MIN_SIDE = 32
"""Shortest side (pixels) of an image to protect: below it no model sees anything worth protecting."""
MAX_ASPECT = 20
"""Longest side over shortest side: a model resizes the short side up, so a thinner image would cost memory far
beyond its pixel count (a 40000×1 PNG asked a classifier's resize for 31 GB)."""

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                  ".pgm", ".avif", ".heic", ".heif"}
FORMATS = {"png": "PNG", "jpg": "JPEG"}


class ImageError(ValueError):
    """A file could not be used as an image; the message names the file and says what to do.

    `kind` sorts the cause for callers that answer differently (the HTTP service's status codes):
    "missing", "not_an_image", "too_large", "too_small" or "damaged".
    """

    def __init__(self, message: str, kind: str = "damaged") -> None:
        super().__init__(message)
        self.kind = kind


def load_image(source: str | os.PathLike | BinaryIO, max_pixels: int = MAX_PIXELS, name: str | None = None,
               min_side: int = MIN_SIDE) -> torch.Tensor:
    """Decode a file or binary stream to a (3,H,W) float tensor in [0,1], with EXIF orientation applied.

    `name` is how errors refer to a stream (default: the path, or "<upload>"). Images with a side below
    `min_side` or more than `MAX_ASPECT` times longer than wide (or the reverse) are refused with `ImageError`.

    Grey, palette, alpha, CMYK and 16-bit images are converted to RGB; alpha is composited on white.

    >>> load_image("astronaut.png").shape  # doctest: +SKIP
    torch.Size([3, 512, 512])
    """
    path = Path(name or (source if isinstance(source, (str, os.PathLike)) else "<upload>"))
    try:
        with Image.open(source) as im:
            _check_size(path, im.size, max_pixels, min_side)
            if im.format == "AVIF":
                _check_avif(path, source, max_pixels)
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im.load()
                im = ImageOps.exif_transpose(im)
            pixels = torch.from_numpy(_to_rgb_array(im)).permute(2, 0, 1).contiguous()
            return pixels.float().div_(255) if pixels.dtype == torch.uint8 else pixels
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file; check the path.", "missing") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image file.", "missing") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a readable image (unknown or corrupt format); re-export it as PNG or JPEG.",
                         "not_an_image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{path}: refused as too large to decode safely ({e}); downscale it first.",
                         "too_large") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ImageError(f"{path}: a symbolic link that loops back on itself; point it at an image file.",
                             "missing") from None
        raise ImageError(f"{path}: the image data is damaged or truncated ({e}); re-export or re-download it.") from None
    except (SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: the image data is damaged or truncated ({e}); re-export or re-download it.") from None


def _check_size(path: Path, size: tuple[int, int], max_pixels: int, min_side: int = MIN_SIDE) -> None:
    """Refuse sizes no protection can use, before any pixel is decoded.

    >>> _check_size(Path("thin.png"), (40000, 1), MAX_PIXELS)
    Traceback (most recent call last):
    ...
    advpriv.images.ImageError: thin.png: 40000×1 pixels is too small to protect (shortest side below 32 px); use a photo at least 32 px on each side.
    """
    w, h = size
    if w * h > max_pixels:
        raise ImageError(
            f"{path}: {w}×{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} "
            "(decompression-bomb guard); downscale the image or raise --max-pixels.",
            "too_large",
        )
    if w < 1 or h < 1:
        raise ImageError(f"{path}: the image has no pixels ({w}×{h}).")
    if min(w, h) < min_side:
        raise ImageError(f"{path}: {w}×{h} pixels is too small to protect (shortest side below {min_side} px); "
                         f"use a photo at least {min_side} px on each side.", "too_small")
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise ImageError(f"{path}: {w}×{h} pixels is too thin to protect (more than {MAX_ASPECT}:1); crop it into "
                         "parts closer to square first.", "too_small")


def _check_avif(path: Path, source: str | os.PathLike | BinaryIO, max_pixels: int) -> None:
    """Refuse an AVIF whose AV1 data would decode to more pixels than its header says, or than `max_pixels`,
    before the decoder runs (Pillow checks only the header's size)."""
    if isinstance(source, (str, os.PathLike)):
        data = Path(source).read_bytes()
    else:
        source.seek(0)
        data = source.read()
    try:
        sizes = frame_sizes(data)
    except HeaderError as e:
        raise ImageError(f"{path}: the AVIF container is damaged ({e}); re-export the image.") from None
    if not sizes.coded or not sizes.stated:
        raise ImageError(f"{path}: the AVIF's size cannot be read from its headers; re-export the image.")
    w, h = max(sizes.coded, key=lambda size: size[0] * size[1])
    if w * h > max_pixels:
        raise ImageError(f"{path}: its AV1 data is {w}×{h} = {w * h:,} pixels, over the limit of {max_pixels:,} "
                         "(decompression-bomb guard); downscale the image or raise --max-pixels.", "too_large")
    if w * h > max(sw * sh for sw, sh in sizes.stated):
        raise ImageError(f"{path}: its header says {'/'.join(f'{sw}×{sh}' for sw, sh in sizes.stated)} but its "
                         f"AV1 data is {w}×{h}; the file is damaged or crafted: re-export the image.")


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """Any Pillow mode to an (H,W,3) array: uint8 for 8-bit modes (the caller scales it), float32 in [0,1] for
    16-bit and float ones."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.asarray(im, dtype=np.float32)
        scale = 65535.0 if im.mode.startswith("I;16") or grey.max(initial=0) > 255 else 255.0
        grey = np.clip(grey / scale, 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode == "F":
        grey = np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    return np.array(im if im.mode == "RGB" else im.convert("RGB"))  # writable: torch.from_numpy needs it


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Round float images in [0,1] to the nearest 8-bit level, as writing a PNG does.

    >>> quantize(torch.tensor([0.5001])).mul(255).item()
    128.0
    """
    return images.clamp(0, 1).mul(255).round().div(255)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """A (3,H,W) float tensor in [0,1] to an (H,W,3) uint8 array."""
    return image.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def encode_image(image: torch.Tensor, fmt: str = "png", quality: int = 95) -> bytes:
    """Encode a (3,H,W) tensor to PNG or JPEG bytes with no metadata at all.

    >>> encode_image(torch.zeros(3, 2, 2))[:4]
    b'\\x89PNG'
    """
    import io

    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {sorted(FORMATS)}.")
    buf = io.BytesIO()
    pil = Image.fromarray(to_uint8(image), mode="RGB")
    options = {"quality": quality, "subsampling": 0} if fmt == "jpg" else {"optimize": False}
    pil.save(buf, format=FORMATS[fmt], **options)
    return buf.getvalue()


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes via a temporary file in the same folder and rename, so no half-written file is ever left.

    The file gets the mode a plain `open(path, "wb")` would give it under the current umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".advpriv-", suffix=".part", dir=path.parent)  # short: a name at the limit fits
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the mode open() would give it
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_image(image: torch.Tensor, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Write a (3,H,W) tensor as an 8-bit PNG or JPEG without EXIF/GPS, atomically.

    The format follows the suffix unless `fmt` is given.
    """
    path = Path(path)
    fmt = fmt or ("jpg" if path.suffix.lower() in (".jpg", ".jpeg") else "png")
    return atomic_write(path, encode_image(image, fmt))


NOT_AN_IMAGE = "not images by their suffix"
BROKEN_LINK = "broken symbolic links (they loop or point nowhere)"
NOT_REGULAR = "not a regular file (a FIFO, socket or device)"


def find_images(inputs: list[str | os.PathLike], skipped: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Expand files and folders (recursively) into a sorted, de-duplicated list of image paths.

    Files named explicitly are kept whatever their suffix, so a bad one is reported rather than skipped. Files in
    folders that are not images by their suffix, broken links and FIFOs are left out, each appended to `skipped` as
    (path, why): NOT_AN_IMAGE, BROKEN_LINK or NOT_REGULAR. Hidden files and links to folders are not searched.
    """
    found: dict[Path, None] = {}
    for item in map(Path, inputs):
        if item.is_dir():
            for p in sorted(item.rglob("*")):
                if p.name.startswith(".") or p.is_dir():
                    continue
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                    found.setdefault(p, None)
                elif skipped is not None:
                    why = NOT_AN_IMAGE if p.is_file() else BROKEN_LINK if not p.exists() else NOT_REGULAR
                    skipped.append((p, why))
        else:
            found.setdefault(item, None)
    return list(found)
