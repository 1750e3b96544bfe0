"""The SSH tunnel to the GPU host: a supervised ``ssh -N -L`` run by the daemon.

The system OpenSSH client does the work (agent, ``~/.ssh/config``, known hosts all apply). The
supervisor starts it, waits for the local port to accept connections, restarts it with exponential
backoff when it exits, reports its state, and kills it when the daemon stops (also when the daemon
dies: the child gets SIGTERM through PR_SET_PDEATHSIG on Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from codeassist.client.tasks import cancel_and_wait

__all__ = ["SSH_OPTION_ALLOWLIST", "TunnelSpec", "TunnelSupervisor", "check_ssh_option", "ssh_command"]

log = logging.getLogger(__name__)

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
# A tunnel that stayed up this long counts as healthy: the next drop restarts the backoff.
STABLE_AFTER = 10.0

# `-o` options a tunnel may carry, from any source. An allow-list, because ssh has many ways to run a
# program (ProxyCommand, LocalCommand, KnownHostsCommand, Match exec, Include of another file, ...).
SSH_OPTION_ALLOWLIST = frozenset(
    o.lower()
    for o in (
        "AddressFamily",
        "BindAddress",
        "CASignatureAlgorithms",
        "CertificateFile",
        "CheckHostIP",
        "Ciphers",
        "Compression",
        "ConnectionAttempts",
        "ConnectTimeout",
        "FingerprintHash",
        "GSSAPIAuthentication",
        "HashKnownHosts",
        "HostKeyAlgorithms",
        "HostKeyAlias",
        "HostbasedAuthentication",
        "Hostname",
        "IdentitiesOnly",
        "IdentityFile",
        "IPQoS",
        "KbdInteractiveAuthentication",
        "KexAlgorithms",
        "LogLevel",
        "MACs",
        "NumberOfPasswordPrompts",
        "PasswordAuthentication",
        "Port",
        "PreferredAuthentications",
        "ProxyJump",
        "PubkeyAcceptedAlgorithms",
        "PubkeyAuthentication",
        "RekeyLimit",
        "ServerAliveCountMax",
        "ServerAliveInterval",
        "StrictHostKeyChecking",
        "TCPKeepAlive",
        "UpdateHostKeys",
        "User",
        "UserKnownHostsFile",
        "VerifyHostKeyDNS",
    )
)
# Environment variables that hold secrets: ssh (and whatever ~/.ssh/config makes it run) never sees them.
SECRET_ENV_MARKERS = ("API_KEY", "TOKEN", "SECRET", "PASSWORD")


def check_ssh_option(option: str) -> str:
    """Return ``Key=Value`` for an allowed option, else raise ValueError saying why."""
    key, sep, value = option.strip().replace(" ", "=", 1).partition("=")
    if not sep or not key or not value.strip():
        raise ValueError(f"ssh option {option!r} is not Key=Value")
    if key.lower() not in SSH_OPTION_ALLOWLIST:
        raise ValueError(
            f"ssh option {key!r} is not allowed in a tunnel (it may run programs or is not "
            "needed); put it in ~/.ssh/config for that host if you really need it"
        )
    if key.lower() == "proxyjump" and (value.strip().startswith("-") or any(c.isspace() for c in value.strip())):
        raise ValueError(f"ssh option ProxyJump={value!r} is not a host list")
    if any(c in value for c in "\n\r\0"):
        raise ValueError(f"ssh option {key!r} has a control character")
    return f"{key}={value.strip()}"


def child_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not any(m in k.upper() for m in SECRET_ENV_MARKERS)}


@dataclass(frozen=True)
class TunnelSpec:
    target: str  # user@host (or a Host alias from ~/.ssh/config)
    remote_port: int = 8000
    local_port: int = 18000
    remote_host: str = "127.0.0.1"
    ssh_port: int = 0
    identity: str = ""
    options: tuple[str, ...] = ()  # extra "Key=Value" for -o

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TunnelSpec:
        return cls(
            target=str(d["target"]),
            remote_port=int(d.get("remote_port") or 8000),
            local_port=int(d.get("local_port") or 18000),
            remote_host=str(d.get("remote_host") or "127.0.0.1"),
            ssh_port=int(d.get("ssh_port") or 0),
            identity=str(d.get("identity") or ""),
            options=tuple(str(o) for o in d.get("options") or ()),
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = list(self.options)
        return d


def ssh_command(spec: TunnelSpec, ssh: str | None = None) -> list[str]:
    if not spec.target or spec.target.startswith("-") or any(c.isspace() or c == "\0" for c in spec.target):
        raise ValueError(f"bad ssh target {spec.target!r}")
    if spec.identity.startswith("-"):
        raise ValueError(f"bad identity file {spec.identity!r}")
    options = [check_ssh_option(o) for o in spec.options]
    cmd = [
        ssh or shutil.which("ssh") or "ssh",
        "-N",
        "-L",
        f"127.0.0.1:{spec.local_port}:{spec.remote_host}:{spec.remote_port}",
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        "ServerAliveInterval=10",
        "-o",
        "ServerAliveCountMax=3",
        "-o",
        "ConnectTimeout=10",
        # The daemon has no terminal: never wait on a password or host-key prompt.
        "-o",
        "BatchMode=yes",
    ]
    if spec.ssh_port:
        cmd += ["-p", str(spec.ssh_port)]
    if spec.identity:
        cmd += ["-i", spec.identity, "-o", "IdentitiesOnly=yes"]
    for opt in options:
        cmd += ["-o", opt]
    cmd += ["--", spec.target]
    return cmd


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _port_free(port: int) -> bool:
    """Nobody listens on 127.0.0.1:port (SO_REUSEADDR: a closing connection does not count)."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _listener_owned_by(pid: int, port: int) -> bool | None:
    """Does process ``pid`` hold the socket listening on 127.0.0.1:port? None where /proc cannot tell."""
    import os

    inodes: set[str] = set()
    try:
        with open("/proc/net/tcp", encoding="ascii") as fh:
            for line in fh.readlines()[1:]:
                cols = line.split()
                if cols[1] == f"0100007F:{port:04X}" and cols[3] == "0A":  # LISTEN
                    inodes.add(cols[9])
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    return False


