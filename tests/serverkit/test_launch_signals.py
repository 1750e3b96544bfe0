"""`server-kit launch` stops on SIGTERM/SIGINT, before and after "ready": every child ends, the ports are free
and it says "stopped" — with the real llama-server (and the gateway with --with-gateway), and on the vLLM path
with a stand-in for vLLM (no GPU here) that forks an "engine core" as vLLM does."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from proctree import READY_WITHIN_S, Watched, assert_stopped, descendants, free_port, port_free


class Launch(Watched):
    """`server-kit launch` as a subprocess, its output read line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        super().__init__([sys.executable, "-m", "codeassist.serverkit.cli", "launch", *args], env, "launch")

    def child_pid(self, name: str) -> int:
        """The pid of the child launch announced as "NAME (pid N) starting on …", checked to be running."""
        line = next(ln for ln in self.lines if ln.startswith(f"{name} (pid "))
        pid = int(line.split("(pid ", 1)[1].split(")", 1)[0])
        self.seen.update(descendants(self.proc.pid))
        assert pid in self.seen, f"{name} (pid {pid}) is not a running child of launch"
        return pid


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
