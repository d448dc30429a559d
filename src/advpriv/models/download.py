"""Download a registry model once into the user's cache: streamed to a `.part` file, bounded by the entry's size,
checked by SHA-256, then renamed into place, so the cache never holds a file that failed its check.

An interrupted download keeps its `.part` file, and the next fetch asks the server for the rest (an HTTP Range
request); a server that answers with the whole file instead restarts it. A payload whose hash is wrong is deleted.
An archive payload (an entry with `member`) is checked before its member is read, so only the pinned bytes are
ever extracted; the member is copied to a path of ours, never to the name it has in the archive.

The cache is `$ADVPRIV_CACHE_DIR/models` when that variable is set, else platformdirs' user cache dir.

Example:
    >>> from advpriv.models.registry import REGISTRY
    >>> model_path(REGISTRY["sface"]).name
    'face_recognition_sface_2021dec.onnx'
    >>> fetch(REGISTRY["sface"])  # doctest: +SKIP
    PosixPath('/home/me/.cache/advpriv/models/sface/face_recognition_sface_2021dec.onnx')
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from platformdirs import user_cache_dir

from advpriv.models.registry import ModelEntry, resolve

CACHE_ENV = "ADVPRIV_CACHE_DIR"
CHUNK = 1 << 20
TIMEOUT_S = 60


class DownloadError(RuntimeError):
    """A model that could not be fetched; the message says what happened and what to do."""


def models_cache() -> Path:
    """The folder that holds fetched models: $ADVPRIV_CACHE_DIR/models, else the user cache's advpriv/models."""
    return Path(os.environ.get(CACHE_ENV) or user_cache_dir("advpriv")) / "models"


def model_path(entry: ModelEntry) -> Path:
    """Where the model file of `entry` lives once fetched."""
    return models_cache() / entry.name / entry.filename


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(entry: ModelEntry, progress: Callable[[int, int], None] | None = None) -> Path:
    """The model file of `entry`, downloaded, checked (and extracted, converted) the first time only.

    `progress(done, total)` is called as bytes arrive. Raises DownloadError.
    """
    target = model_path(entry)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = target if entry.member is None and entry.convert is None else target.with_name(Path(entry.url).name)
    download(entry.url, entry.sha256, entry.size, payload, progress)
    if payload == target:
        return target
    source = payload
    if entry.member is not None:
        source = _extract(payload, entry.member, entry.member_sha256, target.parent)
    if entry.convert is not None:
        _convert(entry.convert, source, target)
    else:
        os.replace(source, target)
    for leftover in {payload, source} - {target}:
        leftover.unlink(missing_ok=True)
    return target


def download(url: str, sha256: str, size: int, dest: Path, progress: Callable[[int, int], None] | None = None) -> None:
    """Fetch `url` (exactly `size` bytes with this `sha256`) into `dest`, resuming from `dest`.part if present."""
    if dest.is_file() and sha256_of(dest) == sha256:
        return
    part = dest.with_name(dest.name + ".part")
    done = part.stat().st_size if part.is_file() else 0
    if done > size:
        part.unlink()
        done = 0
    if done < size:
        _receive(url, size, part, done, progress)
    digest = sha256_of(part)
    if digest != sha256:
        part.unlink()
        raise DownloadError(
            f"{url} gave a file with SHA-256 {digest}, not the expected {sha256}; it was deleted. The file on the "
            "server has changed or the download was tampered with: do not use it, and report it to advpriv."
        )
    os.replace(part, dest)


def _receive(url: str, size: int, part: Path, done: int, progress: Callable[[int, int], None] | None) -> None:
    """Append the bytes after `done` to `part` (or all of them, when the server does not resume)."""
    headers = {"User-Agent": "advpriv", **({"Range": f"bytes={done}-"} if done else {})}
    try:
        with urlopen(Request(url, headers=headers), timeout=TIMEOUT_S) as response:
            if response.status != 206 or not response.headers.get("Content-Range", "").startswith(f"bytes {done}-"):
                done = 0
            with open(part, "ab" if done else "wb") as file:
                while chunk := response.read(CHUNK):
                    done += len(chunk)
                    if done > size:
                        break
                    file.write(chunk)
                    if progress:
                        progress(done, size)
    except HTTPError as error:
        message = f"{url} answered HTTP {error.code} ({error.reason}); check your connection or try later"
        raise DownloadError(message) from None
    except (URLError, HTTPException, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise DownloadError(
            f"downloading {url} stopped after {done:,} of {size:,} bytes ({reason}); run the same command again to "
            "resume it"
        ) from None
    if done > size:
        part.unlink()
        raise DownloadError(f"{url} sent more than the expected {size:,} bytes; the file was deleted (it has changed)")
    if done < size:
        raise DownloadError(
            f"downloading {url} stopped after {done:,} of {size:,} bytes; run the same command again to resume it"
        )


def _extract(archive: Path, member: str, sha256: str | None, folder: Path) -> Path:
    """Copy `member` of the (already checked) tar archive to a temporary file in `folder`, checked by `sha256`."""
    with tarfile.open(archive) as tar:
        try:
            info = tar.getmember(member)
        except KeyError:
            message = f"{archive} has no {member}; the registry entry is wrong, report it to advpriv"
            raise DownloadError(message) from None
        source = tar.extractfile(info) if info.isfile() else None
        if source is None:
            raise DownloadError(f"{member} in {archive} is not a regular file; report it to advpriv")
        with source, tempfile.NamedTemporaryFile(dir=folder, suffix=".member", delete=False) as out:
            shutil.copyfileobj(source, out, CHUNK)
    extracted = Path(out.name)
    if sha256 is not None and sha256_of(extracted) != sha256:
        extracted.unlink()
        raise DownloadError(f"{member} in {archive} does not have its pinned SHA-256; report it to advpriv")
    return extracted


def _convert(reference: str, source: Path, target: Path) -> None:
    """Run the entry's converter from `source` to a temporary file, then rename it to `target`."""
    tmp = target.with_name(target.name + ".tmp")
    try:
        resolve(reference)(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
