"""The gateway's HTTP/1.1 server: an asyncio protocol on the httptools request parser.

Why not uvicorn + ASGI: on the streaming path every chunk went through a task wake-up, an ASGI message
dict and uvicorn's ``send`` (flow-control checks, chunk framing, a write), and every request through
ASGI scope building and a watcher task for disconnects — together more than the whole proxying job.
Here a completion request is parsed straight into a header dict and body, handed to
:meth:`CompletionProxy.handle` in one task, and its upstream chunks are written to this connection's
transport from the upstream socket's callback (see :meth:`UpstreamResponse.relay`; the response framing
is :mod:`.http1_response`). Other routes (/health, /metrics, /stats, /v1/models) go to the Starlette app
through :mod:`.asgi_bridge`.

HTTP details kept: keep-alive and pipelining (requests on one connection are answered in order, one at a
time; reading pauses while several wait), ``content-length`` and chunked request bodies, 413 decided
from the declared length before the body is read (the connection then closes), 100-continue, 400 for a
malformed request (then close), 431 for oversized heads, an idle keep-alive timeout, HTTP/1.0 (no chunked
responses: the body ends with the connection), write-side flow control that pauses reading the upstream
while the client's buffer is full, and a client hang-up cancelling its request at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import httptools
from codeassist.serverkit.gateway.http1_response import ResponseWriter
from codeassist.serverkit.gateway.proxy import CompletionProxy, error_body
from codeassist.serverkit.gateway.record import Reason
from codeassist.serverkit.gateway.upstream import UpstreamResponse

__all__ = ["Connection", "Request", "Routes"]

log = logging.getLogger("codeassist.gateway")

MAX_HEAD_BYTES = 64 * 1024  # request line + headers
MAX_HEADERS = 100  # header lines per request
HEAD_SLACK = 16 * 1024  # raw bytes counted in a head may include the end of pipelined requests before it
MAX_WAITING = 8  # pipelined requests parsed ahead before reading pauses
MAX_DISCARD = 16 << 20  # body bytes of a refused (413) request read and dropped before closing
LINGER_S = 5.0  # ... and for at most this long
KEEP_ALIVE_S = 75.0  # idle keep-alive connections are closed after this
REQUEST_TIMEOUT_S = 15.0  # a request head and body must be in this long after they began (else 408)
MAX_CONNECTIONS = 4096  # open client connections; at the cap the oldest idle one is closed for a new one


class Request:
    """One parsed request. ``body`` is None once it went over the limit (the request is then answered 413)."""

    __slots__ = ("body", "fields", "headers", "keep_alive", "method", "path", "query", "size", "url", "version")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []  # lower-cased names, as received
        self.fields: dict[bytes, bytes] = {}  # the same by name (the last of repeated ones)
        self.body: list[bytes] | None = []
        self.size = 0
        self.method = b""
        self.path = ""
        self.query = b""
        self.version = "1.1"
        self.keep_alive = True


class Routes:
    """What the connections serve: the completion proxies by path, everything else via ``other``."""

    def __init__(
        self,
        hot: dict[str, CompletionProxy],
        max_body_bytes: int,
        other: Callable[[Connection, Request, bytes], Coroutine[Any, Any, None]],
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.hot, self.max_body_bytes, self.other = hot, max_body_bytes, other
        self.request_timeout_s, self.max_connections = request_timeout_s, max_connections
        self.connections: dict[Connection, None] = {}  # in the order they were opened


class Connection(ResponseWriter, asyncio.Protocol):
    """One client connection; it is also the :class:`~.proxy.Responder` of the request it is serving (the
    writing side is :class:`~.http1_response.ResponseWriter`)."""

    def __init__(self, routes: Routes, scheme: str = "http") -> None:
        self.routes, self.scheme = routes, scheme
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.parsing: Request | None = None  # the request being parsed
        self.waiting: deque[Request] = deque()  # parsed, not yet served (pipelining)
        self.serving: Request | None = None
        self.task: asyncio.Task[None] | None = None
        self.gone = False  # the client hung up
        self.closing = False  # close once the current response is out
        self.reading_paused = False
        self.writing_paused = False
        self.chunked = True  # framing of the current streamed response
        self.upstream: UpstreamResponse | None = None
        self.disconnected: asyncio.Future[None] | None = None  # for the ASGI bridge's receive()
        self.head_bytes = 0  # url + headers of the request being parsed (as parsed)
        self.head_count = 0
        self.in_head = False  # between message begin and headers complete
        self.head_raw = 0  # raw bytes received while in the head (httptools buffers an
        self.fed_body = 0  # unfinished header itself); body bytes of the current read
        self.too_large = False
        self.refused = 0  # status for a request refused from its head (400, 501)
        self.head_only = False  # the current response is to a HEAD request: no body
        self.discarded = 0
        self.idle: asyncio.TimerHandle | None = None  # one per connection, re-armed when it fires
        self.idle_since = 0.0
        self.head_since = 0.0  # when the request being parsed began (or the connection)
        self.fresh = True  # no request begun yet on this connection

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        conns = self.routes.connections
        if len(conns) >= self.routes.max_connections:
            oldest = next((c for c in conns if c.is_idle()), None)
            if oldest is None:  # all busy: this one is refused
                self.gone = True
                transport.write(self._head(503, b"content-length: 0\r\nretry-after: 1\r\n", False))  # type: ignore[attr-defined]
                transport.close()
                return
            oldest.gone = True
            conns.pop(oldest, None)
            if oldest.transport is not None:
                oldest.transport.close()
        conns[self] = None
        self.idle_since = self.head_since = now = self.loop.time()
        self.idle = self.loop.call_at(now + min(KEEP_ALIVE_S, self.routes.request_timeout_s), self._idle_timeout)

    def is_idle(self) -> bool:
        """Nothing in progress: no request being received, waiting or served."""
        return self.parsing is None and self.serving is None and not self.waiting and not self.gone

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return  # answered and closing (after a 400/413): the rest is not read
        self.fed_body = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._bad(400, "protocol upgrades are not supported")
            return
        except httptools.HttpParserError as exc:
            status = self.refused or (431 if self.too_large else 400)
            self._bad(status, str(exc) if self.refused else f"malformed request: {exc}")
            return
        if self.in_head:
            # Still in a head after this read: httptools holds an unfinished header line itself and reports it
            # only at its end, so the raw bytes are counted here (less the body bytes of earlier requests that
            # came in the same read) and the connection is refused before that buffer grows.
            self.head_raw += len(data) - self.fed_body
            if self.head_raw > MAX_HEAD_BYTES + HEAD_SLACK:
                self.too_large = True
                self._bad(431, "request head too large")

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self.routes.connections.pop(self, None)
        self.waiting.clear()
        if self.idle is not None:
            self.idle.cancel()
        if self.disconnected is not None and not self.disconnected.done():
            self.disconnected.set_result(None)
        if (
            self.task is not None
            and not self.task.done()
            and self.serving is not None
            and self.serving.path in self.routes.hot
        ):
            self.task.cancel()  # aborts the upstream request at once (the proxy accounts it as 499)

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.upstream is not None:
            self.upstream.pause()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.upstream is not None:
            self.upstream.resume()

    # -- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.parsing = Request()
        self.head_bytes = self.head_count = self.head_raw = 0
        self.in_head = True
        self.fresh = False
        self.head_since = self.loop.time()

    def on_url(self, url: bytes) -> None:
        req = self.parsing
        assert req is not None
        req.url += url
        self.head_bytes += len(url)
        if self.head_bytes > MAX_HEAD_BYTES:
            self.too_large = True
            raise httptools.HttpParserError("request head too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self.parsing
        assert req is not None
        req.headers.append((name.lower(), value))
        self.head_bytes += len(name) + len(value) + 4
        self.head_count += 1
        if self.head_bytes > MAX_HEAD_BYTES or self.head_count > MAX_HEADERS:
            self.too_large = True
            raise httptools.HttpParserError("request head too large")

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_raw = 0
        req = self.parsing
        assert req is not None
        p = self.parser
        req.method = p.get_method()
        req.version = p.get_http_version()
        req.keep_alive = p.should_keep_alive()
        path, _, req.query = req.url.partition(b"?")
        req.path = path.decode("latin-1")
        limit = self.routes.max_body_bytes
        req.fields = fields = dict(req.headers)
        if req.version == "1.1" and sum(1 for k, _ in req.headers if k == b"host") != 1:
            self.refused = 400
            raise httptools.HttpParserError("an HTTP/1.1 request needs exactly one host header")
        if b"transfer-encoding" in fields and any(
            k == b"transfer-encoding" and v.strip().lower() != b"chunked" for k, v in req.headers
        ):
            self.refused = 501
            raise httptools.HttpParserError("transfer codings other than chunked are not supported")
        declared = fields.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            req.body = None  # answered 413 without reading it; the connection closes after the answer
            self._enqueue(req)
            return
        expect = fields.get(b"expect")
        if expect is not None and expect.lower() == b"100-continue" and self.serving is None and not self.waiting:
            # (not in the middle of another response: a pipelining client then sends the body after its wait)
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.fed_body += len(body)
        req = self.parsing
        if req is None:
            return
        if req.body is None:  # refused as too large: read and dropped, so that the 413 is not lost to a reset
            self.discarded += len(body)
            if self.discarded > MAX_DISCARD and self.transport is not None:
                self.transport.close()
            return
        req.size += len(body)
        if req.size > self.routes.max_body_bytes:  # chunked, or more than it declared
            req.body = None
            self._enqueue(req)
            return
        req.body.append(body)

    def on_message_complete(self) -> None:
        req = self.parsing
        self.parsing = None
        if req is None:
            return
        if req.body is not None:
            self._enqueue(req)
            return
        self.closing = True  # the refused body is all in: nothing after it is read
        if self.serving is not req and req not in self.waiting and self.transport is not None:
            self.transport.close()  # already answered

    # -- request dispatch --------------------------------------------------------------------
    def _enqueue(self, req: Request) -> None:
        if self.closing:
            return  # after a malformed or refused request nothing more is served
        if req.body is None:
            req.keep_alive = False  # answered before its body is read: the connection closes after that
        self.waiting.append(req)
        if self.task is None:
            self._next()
        elif len(self.waiting) >= MAX_WAITING and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def _next(self) -> None:
        req = self.waiting.popleft()
        self.serving = req
        self.chunked = req.version == "1.1"
        proxy = self.routes.hot.get(req.path)
        body = None if req.body is None else (req.body[0] if len(req.body) == 1 else b"".join(req.body))
        if proxy is not None and req.method == b"POST":
            coro = proxy.handle(req.fields, body, self)
        elif body is None:
            self.send_json(
                413, error_body(f"request body over {self.routes.max_body_bytes} bytes", Reason.TOO_LARGE.value, 413)
            )
            self._finished(req)
            return
        elif proxy is not None:
            self.send_json(405, error_body("method not allowed", "method", 405), [(b"allow", b"POST")])
            self._finished(req)
            return
        else:
            coro = self.routes.other(self, req, body)
        self.task = self.loop.create_task(coro)
        self.task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        req = self.serving
        self.task = None
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway request failed", exc_info=task.exception())
            if self.serving is not None and not self.gone:
                self.closing = True  # the response may be half written: only closing is safe
                if self.transport is not None:
                    self.transport.close()
            return
        if req is not None:
            self._finished(req)

    def _finished(self, req: Request) -> None:
        """The response to ``req`` is out: on to the next request, or close, or wait idle."""
        self.serving = None
        self.upstream = None
        if self.gone or self.transport is None:
            return
        if not req.keep_alive:
            if self.parsing is req:  # a refused body still arriving: close when it is in (or soon)
                self.loop.call_later(LINGER_S, self.transport.close)
            else:
                self.transport.close()
            return
        if self.waiting:
            self._next()
            return
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()
        self.idle_since = self.loop.time()

    def _idle_timeout(self) -> None:
        """Closes a connection idle for KEEP_ALIVE_S, or whose request head or body is not in
        ``request_timeout_s`` after it began (slow senders); one timer per connection, re-armed each period
        rather than per request, so a stall is noticed between one and two periods after that."""
        if self.gone or self.transport is None:
            self.idle = None
            return
        now = self.loop.time()
        period = min(KEEP_ALIVE_S, self.routes.request_timeout_s)
        receiving = self.parsing is not None or (self.fresh and self.serving is None)
        if (
            receiving
            and not self.reading_paused
            and not self.closing
            and now >= self.head_since + self.routes.request_timeout_s
        ):
            self.idle = None
            if self.fresh:  # connected and sent nothing
                self.transport.close()
            else:
                self._bad(408, "request not received in time")
            return
        if not receiving and self.serving is None and not self.waiting and now >= self.idle_since + KEEP_ALIVE_S:
            self.idle = None
            if self.writing_paused:
                self.transport.abort()  # a client that does not read its responses: not waited for
            else:
                self.transport.close()
            return
        self.idle = self.loop.call_at(now + period, self._idle_timeout)

    def _bad(self, status: int, message: str) -> None:
        """A request that cannot be parsed: answered once nothing is in progress, then the connection closes."""
        self.closing = True
        self.parsing = None
        if self.serving is None and not self.waiting:
            self.send_json(status, error_body(message, Reason.BAD_REQUEST.value, status), keep_alive=False)
            self._linger()
        else:
            last = self.waiting[-1] if self.waiting else self.serving
            assert last is not None
            last.keep_alive = False  # what was parsed before is still answered; then close

    def _linger(self) -> None:
        """Close after an early answer without losing it to a reset: our side is shut down at once, what the
        client still sends is read and dropped (``closing``) until it closes too, for at most LINGER_S."""
        t = self.transport
        if t is None or self.gone:
            return
        if t.can_write_eof():
            t.write_eof()
            self.loop.call_later(LINGER_S, t.close)
        else:
            t.close()
