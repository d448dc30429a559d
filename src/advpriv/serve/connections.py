"""Connections that send their request headers too slowly are closed (uvicorn has no timeout for them).

uvicorn's keep-alive timeout closes a connection that sends nothing, but any byte resets it, so a client that
trickles a header a byte at a time would hold its connection for ever. Here each connection must finish its
request's headers within `header_timeout` seconds of opening, or of the previous response.

Example:
    >>> protocol = with_header_timeout(10.0)
    >>> protocol.header_timeout
    10.0
    >>> uvicorn.run(app, http=protocol)   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose next request head is not complete in time."""

    header_timeout = 10.0

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


def with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class to give uvicorn (`http=`), with this header timeout."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": seconds})
