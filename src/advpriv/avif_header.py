"""What an AVIF file's AV1 data will decode to, read from its headers before any pixel is decoded.

An AVIF states its size twice: the container's `ispe` boxes (what Pillow reports as the image's size) and the AV1
sequence header at the start of each coded item (the most the decoder will produce). A file whose `ispe` says
200×200 over 7200×7200 AV1 data passes a check of `ispe` and makes the decoder build 51.8 MP. `frame_sizes` reads
the second, so the caller can check both against its pixel limit.

Example:
    >>> sizes = frame_sizes(Path("photo.avif").read_bytes())   # doctest: +SKIP
    >>> sizes.stated, sizes.coded                               # doctest: +SKIP
    ([(1600, 1600)], [(1600, 1600)])
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_ITEMS = 4096
"""Coded items examined at most (a grid photo has one per tile; phones write a few dozen)."""


class HeaderError(ValueError):
    """The container or the AV1 sequence header cannot be read."""


@dataclass
class FrameSizes:
    stated: list[tuple[int, int]] = field(default_factory=list)
    """(width, height) of every `ispe` box: what the container says."""
    coded: list[tuple[int, int]] = field(default_factory=list)
    """(max width, max height) of every AV1 sequence header found at the start of an item's data."""


def frame_sizes(data: bytes) -> FrameSizes:
    """The sizes an AVIF states and codes (see `FrameSizes`); HeaderError when its boxes are malformed."""
    sizes = FrameSizes()
    meta = next((body for kind, body in _boxes(data, 0, len(data)) if kind == b"meta"), None)
    if meta is None:
        raise HeaderError("no meta box")
    start, end = meta[0] + 4, meta[1]  # a full box: version and flags first
    children = dict(_boxes(data, start, end))
    for kind, (s, e) in _boxes(data, start, end):
        if kind == b"iprp":
            for _, (ps, pe) in _boxes(data, s, e):
                for prop, (qs, qe) in _boxes(data, ps, pe):
                    if prop == b"ispe" and qe - qs >= 12:
                        sizes.stated.append((_int(data, qs + 4, 4), _int(data, qs + 8, 4)))
    if b"iloc" not in children:
        raise HeaderError("no iloc box")
    idat = children.get(b"idat", (0, 0))[0]
    for method, offset, length in _item_starts(data, *children[b"iloc"]):
        base = idat if method == 1 else 0
        coded = _sequence_header_size(data[base + offset:base + offset + min(length, 256)])
        if coded is not None:
            sizes.coded.append(coded)
    return sizes


def _int(data: bytes, offset: int, size: int) -> int:
    if offset + size > len(data):
        raise HeaderError("truncated box")
    return int.from_bytes(data[offset:offset + size], "big")


def _boxes(data: bytes, start: int, end: int):
    """(type, (body start, body end)) of the boxes between `start` and `end`."""
    while start + 8 <= end:
        size, kind, body = _int(data, start, 4), data[start + 4:start + 8], start + 8
        if size == 1:
            size, body = _int(data, start + 8, 8), start + 16
        elif size == 0:
            size = end - start
        if size < body - start or start + size > end:
            raise HeaderError(f"box {kind!r} overruns its parent")
        yield kind, (body, start + size)
        start += size


def _item_starts(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(construction method, offset, length) of each item's first extent in an `iloc` box."""
    version = _int(data, start, 1)
    sizes = _int(data, start + 4, 2)
    offset_size, length_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
    index_size = sizes & 15 if version in (1, 2) else 0
    pos, id_size = start + 6, 4 if version == 2 else 2
    count = _int(data, pos, id_size)
    pos += id_size
    starts = []
    for _ in range(min(count, MAX_ITEMS)):
        pos += id_size
        method = 0
        if version in (1, 2):
            method = _int(data, pos, 2) & 15
            pos += 2
        pos += 2  # data_reference_index
        base = _int(data, pos, base_size) if base_size else 0
        pos += base_size
        extents = _int(data, pos, 2)
        pos += 2
        for e in range(extents):
            pos += index_size
            offset = _int(data, pos, offset_size) if offset_size else 0
            length = _int(data, pos + offset_size, length_size) if length_size else 0
            pos += offset_size + length_size
            if e == 0 and method in (0, 1):
                starts.append((method, base + offset, length or 256))
        if pos > end:
            raise HeaderError("truncated iloc box")
    return starts


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise HeaderError("truncated AV1 sequence header")
            value = (value << 1) | (self.data[byte] >> (7 - (self.pos & 7))) & 1
            self.pos += 1
        return value

    def uvlc(self) -> int:
        zeros = 0
        while not self.read(1):
            zeros += 1
            if zeros >= 32:
                return (1 << 32) - 1
        return self.read(zeros) + (1 << zeros) - 1


def _sequence_header_size(obus: bytes) -> tuple[int, int] | None:
    """(max frame width, max frame height) of the sequence header among the first OBUs, or None."""
    pos = 0
    while pos < len(obus):
        header = obus[pos]
        kind, extension, has_size = (header >> 3) & 15, (header >> 2) & 1, (header >> 1) & 1
        pos += 1 + extension
        size = len(obus) - pos
        if has_size:
            size, shift = 0, 0
            for _ in range(8):  # leb128
                if pos >= len(obus):
                    return None
                byte = obus[pos]
                pos += 1
                size |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
        if kind == 1:
            return _parse_sequence_header(_Bits(obus[pos:pos + size]))
        if not has_size:
            return None
        pos += size
    return None


def _parse_sequence_header(bits: _Bits) -> tuple[int, int]:
    """The AV1 specification's sequence_header_obu (section 5.5), read as far as the frame size."""
    bits.read(3)  # seq_profile
    bits.read(1)  # still_picture
    if bits.read(1):  # reduced_still_picture_header
        bits.read(5)  # seq_level_idx
    else:
        decoder_model = False
        buffer_delay_bits = 0
        if bits.read(1):  # timing_info_present_flag
            bits.read(32), bits.read(32)
            if bits.read(1):  # equal_picture_interval
                bits.uvlc()
            decoder_model = bool(bits.read(1))
            if decoder_model:
                buffer_delay_bits = bits.read(5) + 1
                bits.read(32), bits.read(5), bits.read(5)
        display_delay = bits.read(1)
        for _ in range(bits.read(5) + 1):  # operating points
            bits.read(12)
            if bits.read(5) > 7:
                bits.read(1)
            if decoder_model and bits.read(1):
                bits.read(buffer_delay_bits), bits.read(buffer_delay_bits), bits.read(1)
            if display_delay and bits.read(1):
                bits.read(4)
    width_bits, height_bits = bits.read(4) + 1, bits.read(4) + 1
    return bits.read(width_bits) + 1, bits.read(height_bits) + 1
