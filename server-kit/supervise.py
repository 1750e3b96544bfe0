"""The servers `server-kit launch` starts, as child processes, all stopped on SIGTERM or SIGINT.

Why this shape: the signal handler only records the signal; the main thread does every wait and every stop.
(The old handler called ``stop()``, which waited on the process the main thread was already waiting on and
hung; a signal while the model loaded killed launch but left llama-server on its port.) The main thread
sleeps in ``select`` on Python's signal wakeup fd, so a signal, or SIGCHLD when a child exits, wakes it at
once. Each child leads its own process group: stopping the group also ends what the child forked (vLLM's
engine core), and a terminal's Ctrl-C reaches launch only, which then stops the children.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = [
    "GATEWAY_READY_S",
    "Child",
    "LaunchError",
    "Stopped",
    "Supervisor",
    "gateway_command",
    "health_ok",
    "supervised",
]

GATEWAY_READY_S = 30.0


class LaunchError(RuntimeError):
    """A child did not come up in time, or exited."""


class Stopped(Exception):
    """SIGTERM or SIGINT arrived."""


def health_ok(root_url: str, timeout: float = 1.0) -> bool:
    """``/health`` answers 200 (llama-server and vLLM answer 503, or nothing, while the model loads)."""
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{root_url}/health", timeout=timeout, trust_env=False).status_code == 200
    return False


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def gateway_command(args: Sequence[str]) -> list[str]:
    """``server-kit gateway ARGS`` with this interpreter (not whichever ``server-kit`` is on PATH)."""
    return [sys.executable, "-m", "codeassist.serverkit.cli", "gateway", *args]


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    root_url: str  # http://host:port, where /health answers once it serves


class Supervisor:
    """Start children, wait until each is up, then until a signal or a child's exit; leaving stops them all."""

    def __init__(self, grace_s: float = 5.0) -> None:
        self.grace_s = grace_s  # SIGTERM, then SIGKILL after this long
        self.children: list[Child] = []
        self.signalled: int | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._old_handlers: dict[int, Any] = {}
        self._old_wakeup = -1

    def __enter__(self) -> Supervisor:
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self._old_wakeup = signal.set_wakeup_fd(self._wake_w.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        # A handler (not SIG_DFL) so that a child's exit writes to the wakeup fd too.
        self._old_handlers[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda *_: None)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop_all()
        finally:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(self._old_wakeup)
            self._wake_r.close()
            self._wake_w.close()
        print("stopped", flush=True)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signalled = signum

    def _sleep(self, seconds: float) -> None:
        """Up to ``seconds``; less when a signal arrives (its byte is on the wakeup fd)."""
        ready, _, _ = select.select([self._wake_r], [], [], seconds)
        if ready:
            with contextlib.suppress(BlockingIOError):
                while self._wake_r.recv(256):
                    pass

    def check(self) -> None:
        """Raise :class:`Stopped` after a signal, :class:`LaunchError` once a child has exited."""
        if self.signalled is not None:
            raise Stopped(signal.Signals(self.signalled).name)
        for c in self.children:
            if c.proc.poll() is not None:
                raise LaunchError(f"{c.name} exited with status {c.proc.returncode}")

    def start(
        self, name: str, argv: Sequence[str], root_url: str, env: Mapping[str, str] | None = None, quiet: bool = False
    ) -> Child:
        self.check()
        parts = urlsplit(root_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        if _port_open(host, port):
            raise LaunchError(f"port {port} on {host} is already in use")
        out = subprocess.DEVNULL if quiet else None
        proc = subprocess.Popen(
            list(argv),
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        child = Child(name, proc, root_url)
        self.children.append(child)
        print(f"{name} (pid {proc.pid}) starting on {host}:{port}", flush=True)
        return child

    def wait_ready(self, child: Child, timeout: float, probe: Callable[[str], bool] = health_ok) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check()
            if probe(child.root_url):
                print(f"{child.name} up: {child.root_url}", flush=True)
                return
            if time.monotonic() > deadline:
                raise LaunchError(f"{child.name} not ready within {timeout:.0f}s")
            self._sleep(0.2)

    def wait(self) -> None:
        """Until a signal (:class:`Stopped`) or a child's exit (:class:`LaunchError`)."""
        while True:
            self.check()
            self._sleep(5.0)  # woken at once by the signal or SIGCHLD; the timeout is only a backstop

    def stop_all(self) -> None:
        """SIGTERM to every child's group, SIGKILL to what is left after ``grace_s``; every child reaped."""
        for c in self.children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(c.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for c in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.proc.wait(max(0.0, deadline - time.monotonic()))
        for c in self.children:  # the leaders that did not stop, and what they forked and left behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(c.proc.pid, signal.SIGKILL)
            c.proc.wait()


def supervised(body: Callable[[Supervisor], None], grace_s: float = 5.0) -> int:
    """Run ``body`` (which starts the children and prints its ready line), then wait; 0 after SIGTERM/SIGINT,
    1 when a child failed. Every child is stopped on the way out, and "stopped" printed."""
    with Supervisor(grace_s) as sup:
        try:
            body(sup)
            sup.wait()
        except Stopped:
            return 0
        except LaunchError as exc:
            print(f"server-kit: {exc}", file=sys.stderr, flush=True)
            return 1
    return 0  # not reached: wait() only ends by raising
