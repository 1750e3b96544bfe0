"""`codeassist demo` stops on SIGTERM/SIGINT as `server-kit launch` does: the model server it started and its
private daemon end, the port is free, and the last line is "stopped" — wherever the signal lands (while the
model loads, or once it is up and the daemon starts)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from proctree import READY_WITHIN_S, Watched, assert_stopped, descendants, free_port, port_free


class Demo(Watched):
    def __init__(self, port: int, env: dict[str, str]) -> None:
        super().__init__([sys.executable, "-m", "codeassist.client.cli", "demo", "--port", str(port)], env, "demo")


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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_demo_stops_once_the_model_is_up(demo, sig):
    port = free_port()
    d = demo(port)
    d.wait_line(lambda ln: ln.strip().startswith("ready in"), READY_WITHIN_S)  # the model server serves
    assert not port_free(port)
    assert_stopped(d, sig, [port], exit_code=128 + sig, settle_s=5)


def test_demo_stops_while_the_model_loads(demo):
    port = free_port()
    d = demo(port)
    d.wait_line(lambda ln: ln.startswith("starting the local model server"), READY_WITHIN_S)
    deadline = time.monotonic() + READY_WITHIN_S  # until llama-server is its child (it loads for seconds)
    while not any(c == "llama-server" for _, c in descendants(d.proc.pid).values()):
        assert time.monotonic() < deadline and d.proc.poll() is None, "\n".join(d.lines)
        time.sleep(0.05)
    assert_stopped(d, signal.SIGTERM, [port], exit_code=128 + signal.SIGTERM, settle_s=5)
    assert not any(ln.strip().startswith("ready in") for ln in d.lines), "it was up already: not this case"
