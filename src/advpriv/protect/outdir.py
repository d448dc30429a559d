"""An output folder that several runs share: output names claimed atomically, the metrics table merged under a
lock, and files read only when they are regular and of bounded size (a tampered table must not hang or exhaust a run).

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> name = claim(folder / "x.protected.png")  # an empty placeholder holds the name
    >>> claim(folder / "x.protected.png")
    Traceback (most recent call last):
    ...
    FileExistsError: [Errno 17] File exists: '...x.protected.png'
    >>> name.release(); list(folder.iterdir())
    []
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

READ_LIMIT = 1 << 30
"""Largest file read back from an output folder (a metrics table, or an output to verify): 1 GiB, several times
the PNG of the largest image decoded by default."""
LOCK = ".advpriv.lock"
"""The lock file that serialises merges of one folder's metrics table (hidden: never taken as an input)."""


@dataclass
class Claim:
    """An output name held by this run: `placeholder` is the (device, inode) of the empty file created to hold it,
    None when the name was this input's own earlier output, replaced in place."""

    path: Path
    placeholder: tuple[int, int] | None = None

    def release(self) -> None:
        """Remove the placeholder if nothing was written in its place (a failed or interrupted file)."""
        if self.placeholder is None:
            return
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self.placeholder and st.st_size == 0:
                self.path.unlink()
        except FileNotFoundError:
            pass


def claim(path: Path) -> Claim:
    """Hold `path` with an empty placeholder created by O_CREAT|O_EXCL: it fails with FileExistsError when anyone
    (another run, an earlier one, the user) has the name, and with ENAMETOOLONG when the name is too long."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return Claim(path, (st.st_dev, st.st_ino))


@contextmanager
def locked(folder: str | os.PathLike) -> Iterator[None]:
    """Hold `folder`'s lock file exclusively (fcntl.flock; a lock file rather than the folder, for NFS)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(folder) / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_regular(path: str | os.PathLike, limit: int = READ_LIMIT, links: bool = True) -> bytes:
    """The bytes of `path` when it is a regular file of at most `limit` bytes; OSError otherwise (a FIFO, a device
    or a bigger file is refused at once: opened without blocking, never read). `links=False` refuses a symlink too.

    >>> read_regular("/dev/zero")
    Traceback (most recent call last):
    ...
    OSError: [Errno 22] not a regular file: '/dev/zero'
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | (0 if links else os.O_NOFOLLOW))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if st.st_size > limit or len(data := f.read(st.st_size + 1)) > st.st_size:  # a sparse file is never read
            raise OSError(errno.EFBIG, f"larger than {limit:,} bytes, or growing", str(path))
        return data
