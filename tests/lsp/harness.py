"""Raw clients for malformed-input tests: `codeassist lsp` over stdio and the daemon's unix socket.

Each keeps a reader thread that collects every reply by id, so a test can write thousands of frames
in a few large writes and then wait (on a condition, not a sleep) until each expected id has come back.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import IO, Any

from tests.lsp_client import LSP_COMMAND

__all__ = ["DaemonSocket", "LspProcess", "Replies", "frame", "id_key"]


def id_key(value: Any) -> str:
    """Type-exact key of a JSON-RPC id (1, 1.0, true and "1" differ); "null" for an id-less error."""
    return json.dumps(value, sort_keys=True)


def frame(body: bytes) -> bytes:
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


class Replies:
    """Replies (messages without a method) counted by id key; notifications kept apart."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.counts: Counter[str] = Counter()
        self.messages: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.closed = False

    def add(self, msg: Any) -> None:
        with self._cond:
            if isinstance(msg, dict) and "method" in msg:
                self.notifications.append(msg)
            else:
                self.messages.append(msg)
                self.counts[id_key(msg.get("id") if isinstance(msg, dict) else None)] += 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait_for(self, expected: Counter[str], timeout: float) -> bool:
        """Until every expected key has at least its count of replies (False on timeout or end of stream)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: all(self.counts[k] >= n for k, n in expected.items()) or self.closed, timeout
            ) and all(self.counts[k] >= n for k, n in expected.items())

    def missing(self, expected: Counter[str]) -> Counter[str]:
        with self._cond:
            return Counter({k: n - self.counts[k] for k, n in expected.items() if self.counts[k] < n})

    def of(self, key: str) -> list[dict[str, Any]]:
        with self._cond:
            return [m for m in self.messages if id_key(m.get("id")) == key]


class LspProcess:
    """`codeassist lsp` on pipes; stderr goes to a file so the test can count log lines."""

    def __init__(self, env: dict[str, str], cwd: Path, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self._stderr: IO[bytes] = open(stderr_path, "wb")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            LSP_COMMAND, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr
        )
        self.replies = Replies()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        try:
            while True:
                length = -1
                while True:
                    line = out.readline()
                    if not line:
                        return
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                    elif line in (b"\r\n", b"\n"):
                        break
                body = out.read(length)
                if len(body) < length:
                    return
                self.replies.add(json.loads(body))
        finally:
            self.replies.close()

    def kill_after(self, seconds: float) -> threading.Timer:
        """A watchdog: a bridge that stops reading would otherwise block the test's writes forever."""
        timer = threading.Timer(seconds, self.proc.kill)
        timer.daemon = True
        timer.start()
        return timer

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, msg: dict[str, Any]) -> None:
        self.write(frame(json.dumps(msg).encode()))

    def request(self, msg: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        key = id_key(msg["id"])
        before = self.replies.counts[key]
        self.send(msg)
        assert self.replies.wait_for(Counter({key: before + 1}), timeout), f"no reply to {msg!r}"
        return self.replies.of(key)[before]

    def stderr_text(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._stderr.close()


class DaemonSocket:
    """A raw connection to the daemon: write lines, collect newline-delimited replies."""

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)  # a daemon that stops reading fails the write instead of hanging it
        self.sock.connect(str(path))
        self.replies = Replies()
        self.unparsable: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            with self.sock.makefile("rb") as f:
                for line in f:
                    try:
                        self.replies.add(json.loads(line))
                    except ValueError:
                        self.unparsable.append(line)
        except OSError:
            pass
        finally:
            self.replies.close()

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
