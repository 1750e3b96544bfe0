"""One upstream HTTP/1.1 connection: an asyncio protocol on the httptools response parser.

:class:`UpstreamConn` holds the state of the response in progress: the parsed head, the body bytes not yet
taken, flow control (reading pauses while too much is buffered, or while the client being relayed to cannot
take more), one silence timer per response (re-armed while bytes keep arriving; it also enforces the
first-chunk deadline and the client write timeout), and the relay sink that body bytes go to straight from
``data_received``. The pooled client and the response object built on it are in :mod:`.upstream`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httptools

__all__ = ["ClientStalled", "Sink", "UpstreamConn", "UpstreamConnectError", "UpstreamError"]

_PAUSE_AT = 1 << 20  # buffered but unread response bytes before reading from the socket pauses

Sink = Callable[[bytes, bool], None]  # (body bytes of one socket read, response ended)


class UpstreamError(Exception):
    """The upstream connection failed or broke the protocol."""


class UpstreamConnectError(UpstreamError):
    """No connection could be opened (refused, unreachable, connect timeout)."""


class ClientStalled(TimeoutError):
    """The client we relay to took nothing for the client write timeout (reading stayed paused that long)."""


class UpstreamConn(asyncio.Protocol):
    """One upstream connection; holds the state of the response in progress."""

    def __init__(self, key: tuple[str, str, int]) -> None:
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.parser = httptools.HttpResponseParser(self)  # kept across keep-alive responses, one after another
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._hname = ""
        self.body: list[bytes] = []
        self.buffered = 0
        self.got_bytes = False
        self.head_done = False
        self.keep_alive = False
        self.complete = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False  # reading paused: too much buffered and unread
        self.held = False  # reading paused: the client we relay to cannot take more
        self.held_since = 0.0
        self.hold_timeout = 0.0  # held this long -> ClientStalled (0: no limit)
        self.timer: asyncio.TimerHandle | None = None
        self.timeout = 0.0
        self.last_rx = 0.0
        self.sink: Sink | None = None
        self.want_body = False  # the waiter wants body bytes (or the end), not just the head: no wake before
        self.deadline = 0.0  # loop time by which the first body bytes must be in (0: none), besides the silence

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.last_rx = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"bad response from upstream: {exc}"))
            return
        sink = self.sink
        if sink is not None:  # relaying: everything this read brought goes out in one write, no wake-up
            if self.body or self.complete:
                data = self.take_body()
                if self.complete:
                    self.sink = None  # the end is signalled once
                sink(data, self.complete)
            if self.complete:
                self._wake()
            return
        if self.buffered > _PAUSE_AT and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        if not self.want_body or self.body or self.complete:
            self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            self._fail(UpstreamError(f"upstream closed the connection{f': {exc}' if exc else ''}"))

    # -- httptools callbacks --------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._hname = name.decode("latin-1").lower()
        self.headers[self._hname] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.status < 200:  # 100 Continue and friends: wait for the real head
            self.headers = {}
            return
        self.head_done = True
        self.keep_alive = self.parser.should_keep_alive()  # only valid before the message completes

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self.status >= 200:
            self.complete = True

    # -- internals ------------------------------------------------------------------------------
    def _fail(self, exc: Exception) -> None:
        if self.error is None:
            self.error = exc
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def take_body(self) -> bytes:
        """Everything buffered, in one piece; reading resumes if the buffer had paused it."""
        body = self.body
        data = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        self.buffered = 0
        if self.paused:
            self.paused = False
            self.resume_reading()
        return data

    def hold(self, timeout: float) -> None:
        """Stop reading: the client we relay to cannot take more yet (for at most ``timeout`` s; 0: no limit)."""
        if not self.held and self.transport is not None and not self.closed:
            self.held = True
            self.held_since = self.loop.time()
            self.hold_timeout = timeout
            self.transport.pause_reading()
            if self.timer is not None and timeout and self.timer.when() > self.held_since + timeout:
                self.timer.cancel()  # due later than the client's time is up: brought forward
                self.timer = self.loop.call_at(self.held_since + timeout, self._check_silence)

    def unhold(self) -> None:
        if self.held:
            self.held = False
            self.resume_reading()

    def resume_reading(self) -> None:
        if not self.paused and not self.held and self.transport is not None and not self.closed:
            self.last_rx = self.loop.time()  # the silence was ours
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        self.stop_timer()
        if self.transport is not None:
            self.transport.close()

    async def wait(self, timeout: float) -> None:
        """Until something arrives (bytes, end, error); TimeoutError after ``timeout`` s of silence.

        One timer per response, not per wait: it re-arms itself while bytes keep arriving."""
        loop = self.loop  # not asyncio.get_running_loop(): that costs a getpid() syscall per call on 3.11
        self.waiter = fut = loop.create_future()
        if self.timer is None:
            self.timeout = timeout
            due = self.last_rx + timeout
            self.timer = loop.call_at(min(due, self.deadline) if self.deadline else due, self._check_silence)
        try:
            await fut
        finally:
            self.waiter = None

    def _check_silence(self) -> None:
        loop = self.loop
        now = loop.time()
        due = self.last_rx + self.timeout
        stalled = False
        if self.paused or self.held:  # reading is paused: that silence is not the upstream's
            due = now + self.timeout
            if self.held and self.hold_timeout:  # ... but a client that takes nothing holds a slot: limited
                held_due = self.held_since + self.hold_timeout
                stalled = now >= held_due
                due = min(due, held_due)
        if self.deadline:
            due = min(due, self.deadline)
        if now < due and not stalled:
            self.timer = loop.call_at(due, self._check_silence)
            return
        self.timer = None
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(ClientStalled() if stalled else TimeoutError())

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
