"""Run the gateway app under uvicorn (uvloop + httptools), in this thread or a background one (tests)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import uvicorn
from codeassist.serverkit.gateway.app import create_app
from codeassist.serverkit.gateway.config import GatewayConfig

__all__ = ["GatewayServer", "uvicorn_config"]


def uvicorn_config(cfg: GatewayConfig, host: str, port: int, tls_cert: Path | None = None,
                   tls_key: Path | None = None, app=None) -> uvicorn.Config:
    return uvicorn.Config(
        app or create_app(cfg), host=host, port=port,
        loop="uvloop", http="httptools",  # the fastest event loop and HTTP parser uvicorn offers
        access_log=False, log_level="warning", lifespan="on",
        ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
        timeout_keep_alive=75, backlog=2048, proxy_headers=False,  # no client addresses are used
    )


class GatewayServer:
    """The gateway on a real socket in a background thread (tests and benchmarks)."""

    def __init__(self, cfg: GatewayConfig, host: str = "127.0.0.1", port: int = 0,
                 tls_cert: Path | None = None, tls_key: Path | None = None) -> None:
        self.app = create_app(cfg)
        self.host = host
        conf = uvicorn_config(cfg, host, port, tls_cert, tls_key, app=self.app)
        self.server = uvicorn.Server(conf)
        self.scheme = "https" if tls_cert else "http"
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def state(self):
        return self.app.state.gateway

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> GatewayServer:
        self._thread = threading.Thread(target=self.server.run, daemon=True, name="gateway")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
