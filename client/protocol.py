"""Newline-delimited JSON-RPC-like messages between the LSP bridge (or CLI) and the daemon.

Requests carry an ``id`` (an integer or a string); notifications do not. ``{"method": "cancel",
"params": {"id": N}}`` cancels an in-flight request. One JSON object per line keeps framing trivial
and cheap. A line that is not such a message raises MessageError, which carries the message's id
when it has a usable one so that the error reply can too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["DaemonError", "MessageError", "RpcConnection", "parse_message", "read_message", "write_message"]

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024 * 1024  # a whole document travels on didOpen


class DaemonError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class MessageError(DaemonError):
    """A line that is not a valid message. ``id``: the message's own id if usable, else None."""

    def __init__(self, code: int, message: str, msg_id: int | str | None = None) -> None:
        super().__init__(code, message)
        self.id = msg_id


def valid_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_message(line: bytes) -> dict[str, Any]:
    """One line as a message, checked far enough that a receiver can index its tasks by id."""
    try:
        msg = json.loads(line.decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise MessageError(-32700, f"parse error: {type(exc).__name__}: {exc}"[:300]) from None
    if not isinstance(msg, dict):
        raise MessageError(-32600, "message is not an object")
    msg_id = msg.get("id")
    if msg_id is not None and not valid_id(msg_id):
        raise MessageError(-32600, "id must be an integer or a string")  # unusable: the reply says null
    if msg.get("method") == "cancel":
        params = msg.get("params")
        target = params.get("id") if isinstance(params, dict) else None
        if msg_id is not None:
            raise MessageError(-32600, "cancel is a notification: it takes no id", msg_id)
        if not (params is None or isinstance(params, dict)) or not (target is None or valid_id(target)):
            raise MessageError(-32602, 'cancel params must be {"id": <request id>}')
    return msg


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message; None at the end of the stream; MessageError for a bad line (the next one
    can still be read); ValueError for a line over the stream's limit."""
    line = await reader.readline()
    if not line:
        return None
    return parse_message(line)


def write_message(writer: asyncio.StreamWriter, msg: dict[str, Any]) -> None:
    try:
        data = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate (sent as "\\ud800" by an editor): keep it escaped
        data = json.dumps(msg, separators=(",", ":")).encode()
    writer.write(data + b"\n")


class RpcConnection:
    """Client end: send requests, await results, cancel them, receive notifications."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_notification: Callable[[str, dict[str, Any]], Awaitable[None] | None] | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._on_notification = on_notification
        self._reader_task = asyncio.create_task(self._read_loop())
        self.closed = asyncio.Event()

    @classmethod
    async def open_unix(cls, path: str, **kw: Any) -> RpcConnection:
        reader, writer = await asyncio.open_unix_connection(path, limit=MAX_LINE)
        return cls(reader, writer, **kw)

    async def _read_loop(self) -> None:
        try:
            while True:
                try:
                    msg = await read_message(self._reader)
                except MessageError as exc:  # one bad line from the daemon is skipped, not fatal
                    log.warning("bad message from the daemon: %s", exc)
                    continue
                if msg is None:
                    break
                if "id" in msg and ("result" in msg or "error" in msg):
                    fut = self._pending.pop(msg["id"], None)
                    if fut is None or fut.done():
                        continue
                    if "error" in msg:
                        err = msg["error"] if isinstance(msg["error"], dict) else {}
                        fut.set_exception(DaemonError(err.get("code", -32000), str(err.get("message", "error"))))
                    else:
                        fut.set_result(msg["result"])
                elif isinstance(msg.get("method"), str) and self._on_notification is not None:
                    await self._notify(msg["method"], msg.get("params"))
        except (ConnectionError, DaemonError, ValueError, asyncio.IncompleteReadError) as exc:
            log.debug("daemon connection ended: %r", exc)
        finally:
            self.closed.set()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("daemon connection closed"))
            self._pending.clear()

    async def _notify(self, method: str, params: Any) -> None:
        assert self._on_notification is not None
        try:
            res = self._on_notification(method, params if isinstance(params, dict) else {})
            if asyncio.iscoroutine(res):
                await res
        except Exception as exc:  # a bad notification must not end the connection
            log.warning("daemon notification %r failed: %r", method, exc)

    async def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        if self.closed.is_set():
            raise ConnectionError("daemon connection closed")
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        write_message(self._writer, {"id": req_id, "method": method, "params": params or {}})
        try:
            await self._writer.drain()
            return await fut
        except asyncio.CancelledError:
            self._pending.pop(req_id, None)
            # Tell the daemon so it closes the upstream stream too.
            with contextlib.suppress(Exception):
                self.notify("cancel", {"id": req_id})
            raise

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        if self.closed.is_set():
            raise ConnectionError("daemon connection closed")
        write_message(self._writer, {"method": method, "params": params or {}})

    async def aclose(self) -> None:
        self._reader_task.cancel()
        with contextlib.suppress(Exception):
            self._writer.close()
            await self._writer.wait_closed()
