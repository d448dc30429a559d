"""uvicorn's HTTP protocol with the limits a public server needs: a header timeout and a JSON connection cap.

uvicorn's keep-alive timeout closes a connection that sends nothing, but any byte resets it, so a client that
trickles a header a byte at a time would hold its connection for ever. Here each connection must finish its
request's headers within `header_timeout` seconds of opening, or of the previous response. uvicorn's own
`limit_concurrency` answers a plain-text 503 without Retry-After; here a request on a connection beyond
`max_connections` open ones (or beyond as many requests in progress) gets the service's JSON error with Retry-After.
Both servers (`advpriv serve`, `advpriv study serve`) run on it.

Example:
    >>> protocol = hardened_http(header_timeout=10.0, max_connections=64)
    >>> protocol.header_timeout, protocol.max_connections
    (10.0, 64)
    >>> uvicorn.run(app, http=protocol)   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import ServiceError

CROWDED_RETRY_S = 2
"""Retry-After of a request refused for too many connections: they are short-lived."""


class HardenedProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose next request head is not complete in time, and answering
    requests past the connection cap with a JSON 503."""

    header_timeout = 10.0
    max_connections = 64

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limit_concurrency = None  # the cap is checked in `capped`, answered as JSON
        app = self.app

        async def capped(scope, receive, send) -> None:
            if scope["type"] == "http" and max(len(self.connections), len(self.tasks)) > self.max_connections:
                await _crowded(send, self.max_connections)
            else:
                await app(scope, receive, send)

        self.app = capped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._expect_headers()

    def _expect_headers(self) -> None:
        self.loop.call_later(self.header_timeout, self._headers_due, self.scope)

    def _headers_due(self, scope_then: object) -> None:
        """Close the connection if no new request head arrived since the timer was set (uvicorn replaces `scope`
        with each request)."""
        if self.scope is scope_then and not self.transport.is_closing():
            self.transport.close()


async def _crowded(send, max_connections: int) -> None:
    error = ServiceError(503, "too_many_connections", f"this server serves at most {max_connections} connections "
                                                      f"at once; try again in {CROWDED_RETRY_S} s.")
    body = json.dumps(error.body()).encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(CROWDED_RETRY_S).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def hardened_http(header_timeout: float, max_connections: int) -> type[HardenedProtocol]:
    """The protocol class to give uvicorn (`http=`), with these limits."""
    return type("HardenedProtocol", (HardenedProtocol,),
                {"header_timeout": header_timeout, "max_connections": max_connections})
