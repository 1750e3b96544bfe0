"""A small HTTP/1.1 client for the upstreams: asyncio protocol + the httptools parser, keep-alive pooled.

Why not httpx: on the streaming path httpx → httpcore → anyio → h11 costs ~100 µs of Python per SSE
chunk (cancel scopes, h11 events, buffers), which was most of the gateway's CPU. Here a response
chunk is one ``data_received`` → ``httptools.feed_data`` → ``on_body`` call that appends the bytes to a
list and wakes the reader; the reader takes everything buffered in one ``next_chunk()``.

Streaming to a client, :meth:`UpstreamResponse.relay` goes further: the body bytes of each socket read
are handed straight from ``data_received`` to a sink (the client connection's write), with no task
wake-up per chunk; the relaying task only wakes at the end of the response, on an error or a timeout.

Scope: what the gateway needs from vLLM and nothing more — one request per connection at a time,
``content-length`` request bodies, chunked or sized responses, an idle pool per ``host:port``
(a reused connection the server closed while idle is retried once on a fresh one), a connect timeout,
a read timeout per wait, and :meth:`UpstreamResponse.close` that closes the connection unless the
response was read to the end — which is how an abandoned stream aborts the request in vLLM. The connection
protocol underneath (parsing, buffering, flow control, timers) is :mod:`.upstream_conn`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from urllib.parse import urlsplit

from codeassist.serverkit.gateway.upstream_conn import (
    ClientStalled,
    Sink,
    UpstreamConn,
    UpstreamConnectError,
    UpstreamError,
)

__all__ = ["ClientStalled", "UpstreamClient", "UpstreamConnectError", "UpstreamError", "UpstreamResponse"]


class UpstreamResponse:
    """A response whose head has arrived; the body is read with :meth:`next_chunk`."""

    __slots__ = ("_client", "_conn", "_released", "headers", "status_code")

    def __init__(self, client: UpstreamClient, conn: UpstreamConn) -> None:
        self._client, self._conn, self._released = client, conn, False
        self.status_code = conn.status
        self.headers = conn.headers

    @property
    def ended(self) -> bool:
        """The whole body has arrived and been taken: the next :meth:`next_chunk` would return ``b""``."""
        return self._conn.complete and not self._conn.body

    async def next_chunk(self) -> bytes:
        """All body bytes that arrived since the last call (waits for some); ``b""`` at the end."""
        c = self._conn
        while True:
            if c.body:
                return c.take_body()
            if c.complete:
                self.close()
                return b""
            if c.error is not None:
                raise c.error
            await c.wait(self._client.read_timeout_s)

    async def relay(self, sink: Sink) -> None:
        """Hand the rest of the body to ``sink(data, ended)`` as it arrives, called from the protocol callback
        (one call per socket read, the last with ``ended=True``); returns when the response is complete.
        Raises :class:`UpstreamError` or ``TimeoutError`` (silence) like :meth:`next_chunk`; then ``sink`` was
        not told the end."""
        c = self._conn
        if c.body or c.complete:  # arrived before the relay began
            sink(c.take_body(), c.complete)
            if c.complete:
                self.close()
                return
        c.sink = sink
        try:
            while not c.complete:
                if c.error is not None:
                    raise c.error
                await c.wait(self._client.read_timeout_s)
        finally:
            c.sink = None
        self.close()

    def pause(self) -> None:
        """Stop reading from the upstream socket (the client cannot take more yet)."""
        self._conn.hold(self._client.write_timeout_s)

    def resume(self) -> None:
        self._conn.unhold()

    async def read(self) -> bytes:
        parts = []
        while chunk := await self.next_chunk():
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        """Back to the pool when read to the end, else drop the connection (aborts the upstream request)."""
        if self._released:
            return
        self._released = True
        self._client._release(self._conn)


class UpstreamClient:
    def __init__(
        self,
        headers: dict[str, str] | None = None,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 60.0,
        max_idle_per_host: int = 256,
        ssl_context: ssl.SSLContext | None = None,
        write_timeout_s: float | None = None,
    ) -> None:
        self.connect_timeout_s, self.read_timeout_s = connect_timeout_s, read_timeout_s
        # A relay whose client took nothing this long ends with ClientStalled (None: read_timeout_s; 0: never).
        self.write_timeout_s = read_timeout_s if write_timeout_s is None else write_timeout_s
        self.max_idle_per_host = max_idle_per_host
        self._extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()).encode("latin-1")
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], deque[UpstreamConn]] = {}
        self._targets: dict[str, tuple[tuple[str, str, int], bytes, bytes]] = {}
        self._closed = False

    def _target(self, url: str) -> tuple[tuple[str, str, int], bytes, bytes]:
        t = self._targets.get(url)
        if t is None:
            u = urlsplit(url)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise UpstreamConnectError(f"unsupported upstream URL {url!r}")
            port = u.port or (443 if u.scheme == "https" else 80)
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            host = u.hostname if u.port is None else f"{u.hostname}:{u.port}"
            t = ((u.scheme, u.hostname, port), path.encode("latin-1"), host.encode("latin-1"))
            if len(self._targets) < 1024:
                self._targets[url] = t
        return t

    async def _connect(self, key: tuple[str, str, int]) -> UpstreamConn:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        ctx = (self._ssl or ssl.create_default_context()) if scheme == "https" else None
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await loop.create_connection(lambda: UpstreamConn(key), host, port, ssl=ctx)
        except (OSError, TimeoutError) as exc:
            raise UpstreamConnectError(f"cannot connect to {host}:{port}: {exc or type(exc).__name__}") from None
        return conn

    def _take_idle(self, key: tuple[str, str, int]) -> UpstreamConn | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        return None

    def _release(self, conn: UpstreamConn) -> None:
        keep = conn.complete and conn.keep_alive and not conn.closed and not self._closed
        if not keep:
            conn.close()
            return
        idle = self._idle.setdefault(conn.key, deque())
        if len(idle) >= self.max_idle_per_host:
            conn.close()
            return
        conn.stop_timer()
        conn.reset()
        conn.reused = True
        idle.append(conn)

    async def stream(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        headers: dict[str, str] | bytes | None = None,
        first_body: bool = False,
        within: float | None = None,
    ) -> UpstreamResponse:
        """Send a request; returns once the response head is in (with ``first_body``: and the first body bytes,
        or the end, so that the caller wakes once rather than twice). The caller must ``close()`` the response.
        ``headers`` may be given pre-encoded (``b"name: value\\r\\n"`` lines). ``within``: seconds for all
        that once the request is sent, else TimeoutError (the connection is closed) — the same timer as the
        silence timeout, so no extra timer per request."""
        if self._closed:
            raise UpstreamError("client closed")
        key, path, host = self._target(url)
        if isinstance(headers, bytes):
            extra = headers
        else:
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1") if headers else b""
        head = b"%s %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n%s%s\r\n" % (
            method.encode(),
            path,
            host,
            len(body),
            self._extra,
            extra,
        )
        while True:
            conn = self._take_idle(key)
            fresh = conn is None
            if conn is None:
                conn = await self._connect(key)
            conn.last_rx = conn.loop.time()  # the silence timer counts from the request
            try:
                assert conn.transport is not None
                conn.transport.write(head + body if len(body) < 65536 else head)
                if len(body) >= 65536:
                    conn.transport.write(body)
                conn.want_body = first_body
                if within is not None:
                    conn.deadline = conn.loop.time() + max(0.001, within)
                while not conn.head_done or (first_body and not conn.body and not conn.complete):
                    if conn.error is not None:
                        raise conn.error
                    await conn.wait(self.read_timeout_s)
                conn.want_body = False
                conn.deadline = 0.0
            except UpstreamError:
                conn.close()
                if not fresh and not conn.got_bytes:
                    continue  # the server closed this idle connection meanwhile: once more on a new one
                raise
            except BaseException:
                conn.close()
                raise
            return UpstreamResponse(self, conn)

    async def request(
        self, method: str, url: str, body: bytes = b"", timeout: float = 5.0, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """A whole request and response (health checks, /models, /metrics): ``(status, body)``."""
        async with asyncio.timeout(timeout):
            resp = await self.stream(method, url, body, headers)
            try:
                return resp.status_code, await resp.read()
            finally:
                resp.close()

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
