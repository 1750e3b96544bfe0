"""Newline-delimited JSON-RPC-like messages between the LSP bridge (or CLI) and the daemon.

Requests carry an ``id``; notifications do not. ``{"method": "cancel", "params": {"id": N}}``
cancels an in-flight request. One JSON object per line keeps framing trivial and cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["DaemonError", "RpcConnection", "read_message", "write_message"]

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024 * 1024  # a whole document travels on didOpen


class DaemonError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    line = await reader.readline()
    if not line:
        return None
    try:
        msg = json.loads(line)
    except ValueError as exc:
        raise DaemonError(-32700, f"parse error: {exc}") from None
    if not isinstance(msg, dict):
        raise DaemonError(-32600, "message is not an object")
    return msg


def write_message(writer: asyncio.StreamWriter, msg: dict[str, Any]) -> None:
    writer.write(json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")


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
                msg = await read_message(self._reader)
                if msg is None:
                    break
                if "id" in msg and ("result" in msg or "error" in msg):
                    fut = self._pending.pop(msg["id"], None)
                    if fut is None or fut.done():
                        continue
                    if "error" in msg:
                        err = msg["error"] or {}
                        fut.set_exception(DaemonError(err.get("code", -32000), err.get("message", "error")))
                    else:
                        fut.set_result(msg["result"])
                elif "method" in msg and self._on_notification is not None:
                    res = self._on_notification(msg["method"], msg.get("params") or {})
                    if asyncio.iscoroutine(res):
                        await res
        except (ConnectionError, DaemonError, asyncio.IncompleteReadError) as exc:
            log.debug("daemon connection ended: %r", exc)
        finally:
            self.closed.set()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("daemon connection closed"))
            self._pending.clear()

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
