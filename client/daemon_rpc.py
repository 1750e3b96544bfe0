"""The daemon's side of its unix socket: connections, dispatch of newline-delimited JSON-RPC to handlers,
one answer per request (a result, or an error with its id), cancellation. The handlers are the daemon's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from codeassist.client.daemon_client import peer_uid
from codeassist.client.protocol import DaemonError, read_message, write_message

__all__ = ["Connection", "Handler", "RpcServer"]

log = logging.getLogger(__name__)

Handler = Callable[["Connection", dict[str, Any]], Awaitable[Any]]


class Connection:
    _ids = itertools.count(1)

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.id = next(self._ids)
        self.reader = reader
        self.writer = writer
        self.tasks: dict[Any, asyncio.Task[None]] = {}

    def send(self, msg: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            write_message(self.writer, msg)


class RpcServer:
    """Subclasses fill ``handlers`` and may override :meth:`connection_lost`."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.connections: dict[int, Connection] = {}
        self.last_activity = time.monotonic()

    def connection_lost(self, conn: Connection) -> None:
        """An editor's connection closed (its documents may need closing)."""

    # -- connection handling -------------------------------------------------------------------
    async def handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None and peer_uid(sock) != os.geteuid():  # the 0700 dir should already stop them
            log.warning("refused a connection from uid %d", peer_uid(sock))
            writer.close()
            return
        conn = Connection(reader, writer)
        self.connections[conn.id] = conn
        log.info("client %d connected (%d total)", conn.id, len(self.connections))
        try:
            while True:
                try:
                    msg = await read_message(reader)
                except DaemonError as exc:
                    conn.send({"id": getattr(exc, "id", None), "error": {"code": exc.code, "message": str(exc)}})
                    continue
                except ValueError:  # line longer than the stream limit
                    conn.send({"id": None, "error": {"code": -32600, "message": "message too large"}})
                    break
                if msg is None:
                    break
                self.last_activity = time.monotonic()
                self._dispatch(conn, msg)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for task in conn.tasks.values():
                task.cancel()
            self.connection_lost(conn)
            self.connections.pop(conn.id, None)
            self.last_activity = time.monotonic()
            with contextlib.suppress(Exception):
                writer.close()
            log.info("client %d gone (%d left)", conn.id, len(self.connections))

    def _dispatch(self, conn: Connection, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        params = msg.get("params") or {}
        req_id = msg.get("id")
        if not isinstance(params, dict):
            if req_id is not None:
                conn.send({"id": req_id, "error": {"code": -32602, "message": "params must be an object"}})
            return
        if method == "cancel":
            task = conn.tasks.get(params.get("id"))
            if task is not None:
                # on the next turn: a task cancelled before its first step never runs _run, so never replies
                asyncio.get_running_loop().call_soon(task.cancel)
            return
        handler = self.handlers.get(method) if isinstance(method, str) else None
        if handler is None:
            if req_id is not None:
                conn.send({"id": req_id, "error": {"code": -32601, "message": f"unknown method {method!r}"}})
            return
        task = asyncio.create_task(self._run(conn, handler, req_id, params))
        if req_id is not None:
            conn.tasks[req_id] = task

    async def _run(self, conn: Connection, handler: Handler, req_id: Any, params: dict[str, Any]) -> None:
        try:
            result = await handler(conn, params)
            if req_id is not None:
                conn.send({"id": req_id, "result": result})
        except asyncio.CancelledError:
            if req_id is not None:
                conn.send({"id": req_id, "error": {"code": -32800, "message": "request cancelled"}})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if req_id is not None:
                conn.send({"id": req_id, "error": {"code": -32602, "message": f"invalid params: {exc}"}})
        except Exception as exc:  # never let one request kill the daemon
            log.exception("handler failed")
            if req_id is not None:
                conn.send({"id": req_id, "error": {"code": -32603, "message": f"internal error: {exc!r}"}})
        finally:
            if req_id is not None:
                conn.tasks.pop(req_id, None)
