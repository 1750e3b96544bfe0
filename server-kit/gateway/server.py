"""Run the gateway: its state, the completion proxies and the other routes behind one HTTP/1.1 listener.

:class:`Gateway` lives in an event loop (uvloop when run here); :func:`serve` runs it until SIGINT/SIGTERM
(the CLI), :class:`GatewayServer` in a background thread on a real socket (tests and benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import resource
import signal
import ssl
import threading
from pathlib import Path

import uvloop
from codeassist.serverkit.gateway.app import create_app
from codeassist.serverkit.gateway.asgi_bridge import call_asgi
from codeassist.serverkit.gateway.config import GatewayConfig
from codeassist.serverkit.gateway.http1 import Connection, Request, Routes
from codeassist.serverkit.gateway.proxy import CompletionProxy
from codeassist.serverkit.gateway.state import GatewayState
from codeassist.serverkit.gateway.upstream import UpstreamClient

__all__ = ["Gateway", "GatewayServer", "raise_nofile_limit", "serve", "tls_context"]


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


class Gateway:
    def __init__(self, cfg: GatewayConfig, upstream: UpstreamClient | None = None) -> None:
        self.state = GatewayState(cfg, upstream)
        self.app = create_app(self.state)
        hot = {
            "/v1/completions": CompletionProxy(self.state, "interactive", "/completions"),
            "/v1/chat/completions": CompletionProxy(self.state, "chat", "/chat/completions"),
        }
        self.routes = Routes(hot, cfg.max_body_bytes, self._other, cfg.request_timeout_s, cfg.max_connections)
        self.server: asyncio.Server | None = None

    async def _other(self, conn: Connection, req: Request, body: bytes) -> None:
        await call_asgi(self.app, conn, req, body)

    async def listen(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Start accepting; returns the port (useful with ``port=0``)."""
        scheme = "https" if tls else "http"
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: Connection(self.routes, scheme), host, port, ssl=tls, backlog=2048
        )
        return self.server.sockets[0].getsockname()[1]

    async def aclose(self, grace_s: float = 5.0) -> None:
        """Stop accepting, let requests in progress finish for up to ``grace_s``, then close everything."""
        if self.server is not None:
            self.server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        conns = self.routes.connections
        while any(c.serving is not None for c in conns) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for c in list(conns):
            if c.transport is not None:
                c.transport.close()
        await asyncio.sleep(0)  # connection_lost runs: requests still going are cancelled
        await self.state.aclose()


def raise_nofile_limit() -> int:
    """Raise the soft limit on open files to the hard limit (each client connection is one); returns the soft
    limit in force afterwards."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return 1024
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def serve(cfg: GatewayConfig, host: str, port: int, tls_cert: Path | None = None, tls_key: Path | None = None) -> None:
    """The gateway until SIGINT or SIGTERM (the ``server-kit gateway`` command)."""
    nofile = raise_nofile_limit()
    # Leave descriptors for the upstream connections (in flight and pooled), the audit log and the listener.
    cap = max(16, nofile - 2 * cfg.max_inflight - 64)
    if cfg.max_connections > cap:
        cfg = dataclasses.replace(cfg, max_connections=cap)

    async def main() -> None:
        gw = Gateway(cfg)
        await gw.listen(host, port, tls_context(tls_cert, tls_key) if tls_cert and tls_key else None)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await gw.aclose()

    uvloop.run(main())


class GatewayServer:
    """The gateway on a real socket in a background thread with its own uvloop loop (tests and benchmarks)."""

    def __init__(
        self,
        cfg: GatewayConfig,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
    ) -> None:
        self.gateway = Gateway(cfg)
        self.host, self.port = host, port
        self.tls = tls_context(tls_cert, tls_key) if tls_cert and tls_key else None
        self.scheme = "https" if self.tls else "http"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> GatewayState:
        return self.gateway.state

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> GatewayServer:
        loop = self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, daemon=True, name="gateway")
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.gateway.listen(self.host, self.port, self.tls), loop).result(
            10
        )
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            loop.close()
        self._loop = None

    async def _shutdown(self) -> None:
        await self.gateway.aclose(grace_s=2.0)
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
