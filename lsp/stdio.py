"""The bridge's stdio loop, in place of pygls's run_async.

pygls reads a frame with ``stdin.read(content_length)`` in an executor: a Content-Length of 2**63 or
more raises OverflowError outside its error handling and kills the bridge, a merely huge one tries
to allocate it, and a bad header can swallow the frames after it. Here lsp/framing.py turns any
input into frames or single errors, and lsp/protocol.py answers each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sys
import threading
from typing import BinaryIO

from codeassist.lsp.framing import FrameReader, FramingError, Truncated
from codeassist.lsp.protocol import BridgeProtocol
from pygls.io_ import StdoutWriter
from pygls.server import JsonRPCServer

__all__ = ["StdinChunks", "run_stdio", "serve"]

log = logging.getLogger("codeassist.lsp")


class StdinChunks:
    """Reads a file descriptor in a daemon thread, one chunk per call of ``read``.

    Reading only when asked bounds memory by the frame reader's needs; a daemon thread, unlike an
    executor's, does not hold up the process exit while it blocks in read().
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._asks: queue.SimpleQueue[tuple[int, asyncio.Future[bytes]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="stdin", daemon=True).start()

    def _run(self) -> None:
        while True:
            size, fut = self._asks.get()
            try:
                data = os.read(self._fd, size)
            except OSError as exc:
                log.warning("reading stdin failed: %s", exc)
                data = b""
            try:
                self._loop.call_soon_threadsafe(_resolve, fut, data)
            except RuntimeError:  # the loop is closed: the bridge is exiting
                return
            if not data:
                return

    async def read(self, size: int) -> bytes:
        fut: asyncio.Future[bytes] = self._loop.create_future()
        self._asks.put((size, fut))
        return await fut


def _resolve(fut: asyncio.Future[bytes], data: bytes) -> None:
    if not fut.done():
        fut.set_result(data)


async def serve(server: JsonRPCServer, fd: int) -> None:
    protocol = server.protocol
    assert isinstance(protocol, BridgeProtocol)
    stop = server._stop_event
    async for item in FrameReader(StdinChunks(fd).read):
        if isinstance(item, bytes):
            protocol.receive(item)
        elif isinstance(item, FramingError):
            protocol.reject_frame(item)
        elif isinstance(item, Truncated):
            log.warning("stopping: %s", item.message)
        if stop is not None and stop.is_set():
            break
        await asyncio.sleep(0)  # let handlers run between frames of one large read


def run_stdio(server: JsonRPCServer, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """What pygls's start_io does, with the loop above."""
    server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    fd = (stdin or sys.stdin.buffer).fileno()
    try:
        asyncio.run(serve(server, fd))
    except BrokenPipeError:
        log.error("the editor closed its end of the connection")
    except (KeyboardInterrupt, SystemExit):
        pass  # "exit" ends the process through pygls's sys.exit
    finally:
        with contextlib.suppress(Exception):
            server.shutdown()
