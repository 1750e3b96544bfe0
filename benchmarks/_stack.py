"""Shared set-up for benchmarks: the real local model server and an isolated daemon environment."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def percentile(values: list[float], p: float) -> float:
    from codeassist.client.latency import percentile as nearest_rank

    return nearest_rank(values, p) if values else float("nan")


@contextlib.contextmanager
def local_model(url: str | None = None) -> Iterator[str]:
    """Yield a /v1 URL: the given one, or a freshly started local llama.cpp server."""
    if url:
        yield url
        return
    from codeassist.serverkit.localmodel import LocalModelServer

    with LocalModelServer(port=free_port(), parallel=4) as server:
        yield f"{server.base_url}/v1"


@contextlib.contextmanager
def daemon_env(server_url: str) -> Iterator[dict[str, str]]:
    """Environment for a private daemon (own socket and dirs); stops it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="ca-bench-", dir="/tmp"))
    env = {
        **os.environ,
        "CODEASSIST_RUNTIME_DIR": str(root / "run"),
        "CODEASSIST_CONFIG_DIR": str(root / "config"),
        "CODEASSIST_SERVER_URL": server_url,
    }
    old = dict(os.environ)
    os.environ.update(env)
    try:
        yield env
    finally:
        with contextlib.suppress(Exception):
            import asyncio

            from codeassist.client.daemon_client import call

            asyncio.run(call("stop"))
        os.environ.clear()
        os.environ.update(old)
        shutil.rmtree(root, ignore_errors=True)


def emit(record: dict[str, object]) -> None:
    print(json.dumps(record), flush=True)
