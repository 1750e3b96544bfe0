"""Another user on the same machine: planted runtime dirs, lock-file symlinks, sockets served by someone
else, and a listener waiting on the tunnel's local port. Each attack is made as a real second uid
(setpriv) where the test runs as root."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from codeassist.client import paths
from codeassist.client.tunnel import TunnelSpec, TunnelSupervisor

from tests.conftest import free_port

OTHER = 4242
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user (setpriv)")


def as_other(*cmd: str, **kw: Any) -> Any:
    return subprocess.Popen(["setpriv", f"--reuid={OTHER}", f"--regid={OTHER}", "--clear-groups", *cmd], **kw)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory like /tmp: every user may create entries in it."""
    d = Path(tempfile.mkdtemp(prefix="ca-shared-", dir="/tmp"))
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeassist.client.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


@needs_root
def test_runtime_dir_planted_by_another_user_is_refused(shared_tmp: Path, tmp_path: Path) -> None:
    planted = shared_tmp / "codeassist-0"
    as_other("mkdir", "-m", "0777", str(planted)).wait(10)
    victim = tmp_path / "bashrc"
    victim.write_text("# the user's own file\n")
    as_other("ln", "-s", str(victim), str(planted / "daemon.lock")).wait(10)
    env = {
        **os.environ,
        "CODEASSIST_RUNTIME_DIR": str(planted),
        "CODEASSIST_CONFIG_DIR": str(tmp_path / "c"),
        "CODEASSIST_STATE_DIR": str(tmp_path / "s"),
        "CODEASSIST_LOG_DIR": str(tmp_path / "l"),
    }
    (tmp_path / "x.py").write_text("x = 1\n")
    r = _cli(env, "complete", f"{tmp_path / 'x.py'}:1:1")
    assert r.returncode != 0
    assert f"belongs to uid {OTHER}" in r.stderr and "Traceback" not in r.stderr
    assert victim.read_text() == "# the user's own file\n"  # the planted lock symlink was not followed
    assert not (planted / "daemon.sock").exists()


def test_runtime_dir_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "run"
    link.symlink_to(real)
    with pytest.raises(paths.UnsafeRuntimeDir, match="not a directory"):
        paths.private_dir(link)
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o777)
    assert paths.private_dir(loose) == loose and (loose.stat().st_mode & 0o777) == 0o700  # ours: closed


def test_lock_files_are_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep")
    (tmp_path / "daemon.lock").symlink_to(target)
    with pytest.raises(OSError):
        paths.open_private(tmp_path / "daemon.lock")
    assert target.read_text() == "keep"


@needs_root
async def test_client_refuses_a_socket_served_by_another_user(shared_tmp: Path) -> None:
    from codeassist.client import daemon_client

    sock = shared_tmp / "daemon.sock"
    got = shared_tmp / "got"
    listener = as_other(
        sys.executable,
        "-c",
        f"""
import socket, os
s = socket.socket(socket.AF_UNIX); s.bind({str(sock)!r}); os.chmod({str(sock)!r}, 0o777); s.listen()
c, _ = s.accept(); c.settimeout(3)
try: data = c.recv(65536)
except OSError: data = b""
open({str(got)!r}, "wb").write(data)
""",
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        with pytest.raises(daemon_client.DaemonUnavailable, match=f"uid {OTHER}"):
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(sock))
            try:
                daemon_client.check_peer(s, str(sock))
            finally:
                s.close()
        listener.wait(10)
        assert got.read_bytes() == b""  # nothing was sent before the check
    finally:
        listener.kill()


async def test_tunnel_never_trusts_a_port_someone_else_listens_on() -> None:
    """Another user listens on the tunnel's local port first: the tunnel must not count as up (the daemon
    would send the bearer key and prompts to that listener)."""
    local = free_port()
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", local))
    squatter.listen()
    # An "ssh server" that accepts and never speaks: ssh keeps connecting (the window the old check used).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    states: list[str] = []
    sup = TunnelSupervisor(on_change=states.append)
    await sup.start(TunnelSpec("nobody@127.0.0.1", local_port=local, ssh_port=silent.getsockname()[1]))
    try:
        deadline = time.monotonic() + 15
        while "already in use" not in sup.status()["last_error"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert "already in use" in sup.status()["last_error"]
        assert "up" not in states
    finally:
        await sup.stop()
        squatter.close()
        silent.close()
