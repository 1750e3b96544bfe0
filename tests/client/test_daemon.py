"""The per-user daemon: private socket, one instance under races, stale socket recovery, idle exit."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import free_port

ENSURE = "from codeassist.client.daemon_client import ensure_daemon; print(ensure_daemon())"


def _ensure(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", ENSURE], env=env, capture_output=True, text=True, timeout=60)


def test_concurrent_starts_make_one_daemon_with_a_private_socket(daemon_env_factory) -> None:
    env = daemon_env_factory(f"http://127.0.0.1:{free_port()}/v1")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _ensure(env.env), range(4)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert len({r.stdout.strip() for r in results}) == 1
    mode = stat.S_IMODE(os.stat(env.socket).st_mode)
    assert mode == 0o600
    pid = env.daemon_pid()
    assert pid

    def mine() -> list[str]:
        out = subprocess.run(["pgrep", "-f", "codeassist.client.daemon"], capture_output=True, text=True).stdout
        found = []
        for p in out.split():
            try:
                if str(env.root).encode() in Path(f"/proc/{p}/environ").read_bytes():
                    found.append(p)
            except OSError:  # it exited meanwhile
                pass
        return found

    # A starter that lost the race exits once it sees the winner's socket: on a loaded box that takes a moment.
    deadline = time.monotonic() + 10
    while mine() != [str(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mine() == [str(pid)]


def test_stale_socket_is_recovered(daemon_env_factory) -> None:
    env = daemon_env_factory(f"http://127.0.0.1:{free_port()}/v1")
    env.socket.parent.mkdir(parents=True, exist_ok=True)
    # A socket file nobody listens on, as a crashed daemon leaves behind.
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(env.socket))
    s.close()
    r = env.run("status", "--json")
    assert json.loads(r.stdout) == {"running": False}
    assert _ensure(env.env).returncode == 0
    status = json.loads(env.run("status", "--json").stdout)
    assert status["running"] and status["pid"] == env.daemon_pid()


def test_stop_and_idle_exit(daemon_env_factory) -> None:
    env = daemon_env_factory(f"http://127.0.0.1:{free_port()}/v1")
    assert _ensure(env.env).returncode == 0
    assert env.run("stop").returncode == 0
    for _ in range(100):
        if not env.socket.exists():
            break
        time.sleep(0.05)
    assert not env.socket.exists()

    env.env["CODEASSIST_IDLE_TIMEOUT"] = "0.5"
    assert _ensure(env.env).returncode == 0
    pid = env.daemon_pid()
    assert pid
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("daemon did not exit after its idle timeout")
    log = (env.root / "log" / "daemon.log").read_text()
    assert "idle" in log


def test_complete_cli_through_the_daemon(daemon_env, tmp_path) -> None:
    src = tmp_path / "m.py"
    src.write_text("def add(a, b):\n    return \n", encoding="utf-8")
    r = daemon_env.run("complete", f"{src}:2:12", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["text"].strip() and result["source"] == "model"
    assert result["timings"]["total_ms"] >= result["timings"]["model_ms"] > 0
    bad = daemon_env.run("complete", f"{src}:2:99")
    assert bad.returncode != 0 and "past the end of line" in bad.stderr
