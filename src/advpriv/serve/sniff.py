"""Which photo formats the service decodes, told from the upload's first bytes (never from its name).

Pillow opens dozens of formats (EPS through Ghostscript, PSD, FITS, ...); an upload may only reach it as one of
the common photo formats below, so the rest of that decoding surface stays out of reach.

Example:
    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n...")
    'PNG'
    >>> sniff(b"%!PS-Adobe-3.0 EPSF") is None
    True
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from .errors import ServiceError

# (format, ((offset, bytes), ...)): every part must match.
SIGNATURES: tuple[tuple[str, tuple[tuple[int, bytes], ...]], ...] = (
    ("PNG", ((0, b"\x89PNG\r\n\x1a\n"),)),
    ("JPEG", ((0, b"\xff\xd8\xff"),)),
    ("WebP", ((0, b"RIFF"), (8, b"WEBP"))),
    ("GIF", ((0, b"GIF8"),)),
    ("BMP", ((0, b"BM"),)),
    ("TIFF", ((0, b"II*\x00"),)),
    ("TIFF", ((0, b"MM\x00*"),)),
    ("AVIF", ((4, b"ftypavi"),)),
)
ACCEPTED = "PNG, JPEG, WebP, GIF, BMP, TIFF or AVIF"


def sniff(data: bytes) -> str | None:
    """The format `data` starts like, or None when it is none of the accepted ones."""
    for name, parts in SIGNATURES:
        if all(data[offset:offset + len(sig)] == sig for offset, sig in parts):
            return name
    return None


def require_photo(data: bytes, filename: str) -> None:
    """Refuse (415, "not_an_image") an upload that is not one of the accepted photo formats."""
    if sniff(data) is None:
        raise ServiceError(415, "not_an_image", f"{filename}: not a readable image; this server accepts "
                                                f"{ACCEPTED} photos (told from the content, not the name).")


def photo_pixels(data: bytes, filename: str) -> int:
    """Width × height as the file's header states it, read without decoding the pixels (400 when unreadable).

    >>> buf = io.BytesIO(); Image.new("RGB", (30, 20)).save(buf, "PNG"); photo_pixels(buf.getvalue(), "a.png")
    600
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except UnidentifiedImageError:
        raise ServiceError(415, "not_an_image", f"{filename}: not a readable image (unknown or corrupt format); "
                                                f"this server accepts {ACCEPTED} photos.") from None
    except Image.DecompressionBombError:
        raise ServiceError(413, "too_large", f"{filename}: refused as too large to decode safely; downscale it "
                                             "first.") from None
    except Exception as e:  # Pillow raises many types for a damaged header
        raise ServiceError(400, "bad_image", f"{filename}: the image header could not be read ({type(e).__name__}); "
                                             "re-export it as PNG or JPEG.") from None
    return width * height
