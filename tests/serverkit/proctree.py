"""A command under test as a subprocess (imported as `proctree`): its output read line by line, the tree of
processes it starts (from /proc), and the check that a signal stops all of it. Used by the signal tests of
`server-kit launch` and `codeassist demo`."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.realparts import free_port

__all__ = [
    "READY_WITHIN_S",
    "STOP_WITHIN_S",
    "Watched",
    "alive",
    "assert_stopped",
    "descendants",
    "free_port",
    "port_free",
    "proc_stat",
]

STOP_WITHIN_S = 10.0
READY_WITHIN_S = 120.0


def port_free(port: int) -> bool:
    """Nothing listens and a new server could bind it (as a server does, with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.settimeout(0.5)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def proc_stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) from /proc, or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def descendants(root: int) -> dict[int, tuple[int, str]]:
    """Every live process below ``root``: pid -> (start time, command name)."""
    parent: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := proc_stat(int(entry))) is not None and st[1] != "Z":
            parent[int(entry)] = (st[0], st[2])
    found: dict[int, tuple[int, str]] = {}
    frontier = [root]
    while frontier:
        p = frontier.pop()
        for pid, (ppid, start) in parent.items():
            if ppid == p and pid not in found:
                with contextlib.suppress(OSError):
                    found[pid] = (start, Path(f"/proc/{pid}/comm").read_text().strip())
                frontier.append(pid)
    return found


def alive(pid: int, start: int) -> bool:
    st = proc_stat(pid)
    return st is not None and st[2] == start and st[1] != "Z"


class Watched:
    """``argv`` as a subprocess in its own session (a Ctrl-C in the test's terminal does not reach it), its
    output read line by line; ``seen`` is every descendant ever seen. ``name`` is what failure messages call it."""

    def __init__(self, argv: list[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.seen: dict[int, tuple[int, str]] = {}
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_line(self, pred: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no such line within {timeout:.0f}s; output:\n" + "\n".join(self.lines)) from None
            if line is None:
                raise AssertionError(f"{self.name} exited; output:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if pred(line):
                return line

    def stop_with(self, sig: int) -> tuple[float, str]:
        """Send ``sig``; the time it took to exit and the rest of its output."""
        self.seen.update(descendants(self.proc.pid))
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(STOP_WITHIN_S)
        took = time.monotonic() - t0
        with contextlib.suppress(queue.Empty):  # to the end of its output (or what there is, if it hangs)
            while (line := self._q.get(timeout=2 if self.proc.poll() is not None else 0)) is not None:
                self.lines.append(line)
        return took, "\n".join(self.lines)

    def kill_all(self) -> None:
        """Test cleanup: nothing outlives the test, whatever it found."""
        self.seen.update(descendants(self.proc.pid) if self.proc.poll() is None else {})
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid, (start, _) in self.seen.items():
            if alive(pid, start):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def assert_stopped(w: Watched, sig: int, ports: list[int], exit_code: int | None = None, settle_s: float = 0.0) -> None:
    """``sig`` stops ``w`` within STOP_WITHIN_S (with ``exit_code`` if given): every child it had is gone (a
    grandchild may take up to ``settle_s`` more to follow), its last line is "stopped" and ``ports`` are free."""
    took, out = w.stop_with(sig)
    assert w.proc.returncode is not None, f"still running {STOP_WITHIN_S:.0f}s after the signal:\n{out}"
    assert took < STOP_WITHIN_S
    if exit_code is not None:
        assert w.proc.returncode == exit_code, out
    assert w.seen, "no child was seen"
    deadline = time.monotonic() + settle_s
    while (left := {p: c for p, (s, c) in w.seen.items() if alive(p, s)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"left running: {left}; output:\n{out}"
    assert out.splitlines()[-1:] == ["stopped"], out
    for port in ports:
        assert port_free(port), f"port {port} still taken"
