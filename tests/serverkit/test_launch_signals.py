"""`server-kit launch` stops on SIGTERM/SIGINT, before and after "ready": every child ends, the ports are free
and it says "stopped" — with the real llama-server (and the gateway with --with-gateway), and on the vLLM path
with a stand-in for vLLM (no GPU here) that forks an "engine core" as vLLM does."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

STOP_WITHIN_S = 10.0
READY_WITHIN_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class Launch:
    """`server-kit launch` as a subprocess, its output read line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "codeassist.serverkit.cli", "launch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,  # a Ctrl-C in the test's terminal does not reach it
        )
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.seen: dict[int, tuple[int, str]] = {}  # every descendant ever seen

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
                raise AssertionError(f"no such line within {timeout:.0f}s; output:\n" + "\n".join(self.lines)) from None
            if line is None:
                raise AssertionError("launch exited; output:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if pred(line):
                return line

    def child_pid(self, name: str) -> int:
        """The pid of the child launch announced as "NAME (pid N) starting on …", checked to be running."""
        line = next(ln for ln in self.lines if ln.startswith(f"{name} (pid "))
        pid = int(line.split("(pid ", 1)[1].split(")", 1)[0])
        self.seen.update(descendants(self.proc.pid))
        assert pid in self.seen, f"{name} (pid {pid}) is not a running child of launch"
        return pid

    def stop_with(self, sig: int) -> tuple[float, str]:
        """Send ``sig``; the time launch took to exit and the rest of its output."""
        self.seen.update(descendants(self.proc.pid))
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            pass
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


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator:
    env = {**os.environ, "CODEASSIST_SERVER_DIR": str(tmp_path / "server"), "PYTHONUNBUFFERED": "1"}
    env.pop("CODEASSIST_GATEWAY_PEPPER", None)
    made: list[Launch] = []

    def start(*args: str, extra_env: dict[str, str] | None = None) -> Launch:
        made.append(Launch(list(args), {**env, **(extra_env or {})}))
        return made[-1]

    yield start
    for launch in made:
        launch.kill_all()


def assert_stopped(launch: Launch, sig: int, ports: list[int]) -> None:
    took, out = launch.stop_with(sig)
    assert launch.proc.returncode is not None, f"still running {STOP_WITHIN_S:.0f}s after the signal:\n{out}"
    assert took < STOP_WITHIN_S
    assert launch.seen, "no child was seen"
    left = {pid: comm for pid, (start, comm) in launch.seen.items() if alive(pid, start)}
    assert not left, f"left running: {left}; output:\n{out}"
    assert out.splitlines()[-1:] == ["stopped"], out
    for port in ports:
        assert port_free(port), f"port {port} still taken"


def is_ready(line: str) -> bool:
    return re.search(r"\bready\b", line) is not None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_local_stops_after_ready(launcher, sig):
    port = free_port()
    launch = launcher("--model-server", "local", "--port", str(port))
    launch.wait_line(is_ready, READY_WITHIN_S)
    assert not port_free(port)  # ready means serving
    assert launch.seen[launch.child_pid("llama-server")][1] == "llama-server"
    assert_stopped(launch, sig, [port])


def test_local_stops_before_ready(launcher):
    port = free_port()
    launch = launcher("--model-server", "local", "--port", str(port))
    launch.wait_line(lambda ln: ln.startswith("llama-server (pid "), READY_WITHIN_S)  # started, loading the model
    launch.child_pid("llama-server")
    assert_stopped(launch, signal.SIGTERM, [port])
    assert not any(is_ready(ln) for ln in launch.lines), "the model was ready before the signal: not this case"


def test_with_gateway_stops_after_ready(launcher):
    port, gw_port = free_port(), free_port()
    launch = launcher("--model-server", "local", "--port", str(port), "--with-gateway", "--gateway-port", str(gw_port))
    launch.wait_line(is_ready, READY_WITHIN_S)
    assert not port_free(port) and not port_free(gw_port)
    assert_stopped(launch, signal.SIGTERM, [port, gw_port])


def test_with_gateway_stops_while_the_gateway_starts(launcher):
    port, gw_port = free_port(), free_port()
    launch = launcher("--model-server", "local", "--port", str(port), "--with-gateway", "--gateway-port", str(gw_port))
    launch.wait_line(lambda ln: "llama-server" in ln and " up" in ln, READY_WITHIN_S)  # the model is up
    assert_stopped(launch, signal.SIGTERM, [port, gw_port])


FAKE_VLLM = """
import subprocess, sys, time
from codeassist.serverkit.standin import StandinServer

port = int(sys.argv[sys.argv.index("--port") + 1])
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # vLLM's engine-core process
StandinServer(port=port).start()  # answers /health
while True:
    time.sleep(3600)
"""


def test_vllm_path_stops_replicas_their_children_and_the_gateway(launcher, tmp_path):
    api = tmp_path / "fake" / "vllm" / "entrypoints" / "openai"
    api.mkdir(parents=True)
    for d in (api, api.parent, api.parent.parent):
        (d / "__init__.py").write_text("")
    (api / "api_server.py").write_text(FAKE_VLLM)
    env = {
        "PYTHONPATH": str(tmp_path / "fake"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    port, gw_port = free_port(), free_port()
    launch = launcher(
        "--gpus", "NVIDIA H100 80GB HBM3:81559", "--port", str(port), "--gateway-port", str(gw_port), extra_env=env
    )
    launch.wait_line(is_ready, READY_WITHIN_S)
    assert not port_free(port) and not port_free(gw_port)
    launch.seen.update(descendants(launch.proc.pid))
    assert len(launch.seen) >= 3  # the replica, its "engine core", the gateway
    assert_stopped(launch, signal.SIGTERM, [port, gw_port])
