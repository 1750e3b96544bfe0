"""A scripted stand-in for an OpenAI-compatible completion server — for exact timings and faults only.

Not a model: it streams a fixed text with a configured time to first token and inter-token gap, or
fails in a configured way (``500``, ``drop`` mid-stream, ``hang`` before the first token). It records
what it received and how many streams the client closed early, so tests can see cancellations at
the server. End-to-end paths use the real local model server instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StandinBehaviour", "StandinServer"]


@dataclass
class StandinBehaviour:
    ttft_s: float = 0.0
    gap_s: float = 0.0
    tokens: list[str] = field(default_factory=lambda: ["hello", " world", "\n"])
    fault: str | None = None  # None | "500" | "drop" | "hang" | "401" | "loading" (/props 503)
    model: str = "standin-model"
    slots: int = 0  # requests served at once (0: any number); the rest wait, as on a saturated server
    owned_by: str | None = None  # /v1/models "owned_by" ("llamacpp", "vllm"), as those servers say
    server: str | None = None  # the streamed answer's Server header ("llama.cpp", as llama-server sends)
    # The tokens for one request, from its body (the oracle of benchmarks/replay.py: the hidden true text);
    # None: ``tokens``
    answer: Callable[[dict[str, Any]], list[str]] | None = None


@dataclass
class StandinStats:
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    completed: int = 0
    disconnected: int = 0
    connections: int = 0  # TCP connections accepted (a keep-alive client reuses one)


async def _cancel_all() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class StandinServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, behaviour: StandinBehaviour | None = None) -> None:
        self.host, self.port = host, port
        self.behaviour = behaviour or StandinBehaviour()
        self.stats = StandinStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._slots: asyncio.Semaphore | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = line.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                keep = await self._respond(method, path, headers, body, reader, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        b = self.behaviour

        def send(status: str, payload: bytes, ctype: str = "application/json") -> None:
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(payload)}\r\n\r\n".encode()
                + payload
            )

        if path.endswith("/health"):
            send("200 OK", b'{"status":"ok"}')
        elif path.endswith("/props") and b.server == "llama.cpp":  # llama-server's, at the server's root
            if b.fault == "loading":  # as llama-server answers while its model loads
                send("503 Service Unavailable", b'{"error":{"message":"Loading model"}}')
            else:
                send("200 OK", json.dumps({"total_slots": b.slots or 1}).encode())
        elif path.endswith("/models"):
            entry: dict[str, Any] = {"id": b.model, "object": "model"}
            if b.owned_by:
                entry["owned_by"] = b.owned_by
            send("200 OK", json.dumps({"object": "list", "data": [entry]}).encode())
        elif path.endswith("/completions") and method == "POST":
            req = json.loads(body or b"{}")
            self.stats.requests.append(req)
            self.stats.headers.append(headers)
            if b.fault == "500":
                send("500 Internal Server Error", b'{"error":{"message":"scripted failure"}}')
            elif b.fault == "401":
                send("401 Unauthorized", b'{"error":{"message":"bad key"}}')
            elif not req.get("stream"):
                await asyncio.sleep(b.ttft_s + b.gap_s * max(0, len(b.tokens) - 1))
                payload = {
                    "choices": [{"text": "".join(b.tokens), "index": 0, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": len(b.tokens)},
                }
                send("200 OK", json.dumps(payload).encode())
                self.stats.completed += 1
            elif self._slots is None:
                return await self._stream(req, reader, writer)
            else:
                async with self._slots:
                    return await self._stream(req, reader, writer)
        else:
            send("404 Not Found", b'{"error":"not found"}')
        await writer.drain()
        return True

    async def _stream(self, req: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        b = self.behaviour
        loop = asyncio.get_running_loop()

        async def sleep(seconds: float) -> None:
            # Poll for the client hanging up (EOF) without reading, so keep-alive stays intact.
            deadline = loop.time() + seconds
            while True:
                if reader.at_eof() or writer.transport.is_closing():
                    raise ConnectionResetError
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                await asyncio.sleep(min(remaining, 0.01))

        server = f"server: {b.server}\r\n".encode() if b.server else b""
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            + server
            + b"transfer-encoding: chunked\r\n\r\n"
        )

        def chunk(data: bytes) -> None:
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        try:
            await writer.drain()
            if b.fault == "hang":
                await sleep(3600)
            await sleep(b.ttft_s)
            tokens = b.answer(req) if b.answer is not None else b.tokens
            n = len(tokens)
            for i, tok in enumerate(tokens[: req.get("max_tokens", n)]):
                if i:
                    await sleep(b.gap_s)
                if b.fault == "drop" and i == n // 2:
                    writer.transport.abort()
                    return False
                finish = "stop" if i == n - 1 else None
                event = {"choices": [{"text": tok, "index": 0, "finish_reason": finish}]}
                chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
                await writer.drain()
                if writer.transport.is_closing():
                    raise ConnectionResetError
            chunk(b"data: [DONE]\n\n")
            chunk(b"")
            await writer.drain()
            self.stats.completed += 1
            return True
        except (ConnectionError, asyncio.CancelledError):
            self.stats.disconnected += 1
            return False

    def start(self) -> StandinServer:
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            if self.behaviour.slots:
                self._slots = asyncio.Semaphore(self.behaviour.slots)
            self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, self.host, self.port))
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()
            self._loop.run_forever()
            # Stopped: end the open connections' handlers so none is destroyed while pending.
            self._loop.run_until_complete(_cancel_all())
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="standin")
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        if self._loop and self._server:
            self._loop.call_soon_threadsafe(self._server.close)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    p = argparse.ArgumentParser(description="scripted stand-in completion server (timings/faults only)")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--ttft", type=float, default=0.05)
    p.add_argument("--gap", type=float, default=0.01)
    p.add_argument("--tokens", type=int, default=16)
    a = p.parse_args()
    s = StandinServer(
        port=a.port, behaviour=StandinBehaviour(ttft_s=a.ttft, gap_s=a.gap, tokens=[f" t{i}" for i in range(a.tokens)])
    )
    s.start()
    print(f"stand-in server on {s.base_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
