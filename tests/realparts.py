"""Real parts for tests: a key-checking (optionally TLS) proxy in front of a model server, a throwaway sshd on a
loopback port, and helpers to talk to an isolated daemon. Their fixtures are in tests/conftest.py."""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


class AuthProxy:
    """A small gateway: checks ``Authorization: Bearer <token>`` and forwards to the real model server.

    Restartable on the same port (server down / back up). With ``certfile`` it serves HTTPS.
    """

    def __init__(
        self,
        upstream: str,
        token: str | None = None,
        port: int | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.token = token
        self.port = port or free_port()
        self.certfile, self.keyfile = certfile, keyfile
        self.seen_auth: list[str] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.certfile else 'http'}://127.0.0.1:{self.port}/v1"

    def _app(self) -> Starlette:
        client = httpx.AsyncClient(timeout=60)

        def refused(request: Request) -> Response | None:
            got = request.headers.get("authorization", "")
            self.seen_auth.append(got)
            if self.token is not None and got != f"Bearer {self.token}":
                return JSONResponse({"error": {"message": "invalid API key"}}, status_code=401)
            return None

        async def models(request: Request) -> Response:
            if (bad := refused(request)) is not None:
                return bad
            r = await client.get(self.upstream + "/models")
            return Response(r.content, r.status_code, media_type="application/json")

        async def completions(request: Request) -> Response:
            if (bad := refused(request)) is not None:
                return bad
            req = client.build_request(
                "POST",
                self.upstream + "/completions",
                content=await request.body(),
                headers={"content-type": "application/json"},
            )
            r = await client.send(req, stream=True)
            return StreamingResponse(
                r.aiter_raw(),
                status_code=r.status_code,
                media_type=r.headers.get("content-type"),
                background=BackgroundTask(r.aclose),
            )

        return Starlette(routes=[Route("/v1/models", models), Route("/v1/completions", completions, methods=["POST"])])

    def start(self) -> AuthProxy:
        import uvicorn

        config = uvicorn.Config(
            self._app(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=self.certfile,
            ssl_keyfile=self.keyfile,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name=f"proxy-{self.port}")
        self._thread.start()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None


class Sshd:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ca-sshd-", dir="/tmp"))
        self.port = free_port()
        self.user = getpass.getuser()
        self.key = self.dir / "user_key"
        self.known_hosts = self.dir / "known_hosts"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sshd:
        d = self.dir
        for name in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
        (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
        host_pub = (d / "host_key.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        (d / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n"
            f"AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
            "AllowTcpForwarding yes\nLogLevel VERBOSE\n"
        )
        os.chmod(self.key, 0o600)
        self.proc = subprocess.Popen(
            [SSHD, "-f", str(d / "sshd_config"), "-D", "-e"],
            stdout=subprocess.DEVNULL,
            stderr=open(d / "sshd.log", "wb"),  # noqa: SIM115 (the child keeps it)
        )
        wait_port(self.port)
        return self

    @property
    def target(self) -> str:
        return f"{self.user}@127.0.0.1"

    def tunnel_args(self) -> list[str]:
        return [
            "--ssh-port",
            str(self.port),
            "-i",
            str(self.key),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
        ]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


async def daemon_request(sock: Path, method: str, params: dict[str, Any] | None = None) -> Any:
    from codeassist.client.protocol import RpcConnection

    conn = await RpcConnection.open_unix(str(sock))
    try:
        return await asyncio.wait_for(conn.request(method, params), 30)
    finally:
        await conn.aclose()


def patient(env: Any) -> Any:
    """Generous model timeouts: a loaded 2-core CI box must not turn a slow answer into an empty one."""
    env.env.update({"CODEASSIST_FIRST_TOKEN_TIMEOUT": "30", "CODEASSIST_TOTAL_TIMEOUT": "60"})
    return env


def write_sample(root: Path) -> tuple[Path, str]:
    """A file whose completion point is the end of ``return ``: the model always has something to say."""
    path = root / "sample.py"
    text = "def add(a, b):\n    return "
    path.write_text(text)
    return path, f"{path}:2:12"
