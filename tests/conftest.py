"""Shared fixtures: the real local model server (once per session), isolated daemons, free ports."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.realparts import SSHD, AuthProxy, Sshd, free_port

__all__ = ["free_port", "made_and_closed"]  # tests import these from here

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def made_and_closed(make: Callable[..., T], close: Callable[[T], object]) -> Iterator[Callable[..., T]]:
    """A factory fixture's body (``yield from`` it): hands the test a maker that remembers what it made, then
    ``close``s each of them after the test."""
    made: list[T] = []

    def maker(*args: Any, **kw: Any) -> T:
        made.append(item := make(*args, **kw))
        return item

    yield maker
    for item in made:
        close(item)


@pytest.fixture(scope="session")
def local_model_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real llama.cpp server with Gemma 3 270M, started once per test session."""
    from codeassist.serverkit.localmodel import LocalModelServer

    log = tmp_path_factory.mktemp("llama") / "llama-server.log"
    server = LocalModelServer(port=free_port(), parallel=4, log_file=log).start()
    try:
        yield f"{server.base_url}/v1"
    finally:
        server.stop()


def _short_tmpdir(prefix: str) -> Path:
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


class DaemonEnv:
    """Environment for one isolated daemon: its own runtime, config and log dirs."""

    def __init__(self, server_url: str) -> None:
        self.root = _short_tmpdir("ca-")
        self.env = {
            **os.environ,
            "CODEASSIST_RUNTIME_DIR": str(self.root / "run"),
            "CODEASSIST_CONFIG_DIR": str(self.root / "config"),
            "CODEASSIST_STATE_DIR": str(self.root / "state"),
            "CODEASSIST_LOG_DIR": str(self.root / "log"),
            "CODEASSIST_SERVER_URL": server_url,
            "CODEASSIST_IDLE_TIMEOUT": "60",
            # Generous: CI machines are small and the suite runs model requests in parallel.
            "CODEASSIST_FIRST_TOKEN_TIMEOUT": "30",
            "CODEASSIST_TOTAL_TIMEOUT": "60",
        }

    @property
    def socket(self) -> Path:
        return self.root / "run" / "daemon.sock"

    def daemon_pid(self) -> int | None:
        lock = self.root / "run" / "daemon.run.lock"
        try:
            return int(lock.read_text().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def run(self, *args: str, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "codeassist.client.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )

    def stop(self) -> None:
        pid = self.daemon_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.05)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def daemon_env_factory() -> Iterator[Callable[[str], DaemonEnv]]:
    """``make(server_url)``: an isolated daemon environment; each stopped after the test."""
    yield from made_and_closed(DaemonEnv, DaemonEnv.stop)


@pytest.fixture
def daemon_env(daemon_env_factory, local_model_url: str) -> DaemonEnv:
    """An isolated daemon environment pointed at the real local model server."""
    return daemon_env_factory(local_model_url)


@pytest.fixture
def standin():
    """The scripted stand-in server (timings and faults only — not a model)."""
    from codeassist.serverkit.standin import StandinServer

    server = StandinServer().start()
    yield server
    server.stop()


@pytest.fixture
def proxy_factory() -> Iterator[Callable[..., AuthProxy]]:
    """``make(upstream, **kw)``: a started :class:`AuthProxy`; each stopped after the test."""
    yield from made_and_closed(lambda upstream, **kw: AuthProxy(upstream, **kw).start(), AuthProxy.stop)


@pytest.fixture
def sshd() -> Iterator[Sshd]:
    if not os.path.exists(SSHD) or not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        pytest.skip("OpenSSH server/client not installed (apt-get install openssh-server openssh-client)")
    if not os.path.isdir("/run/sshd"):
        try:
            os.makedirs("/run/sshd", mode=0o755)
        except OSError:
            pytest.skip("sshd needs /run/sshd (privilege separation dir) and it cannot be created")
    server = Sshd().start()
    yield server
    server.stop()