async def _port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


@dataclass
class _State:
    state: str = "stopped"  # stopped | connecting | up | backoff
    pid: int | None = None
    since: float = field(default_factory=time.time)
    restarts: int = 0
    last_error: str = ""


class TunnelSupervisor:
    def __init__(self, on_change: Any = None) -> None:
        self.spec: TunnelSpec | None = None
        self._st = _State()
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: deque[str] = deque(maxlen=5)
        self._on_change = on_change
        self.up = asyncio.Event()

    @property
    def state(self) -> str:
        return self._st.state

    @property
    def local_url(self) -> str | None:
        return f"http://127.0.0.1:{self.spec.local_port}/v1" if self.spec else None

    def _set(self, state: str, error: str | None = None) -> None:
        if error is not None:
            self._st.last_error = error
        if state == self._st.state:
            return
        self._st.state = state
        self._st.since = time.time()
        if state == "up":
            self.up.set()
        else:
            self.up.clear()
        log.info(
            "tunnel %s: %s%s",
            self.spec.target if self.spec else "-",
            state,
            f" ({self._st.last_error})" if state != "up" and self._st.last_error else "",
        )
        if self._on_change is not None:
            with contextlib.suppress(Exception):
                self._on_change(state)

    def status(self) -> dict[str, Any]:
        return {
            "state": self._st.state,
            "spec": self.spec.as_dict() if self.spec else None,
            "local_url": self.local_url,
            "pid": self._st.pid,
            "since": round(self._st.since, 3),
            "restarts": self._st.restarts,
            "last_error": self._st.last_error,
        }

    async def start(self, spec: TunnelSpec) -> None:
        ssh_command(spec)  # validate before stopping a working tunnel
        await self.stop()
        self.spec = spec
        self._st = _State(state="connecting")
        self._task = asyncio.create_task(self._supervise(spec), name="tunnel")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._kill()
        self._st.pid = None
        self._set("stopped")

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 3.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            text = line.decode("utf-8", "replace").strip()
            if text:
                self._stderr.append(text)

    async def _supervise(self, spec: TunnelSpec) -> None:
        backoff = BACKOFF_START
        cmd = ssh_command(spec)
        while True:
            self._stderr.clear()
            self._set("connecting")
            started = time.monotonic()
            if not _port_free(spec.local_port):
                # Whoever listens there would get the API key and the prompts: never forward through it.
                self._set(
                    "backoff",
                    f"127.0.0.1:{spec.local_port} is already in use by another program; "
                    "choose another local port (codeassist tunnel --local-port N)",
                )
                self._st.restarts += 1
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)
                continue
            try:
                proc = self._proc = await asyncio.create_subprocess_exec(
                    *cmd,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                    preexec_fn=_die_with_parent,
                    env=child_env(),
                )
            except OSError as exc:
                proc = None
                self._set("backoff", f"cannot run ssh: {exc}")
            if proc is not None:
                self._st.pid = proc.pid
                reader = asyncio.create_task(self._read_stderr(proc))
                waiter = asyncio.create_task(proc.wait())
                try:
                    # Up once the forward accepts connections (ExitOnForwardFailure kills ssh otherwise).
                    while not waiter.done():
                        if await _port_open(spec.local_port):
                            # The port may be someone else's (bound in the moment before ssh): only
                            # trust a listener our own ssh holds.
                            if _listener_owned_by(proc.pid, spec.local_port) is False:
                                self._stderr.append(f"another program answers on 127.0.0.1:{spec.local_port}")
                                with contextlib.suppress(ProcessLookupError):
                                    proc.terminate()
                            elif not waiter.done():
                                self._set("up", "")
                            break
                        await asyncio.wait({waiter}, timeout=0.1)
                    await waiter
                finally:
                    waiter.cancel()
                    with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                        await asyncio.wait_for(reader, 1.0)
                self._st.pid = None
                detail = "; ".join(self._stderr) or "no message"
                self._set("backoff", f"ssh exited with status {proc.returncode}: {detail}")
            self._st.restarts += 1
            if time.monotonic() - started >= STABLE_AFTER:
                backoff = BACKOFF_START
            log.info("tunnel: reconnecting in %.1fs", backoff)
            await asyncio.sleep(backoff)
            backoff = min(BACKOFF_MAX, backoff * 2)
