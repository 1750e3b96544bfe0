"""A real sshd on a loopback port: the daemon's tunnel carries completions, reconnects after a kill, stops."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from codeassist.client.tunnel import TunnelSpec, ssh_command

from tests.conftest import free_port
from tests.realparts import Sshd, daemon_request, patient, write_sample


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_status(env: Any, pred: Any, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    st: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = env.run("tunnel", "--status", "--json")
        st = json.loads(r.stdout)
        if pred(st):
            return st
        time.sleep(0.2)
    raise AssertionError(f"tunnel never reached the expected state: {st}")


def test_ssh_command_has_the_safety_options() -> None:
    cmd = ssh_command(TunnelSpec("dev@gpu", remote_port=8000, local_port=18001, ssh_port=2222, identity="/k"))
    joined = " ".join(cmd)
    for opt in ("ExitOnForwardFailure=yes", "ServerAliveInterval=", "BatchMode=yes"):
        assert opt in joined
    assert "-N" in cmd and "127.0.0.1:18001:127.0.0.1:8000" in cmd and cmd[-2:] == ["--", "dev@gpu"]
    with pytest.raises(ValueError):
        ssh_command(TunnelSpec("-oProxyCommand=evil"))


async def test_tunnel_carries_completions_reconnects_and_stops_with_the_daemon(
    daemon_env_factory, local_model_url, sshd: Sshd
) -> None:
    model_port = int(local_model_url.rsplit(":", 1)[1].split("/")[0])
    local_port = free_port()
    # The direct endpoint is dead: only the tunnel can carry completions.
    env = patient(daemon_env_factory(f"http://127.0.0.1:{free_port()}/v1"))
    env.env.update(
        {
            "CODEASSIST_FALLBACK": "default,tunnel",
            "CODEASSIST_PROBE_INTERVAL": "0.3",
            "CODEASSIST_TUNNEL_LOCAL_PORT": str(local_port),
        }
    )

    def open_tunnel(*flags: str) -> Any:
        ports = ("--remote-port", str(model_port), "--local-port", str(local_port))
        return env.run("tunnel", sshd.target, *ports, *sshd.tunnel_args(), *flags, "--json")

    r = open_tunnel()
    assert r.returncode == 0, r.stdout + r.stderr + (sshd.dir / "sshd.log").read_text()
    st = json.loads(r.stdout)
    assert st["state"] == "up" and st["pid"]
    first_pid = st["pid"]

    path, loc = write_sample(env.root)
    out = env.run("complete", loc, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["text"].strip()
    # Selection runs in the background too (probes every 0.3 s): allow it a moment on a loaded box.
    deadline = time.monotonic() + 10
    while True:
        conn = await daemon_request(env.socket, "connectivity/status")
        if (conn["endpoint"] == "tunnel" and conn["tunnel"]["state"] == "up") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert conn["endpoint"] == "tunnel" and conn["tunnel"]["state"] == "up", conn

    # The connection drops (ssh killed): the daemon notices and reconnects with backoff by itself.
    os.kill(first_pid, signal.SIGKILL)
    st = _wait_status(env, lambda s: s["state"] == "up" and s["pid"] not in (None, first_pid))
    assert st["restarts"] >= 1
    path.write_text("def mul(a, b):\n    return ")
    out = env.run("complete", f"{path}:2:12", "--json")
    assert json.loads(out.stdout)["text"].strip(), out.stdout

    # --stop ends ssh; a new tunnel then stops with the daemon.
    r = env.run("tunnel", "--stop", "--json")
    assert json.loads(r.stdout)["state"] == "stopped"
    time.sleep(0.2)
    assert not _alive(st["pid"])
    r = open_tunnel("--save")
    pid = json.loads(r.stdout)["pid"]
    assert _alive(pid)
    daemon_pid = env.daemon_pid()
    assert env.run("stop").returncode == 0
    deadline = time.monotonic() + 10
    while (_alive(pid) or _alive(daemon_pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "ssh outlived the daemon"

    # Saved with --save: the next daemon brings the tunnel up by itself.
    saved = json.loads(env.run("config", "--json").stdout)["values"]
    assert saved["tunnel_host"]["value"] == sshd.target and "tunnel" in saved["fallback"]["value"]
    env.run("complete", f"{path}:2:12", "--json")  # starts the daemon (the tunnel may not be up yet)
    st = _wait_status(env, lambda s: s["state"] == "up")
    assert st["pid"] != pid
    deadline = time.monotonic() + 30
    result: dict[str, Any] = {"text": ""}
    while not result["text"].strip() and time.monotonic() < deadline:
        path.write_text(f"def sub_{int(time.monotonic() * 1000)}(a, b):\n    return ")
        result = json.loads(env.run("complete", f"{path}:2:12", "--json").stdout)
    assert result["text"].strip(), result


def test_tunnel_failure_is_reported_with_ssh_s_reason(daemon_env_factory, sshd: Sshd) -> None:
    env = daemon_env_factory(f"http://127.0.0.1:{free_port()}/v1")
    # A key sshd does not accept: BatchMode makes ssh fail at once instead of prompting.
    wrong = sshd.dir / "other_key"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {wrong}")
    args = [a if a != str(sshd.key) else str(wrong) for a in sshd.tunnel_args()]
    r = env.run("tunnel", sshd.target, "--local-port", str(free_port()), *args, "--wait", "3", "--json")
    assert r.returncode == 1
    st = _wait_status(env, lambda s: s["last_error"] != "")
    assert st["state"] in ("backoff", "connecting") and "Permission denied" in st["last_error"], st
    doctor = json.loads(env.run("doctor", "--json", "-n", "0").stdout)
    tunnel = next(c for c in doctor["checks"] if c["name"] == "tunnel")
    assert not tunnel["ok"] and "Permission denied" in tunnel["detail"] and "ssh-add" in tunnel["fix"]
    assert env.run("tunnel", "--stop").returncode == 0
