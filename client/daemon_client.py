"""Find or start the per-user daemon and connect to it.

Two bridges starting at once must make one daemon: the spawn happens under an exclusive flock, and
the daemon itself holds a run lock for its lifetime.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import time
from typing import Any

from codeassist.client import paths
from codeassist.client.protocol import RpcConnection

__all__ = ["DaemonUnavailable", "call", "connect", "ensure_daemon", "spawn_daemon"]

START_TIMEOUT = 15.0


class DaemonUnavailable(RuntimeError):
    pass


def _can_connect(path: str) -> bool:
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def spawn_daemon() -> subprocess.Popen[bytes]:
    log_file = open(paths.log_dir() / "daemon.out", "ab")  # noqa: SIM115 (handed to the child)
    return subprocess.Popen(
        [sys.executable, "-m", "codeassist.client.daemon"],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=log_file,
        start_new_session=True,  # survives the editor that started it
        close_fds=True,
    )


def ensure_daemon(timeout: float = START_TIMEOUT) -> str:
    """Return the socket path of a running daemon, starting one if none answers."""
    sock = str(paths.socket_path())
    if _can_connect(sock):
        return sock
    fd = os.open(paths.lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _can_connect(sock):  # somebody else started it while we waited
            return sock
        proc = spawn_daemon()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _can_connect(sock):
                return sock
            if proc.poll() is not None and not _can_connect(sock):
                log = paths.log_dir() / "daemon.out"
                raise DaemonUnavailable(f"the daemon exited with status {proc.returncode}; see {log}")
            time.sleep(0.02)
        raise DaemonUnavailable(f"the daemon did not open {sock} within {timeout:.0f}s")
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


async def connect(start: bool = True, **kw: Any) -> RpcConnection:
    sock = await asyncio.to_thread(ensure_daemon) if start else str(paths.socket_path())
    try:
        return await RpcConnection.open_unix(sock, **kw)
    except OSError as exc:
        raise DaemonUnavailable(f"cannot connect to the daemon at {sock}: {exc}") from None


async def call(method: str, params: dict[str, Any] | None = None, start: bool = False,
               timeout: float | None = 30.0) -> Any:
    """One request on a short-lived connection (the CLI's way to talk to the daemon)."""
    conn = await connect(start=start)
    try:
        return await asyncio.wait_for(conn.request(method, params), timeout)
    finally:
        await conn.aclose()
