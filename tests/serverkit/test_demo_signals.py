"""`codeassist demo` stops on SIGTERM/SIGINT as `server-kit launch` does: the model server it started and its
private daemon end, the port is free, and the last line is "stopped" — wherever the signal lands (while the
model loads, or once it is up and the daemon starts)."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_launch_signals import READY_WITHIN_S, STOP_WITHIN_S, alive, descendants, free_port, port_free


class Demo:
    def __init__(self, port: int, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "codeassist.client.cli", "demo", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.seen: dict[int, tuple[int, str]] = {}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_line(self, pred, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("no such line; output:\n" + "\n".join(self.lines)) from None
            if line is None:
                raise AssertionError("demo exited; output:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if pred(line):
                return line

    def stop_with(self, sig: int) -> tuple[float, str]:
        self.seen.update(descendants(self.proc.pid))
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(STOP_WITHIN_S)
        took = time.monotonic() - t0
        with contextlib.suppress(queue.Empty):
            while (line := self._q.get(timeout=2 if self.proc.poll() is not None else 0)) is not None:
                self.lines.append(line)
        return took, "\n".join(self.lines)

    def kill_all(self) -> None:
        self.seen.update(descendants(self.proc.pid) if self.proc.poll() is None else {})
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid, (start, _) in self.seen.items():
            if alive(pid, start):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator:
    nothing = free_port()  # the configured server: nothing answers there, so the demo starts its own
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CODEASSIST_SERVER_URL": f"http://127.0.0.1:{nothing}/v1",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "TMPDIR": str(tmp_path),  # its private daemon's runtime dir and sample file land here
    }
    env.pop("CODEASSIST_RUNTIME_DIR", None)
    made: list[Demo] = []

    def start(port: int) -> Demo:
        made.append(Demo(port, env))
        return made[-1]

    yield start
    for d in made:
        d.kill_all()


def assert_stopped(d: Demo, sig: int, port: int) -> None:
    took, out = d.stop_with(sig)
    assert d.proc.returncode is not None, f"still running {STOP_WITHIN_S:.0f}s after the signal:\n{out}"
    assert took < STOP_WITHIN_S
    assert d.proc.returncode == 128 + sig, out
    assert d.seen, "no child was seen"
    deadline = time.monotonic() + 5  # the daemon's own exit after "stop" (it is not the demo's to wait for)
    while (left := {p: c for p, (s, c) in d.seen.items() if alive(p, s)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"left running: {left}; output:\n{out}"
    assert out.splitlines()[-1:] == ["stopped"], out
    assert port_free(port), f"port {port} still taken"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_demo_stops_once_the_model_is_up(demo, sig):
    port = free_port()
    d = demo(port)
    d.wait_line(lambda ln: ln.strip().startswith("ready in"), READY_WITHIN_S)  # the model server serves
    assert not port_free(port)
    assert_stopped(d, sig, port)


def test_demo_stops_while_the_model_loads(demo):
    port = free_port()
    d = demo(port)
    d.wait_line(lambda ln: ln.startswith("starting the local model server"), READY_WITHIN_S)
    deadline = time.monotonic() + READY_WITHIN_S  # until llama-server is its child (it loads for seconds)
    while not any(c == "llama-server" for _, c in descendants(d.proc.pid).values()):
        assert time.monotonic() < deadline and d.proc.poll() is None, "\n".join(d.lines)
        time.sleep(0.05)
    assert_stopped(d, signal.SIGTERM, port)
    assert not any(ln.strip().startswith("ready in") for ln in d.lines), "it was up already: not this case"
