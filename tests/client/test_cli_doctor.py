"""`codeassist doctor`: its own test completions are marked so the daemon leaves them out of `codeassist stats`,
a check it could not make is shown as skipped, and the verdict line matches the worst check."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from codeassist.client.doctor_report import Check, Report, format_report
from codeassist.serverkit.standin import StandinBehaviour, StandinServer

from tests.realparts import write_sample


class DaemonRelay:
    """Listens where a client looks for its daemon and forwards every connection to a real daemon elsewhere,
    recording each request on the way (the wire between the CLI and the daemon, unchanged)."""

    def __init__(self, listen: Path, target: Path) -> None:
        self.listen, self.target = listen, target
        self.requests: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="daemon-relay")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        self.listen.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        self._server = await asyncio.start_unix_server(self._handle, path=str(self.listen), limit=1 << 26)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(str(self.target), limit=1 << 26)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, record: bool) -> None:
            while line := await src.readline():
                if record:
                    self.requests.append(json.loads(line))
                dst.write(line)
                await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False), return_exceptions=True)

    def start(self) -> DaemonRelay:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def quick_server() -> Iterator[StandinServer]:
    server = StandinServer(behaviour=StandinBehaviour(tokens=["a + b", "\n"])).start()
    yield server
    server.stop()


def _shown(env: Any) -> int:
    return int(json.loads(env.run("stats", "--json").stdout)["counts"]["shown"])


def test_doctor_marks_its_completions_as_not_for_stats(
    daemon_env_factory: Any, quick_server: StandinServer, tmp_path: Path
) -> None:
    real = daemon_env_factory(quick_server.base_url)
    _, loc = write_sample(tmp_path)
    assert real.run("complete", loc).returncode == 0  # starts the real daemon
    doctor_env = daemon_env_factory(quick_server.base_url)
    relay = DaemonRelay(doctor_env.socket, real.socket).start()
    try:
        r = doctor_env.run("doctor", "-n", "3")
    finally:
        relay.stop()
    assert "latency over 3 requests (daemon" in r.stdout, r.stdout
    completes = [m for m in relay.requests if m.get("method") == "complete"]
    assert len(completes) == 3
    assert all(m["params"].get("stats") is False for m in completes), completes
    assert all(m["params"].get("priority", "interactive") == "interactive" for m in completes)  # timed as typing is


def test_doctor_completions_do_not_count_in_stats(
    daemon_env_factory: Any, quick_server: StandinServer, tmp_path: Path
) -> None:
    env = daemon_env_factory(quick_server.base_url)
    _, loc = write_sample(tmp_path)
    assert env.run("complete", loc).returncode == 0
    before = _shown(env)
    for _ in range(2):
        assert "latency over 3" in env.run("doctor", "-n", "3").stdout
    assert _shown(env) == before == 1


def test_doctor_verdict_follows_the_worst_check_and_skips_are_not_ok(daemon_env_factory: Any) -> None:
    # Slower than the TTFT targets (p99 < 200 ms), and no Date header: the clock cannot be checked.
    server = StandinServer(behaviour=StandinBehaviour(ttft_s=0.25, tokens=["a + b", "\n"])).start()
    try:
        env = daemon_env_factory(server.base_url)
        r = env.run("doctor", "-n", "2")
        report = json.loads(env.run("doctor", "-n", "1", "--json").stdout)
    finally:
        server.stop()
    lines = r.stdout.splitlines()
    latency = next(ln for ln in lines if "] latency" in ln)
    assert latency.startswith("[warn]") and "above target" in latency
    clock = next(ln for ln in lines if "] clock" in ln)
    assert clock.startswith("[skip]") and "not checked" in clock
    assert "all checks passed" not in r.stdout
    assert lines[-1].startswith("works, with warnings"), lines[-1]
    assert r.returncode == 0  # warnings are not failures
    assert report["verdict"] == "warnings" and report["ok"] is True
    assert next(c for c in report["checks"] if c["name"] == "clock")["skipped"] is True


@pytest.mark.parametrize(
    ("checks", "verdict"),
    [
        ([Check("a", True, "fine"), Check("b", True, "not checked", skipped=True)], "all checks passed"),
        ([Check("a", True, "slow", warn=True), Check("b", False, "down")], "something is broken: see FAIL above"),
        ([Check("a", True, "fine"), Check("b", True, "slow", warn=True)], "works, with warnings: see warn above"),
    ],
)
def test_verdict_line(checks: list[Check], verdict: str) -> None:
    assert format_report(Report(checks=checks)).splitlines()[-1] == verdict


def test_token_warning_goes_away_when_the_server_needs_no_key(
    daemon_env_factory: Any, quick_server: StandinServer
) -> None:
    env = daemon_env_factory(quick_server.base_url)
    report = json.loads(env.run("doctor", "-n", "0", "--json").stdout)
    token = next(c for c in report["checks"] if c["name"] == "token")
    assert token["ok"] and not token["warn"] and "needs none" in token["detail"]


def test_doctor_says_when_https_reaches_a_plain_http_server(
    daemon_env_factory: Any, quick_server: StandinServer
) -> None:
    env = daemon_env_factory(f"https://127.0.0.1:{quick_server.port}/v1")
    report = json.loads(env.run("doctor", "-n", "0", "--json").stdout)
    tls = next(c for c in report["checks"] if c["name"] == "tls")
    assert not tls["ok"] and "WRONG_VERSION_NUMBER" not in tls["detail"]
    assert tls["detail"].startswith(f"this server speaks plain HTTP; use {quick_server.base_url}")
    assert report["verdict"] == "failed"
