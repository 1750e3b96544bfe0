"""Writing HTTP/1.1 responses: the :class:`~.proxy.Responder` side of a client :class:`~.http1.Connection`.

Whole responses with a ``content-length`` (:meth:`ResponseWriter.send`), and streamed ones (the head with the
first body bytes, then one write per upstream read): chunked for HTTP/1.1, delimited by the connection's end
for HTTP/1.0, the head only for HEAD. Nothing here looks into the bytes: what a stream carries is counted by
the proxy.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codeassist.serverkit.gateway.http1 import Request
    from codeassist.serverkit.gateway.upstream import UpstreamResponse

__all__ = ["ResponseWriter"]

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_SSE = b"content-type: text/event-stream\r\ncache-control: no-cache\r\nx-accel-buffering: no\r\n"
_END = b"0\r\n\r\n"


class ResponseWriter:
    """The response half of a connection (a mixin of :class:`~.http1.Connection`, which keeps these fields)."""

    transport: asyncio.Transport | None
    serving: Request | None  # the request being answered
    gone: bool  # the client hung up
    closing: bool  # close once the current response is out
    chunked: bool  # framing of the current streamed response
    head_only: bool  # the current response is to a HEAD request: no body
    writing_paused: bool
    upstream: UpstreamResponse | None

    def _head(self, status: int, fields: bytes, keep_alive: bool) -> bytes:
        return b"HTTP/1.1 %d %s\r\n%s%s\r\n" % (
            status,
            _REASONS.get(status, b"Unknown"),
            fields,
            b"" if keep_alive else b"connection: close\r\n",
        )

    def send_json(
        self,
        status: int,
        payload: dict[str, Any],
        headers: list[tuple[bytes, bytes]] = (),
        keep_alive: bool | None = None,
    ) -> None:
        self.send(status, [(b"content-type", b"application/json"), *headers], json.dumps(payload).encode(), keep_alive)

    def send(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes, keep_alive: bool | None = None
    ) -> None:
        """A whole response with a ``content-length``."""
        if self.gone or self.transport is None:
            return
        if keep_alive is None:
            keep_alive = self.serving is not None and self.serving.keep_alive
        if self.serving is not None and self.serving.method == b"HEAD":  # the head only, with the app's length
            fields = b"".join(b"%s: %s\r\n" % (k, v) for k, v in headers)
            if not any(k == b"content-length" for k, _ in headers):
                fields += b"content-length: %d\r\n" % len(body)
            self.transport.write(self._head(status, fields, keep_alive))
            return
        fields = b"".join(b"%s: %s\r\n" % (k, v) for k, v in headers if k != b"content-length")
        fields += b"content-length: %d\r\n" % len(body)
        self.transport.write(self._head(status, fields, keep_alive) + body)

    def start_stream(self, status: int, content_type: bytes, first: bytes, end: bool) -> None:
        if self.gone or self.transport is None:
            return
        keep_alive = self.serving is not None and self.serving.keep_alive and self.chunked
        fields = _SSE if content_type.startswith(b"text/event-stream") else b"content-type: %s\r\n" % content_type
        self.head_only = self.serving is not None and self.serving.method == b"HEAD"
        if self.head_only:  # no body follows, nor its end: the connection stays usable only when chunked
            fields += b"transfer-encoding: chunked\r\n" if self.chunked else b""
            if not self.chunked and self.serving is not None:
                self.serving.keep_alive = False
            self.transport.write(self._head(status, fields, keep_alive))
            return
        if self.chunked:
            fields += b"transfer-encoding: chunked\r\n"
            body = (b"%x\r\n%s\r\n" % (len(first), first) if first else b"") + (_END if end else b"")
        else:
            body = first
            if self.serving is not None:
                self.serving.keep_alive = False  # HTTP/1.0: the end of the body is the end of the connection
        self.transport.write(self._head(status, fields, keep_alive) + body)

    def stream(self, data: bytes, end: bool) -> None:
        """More body bytes (the relay's sink: called from the upstream socket's callback once per read)."""
        if self.gone or self.transport is None or self.head_only:
            return
        if not self.chunked:
            if data:
                self.transport.write(data)
        elif data:
            self.transport.write(b"%x\r\n%s\r\n%s" % (len(data), data, _END if end else b""))
        elif end:
            self.transport.write(_END)

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None and not self.gone:
            self.transport.abort()

    def relaying(self, resp: UpstreamResponse | None) -> None:
        self.upstream = resp
        if resp is not None and self.writing_paused:
            resp.pause()
