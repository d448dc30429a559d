"""Read a request body within a size and time limit and parse multipart/form-data in memory (nothing spooled to
disk). `UploadGate` caps the bodies received at once, so unfinished uploads cannot pile up in memory.

Example:
    >>> body = (b'--b\\r\\nContent-Disposition: form-data; name="strength"\\r\\n\\r\\nhigh\\r\\n'
    ...         b'--b\\r\\nContent-Disposition: form-data; name="image"; filename="a.png"\\r\\n\\r\\nPNG..\\r\\n--b--\\r\\n')
    >>> form = parse_form(body, "multipart/form-data; boundary=b")
    >>> form.fields, form.files["image"]
    ({'strength': 'high'}, [Upload(filename='a.png', data=b'PNG..')])
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from .errors import ServiceError


@dataclass
class Upload:
    filename: str
    data: bytes


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[Upload]] = field(default_factory=dict)
    """Every file part, by field name, in the order sent (a field may carry several files)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it exceeds `limit` bytes (or announces that it will)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ServiceError(400, "truncated", "the upload ended before it was complete; send the file again.") from None
    return b"".join(chunks)


class UploadGate:
    """At most `limit` request bodies are received at once (more get 503), each within `timeout` seconds (else 408).

    >>> gate = UploadGate(limit=4, timeout=60)
    >>> gate.receiving
    0
    """

    RETRY_AFTER_S = 5  # uploads that fit the size limit take seconds on any link that can send them in time

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit, self.timeout, self.receiving = limit, timeout, 0

    async def read(self, request: Request, max_bytes: int) -> bytes:
        """The body (see `read_body`), refused when too many others are being received or when it comes too slowly."""
        if self.receiving >= self.limit:
            raise ServiceError(503, "busy", f"this server is already receiving {self.limit} uploads; try again in "
                                            f"{self.RETRY_AFTER_S} s.", {"Retry-After": str(self.RETRY_AFTER_S)})
        self.receiving += 1
        try:
            async with asyncio.timeout(self.timeout):
                return await read_body(request, max_bytes)
        except TimeoutError:
            raise ServiceError(408, "upload_timeout", f"the upload took longer than this server's limit of "
                                                      f"{self.timeout:g} s; send a smaller file or use a faster "
                                                      "connection.", {"Connection": "close"}) from None
        finally:
            self.receiving -= 1


def _too_large(size: int, limit: int) -> ServiceError:
    return ServiceError(413, "too_large", f"the upload is over {size / 1e6:.1f} MB; this server accepts at most "
                                          f"{limit / 1e6:.1f} MB. Downscale or compress the photo first.")


def parse_form(body: bytes, content_type: str) -> Form:
    """Fields (as text) and files (as bytes) of a multipart/form-data body; 400 when it is malformed or cut short."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ServiceError(415, "bad_request_type", "send the photo as multipart/form-data with an `image` file field.")
    form, part, headers, header_name = Form(), bytearray(), {}, bytearray()
    state = {"ended": False, "value": bytearray()}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"].extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_name).lower()] = bytes(state["value"])
        header_name.clear()
        state["value"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part.extend(data[start:end])

    def on_part_end() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in disposition:
            form.files.setdefault(name, []).append(Upload(disposition[b"filename"].decode("utf-8", "replace"), bytes(part)))
        else:
            form.fields[name] = bytes(part).decode("utf-8", "replace")
        part.clear()
        headers.clear()

    def on_end() -> None:
        state["ended"] = True

    callbacks = {"on_header_field": on_header_field, "on_header_value": on_header_value,
                 "on_header_end": on_header_end, "on_part_data": on_part_data, "on_part_end": on_part_end,
                 "on_end": on_end}
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except Exception as e:  # python-multipart raises several types for malformed bodies
        raise ServiceError(400, "bad_form", f"the form data could not be read ({e}); send it again.") from None
    if not state["ended"]:
        raise ServiceError(400, "truncated", "the upload ended before it was complete; send the file again.")
    return form
