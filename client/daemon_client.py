"""Find or start the per-user daemon and connect to it.

Two bridges starting at once must make one daemon: the spawn happens under an exclusive flock, and
the daemon itself holds a run lock for its lifetime.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import struct
import subprocess
import sys
import time
from typing import Any

from codeassist.client import paths
from codeassist.client.protocol import MAX_LINE, RpcConnection

__all__ = ["DaemonUnavailable", "call", "connect", "ensure_daemon", "spawn_daemon"]

START_TIMEOUT = 15.0


class DaemonUnavailable(RuntimeError):
    pass


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket (Linux SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def check_peer(sock: socket.socket, path: str) -> None:
    """Refuse a daemon that is not ours: documents and keys go only to a process of the same user."""
    uid = peer_uid(sock)
    if uid != os.geteuid():
        raise DaemonUnavailable(f"{path} is served by uid {uid}, not by you: refusing to send anything to it")


def _can_connect(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        s.connect(path)
        check_peer(s, path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def spawn_daemon() -> subprocess.Popen[bytes]:
    fd = paths.open_private(paths.log_dir() / "daemon.out", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    log_file = os.fdopen(fd, "ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "codeassist.client.daemon"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # survives the editor that started it
            close_fds=True,
            # Serves every repository: it must not take one repo's directory (or its project file) as its own.
            cwd="/",
        )
    finally:
        log_file.close()


def ensure_daemon(timeout: float = START_TIMEOUT) -> str:
    """Return the socket path of a running daemon, starting one if none answers."""
    sock = str(paths.socket_path())
    if _can_connect(sock):
        return sock
    fd = paths.open_private(paths.lock_path())
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
    try:
        sock = await asyncio.to_thread(ensure_daemon) if start else str(paths.socket_path())
    except paths.UnsafeRuntimeDir as exc:
        raise DaemonUnavailable(str(exc)) from None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.setblocking(False)
        await asyncio.get_running_loop().sock_connect(s, sock)
        check_peer(s, sock)  # before a single byte goes to it
        reader, writer = await asyncio.open_unix_connection(sock=s, limit=MAX_LINE)
    except OSError as exc:
        s.close()
        raise DaemonUnavailable(f"cannot connect to the daemon at {sock}: {exc}") from None
    except DaemonUnavailable:
        s.close()
        raise
    conn = RpcConnection(reader, writer, **kw)
    return conn


async def call(
    method: str, params: dict[str, Any] | None = None, start: bool = False, timeout: float | None = 30.0
) -> Any:
    """One request on a short-lived connection (the CLI's way to talk to the daemon)."""
    conn = await connect(start=start)
    try:
        return await asyncio.wait_for(conn.request(method, params), timeout)
    finally:
        await conn.aclose()
