"""Keys go only to the user's own server, never over plain http to another host, never into a child's
environment; a tunnel never runs a program named in an option; `login` and `tunnel --save` never take a
project's values."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from codeassist.client import auth
from codeassist.client.config import PROJECT_FILE, Config
from codeassist.client.endpoints import FallbackTransport
from codeassist.client.transport.base import CompletionParams
from codeassist.client.tunnel import TunnelSpec, TunnelSupervisor, check_ssh_option, ssh_command
from codeassist.serverkit.standin import StandinServer

from tests.realparts import AuthProxy

KEY = "sk-test-0123456789abcdef"


@pytest.mark.parametrize(
    "option",
    [
        "ProxyCommand=sh -c 'id > /tmp/x'",
        "proxycommand nc %h %p",
        "LocalCommand=id",
        "PermitLocalCommand=yes",
        "KnownHostsCommand=/bin/id",
        "Include=/tmp/evil_ssh_config",
        "Match=exec id",
        "PKCS11Provider=/tmp/evil.so",
        "SecurityKeyProvider=/tmp/evil.so",
        "ControlPath=/tmp/x",
        "ProxyJump=-oProxyCommand=id",
        "RemoteCommand=id",
    ],
)
def test_ssh_options_that_run_programs_are_refused(option: str) -> None:
    with pytest.raises(ValueError):
        check_ssh_option(option)
    with pytest.raises(ValueError):
        ssh_command(TunnelSpec("dev@gpu", options=(option,)))


def test_ordinary_ssh_options_pass() -> None:
    cmd = ssh_command(
        TunnelSpec(
            "dev@gpu", options=("StrictHostKeyChecking=yes", "UserKnownHostsFile /k", "ProxyJump=jump@bastion:22")
        )
    )
    assert "UserKnownHostsFile=/k" in cmd and "ProxyJump=jump@bastion:22" in cmd


def test_environment_key_belongs_to_the_configured_server_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEASSIST_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("CODEASSIST_KEYRING", "file")
    monkeypatch.setenv("CODEASSIST_SERVER_URL", "https://gpu.team.example/v1")
    monkeypatch.setenv(auth.ENV_KEY, KEY)
    assert auth.get_token("https://gpu.team.example/v1").token == KEY
    assert auth.get_token("https://collector.evil.example/v1") is None
    assert auth.get_token("http://127.0.0.1:9999/v1") is None


async def test_ssh_gets_no_key_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(auth.ENV_KEY, KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    sup = TunnelSupervisor()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    local = s.getsockname()[1]
    s.close()
    await sup.start(TunnelSpec("nobody@127.0.0.1", local_port=local, ssh_port=silent.getsockname()[1]))
    try:
        deadline = time.monotonic() + 10
        while not sup.status()["pid"] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        environ = Path(f"/proc/{sup.status()['pid']}/environ").read_bytes()
        assert b"PATH=" in environ and KEY.encode() not in environ
    finally:
        await sup.stop()
        silent.close()


def _outward_ip() -> str | None:
    """An address of this machine that is not loopback (the route a packet to elsewhere would take)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.254.254.254", 1))
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip


@pytest.mark.parametrize("opt_in", [False, True])
async def test_no_key_over_plain_http_to_another_host(opt_in: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    ip = _outward_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback address")
    server = StandinServer(host="0.0.0.0").start()
    try:
        url = f"http://{ip}:{server.port}/v1"
        monkeypatch.setenv("CODEASSIST_SERVER_URL", url)
        monkeypatch.setenv(auth.ENV_KEY, KEY)
        transport = FallbackTransport(Config(server_url=url, allow_insecure_http=opt_in))
        try:
            params = CompletionParams(prompt="x = ", model="standin-model", max_tokens=4)
            out = [c.text async for c in transport.stream(params)]
        finally:
            await transport.aclose()
        assert "".join(out)
        sent = server.stats.headers[-1].get("authorization")
        assert sent == (f"Bearer {KEY}" if opt_in else None)
    finally:
        server.stop()


def _cli(env: dict[str, str], *args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeassist.client.cli", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_login_without_url_never_sends_the_key_to_a_project_server(user_env: Any, tmp_path: Path) -> None:
    upstream = StandinServer().start()
    good = AuthProxy(upstream.base_url, token=KEY).start()
    evil = AuthProxy(upstream.base_url).start()
    try:
        env = user_env(good.url)
        repo = tmp_path / "cloned"
        (repo / ".git").mkdir(parents=True)
        (repo / PROJECT_FILE).write_text(f'server_url = "{evil.url}"\n')
        r = _cli(env.env, "login", "--key-stdin", cwd=repo, stdin=KEY + "\n")
        assert r.returncode == 0, r.stderr
        # (a key-less probe first: a server that needs no key never gets one)
        assert [a for a in good.seen_auth if a] == [f"Bearer {KEY}"] and evil.seen_auth == []
    finally:
        good.stop()
        evil.stop()
        upstream.stop()


def test_tunnel_save_never_copies_project_options(daemon_env_factory: Any, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    env = daemon_env_factory("http://127.0.0.1:9/v1")
    repo = tmp_path / "cloned"
    (repo / ".git").mkdir(parents=True)
    (repo / PROJECT_FILE).write_text(f'tunnel_ssh_options = ["ProxyCommand=touch {marker}"]\ntunnel_ssh_port = 2\n')
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        r = _cli(
            env.env,
            "tunnel",
            "nobody@127.0.0.1",
            "--ssh-port",
            str(silent.getsockname()[1]),
            "--save",
            "--wait",
            "0",
            "--json",
            cwd=repo,
        )
        saved = (Path(env.env["CODEASSIST_CONFIG_DIR"]) / "config.toml").read_text()
        assert "ProxyCommand" not in saved and "tunnel_ssh_options = []" in saved, saved
        st = json.loads(r.stdout)
        assert st["spec"]["options"] == [] and st["spec"]["ssh_port"] == silent.getsockname()[1]
        assert not marker.exists()
        r = _cli(env.env, "tunnel", "nobody@127.0.0.1", "-o", f"ProxyCommand=touch {marker}", "--wait", "0", cwd=repo)
        assert r.returncode == 2 and "ProxyCommand" in r.stderr and "Traceback" not in r.stderr
        assert not marker.exists()
    finally:
        silent.close()
        _cli(env.env, "tunnel", "--stop", cwd=repo)
