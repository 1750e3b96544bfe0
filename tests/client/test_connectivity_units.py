"""Fast checks: keyring vs file storage, clock skew verdicts, FallbackTransport against the stand-in server."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import keyring
import pytest
from codeassist.client import auth, doctor
from codeassist.client.config import Config
from codeassist.client.endpoints import FallbackTransport, resolve_endpoints
from codeassist.client.latency import percentile
from codeassist.client.transport.base import CompletionParams, TransportError
from keyring.backend import KeyringBackend

from tests.conftest import free_port


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.data.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.data[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.data[(service, username)]


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODEASSIST_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv(auth.ENV_KEY, raising=False)
    return tmp_path / "cfg"


def test_a_real_keyring_backend_is_used_silently_and_no_file_is_written(config_dir: Path) -> None:
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    try:
        where, warning = auth.store_token("https://GPU.example.com/v1/", "sk-secret-1234567890")
        assert warning is None and "MemoryKeyring" in where
        assert ring.data == {("codeassist", "https://gpu.example.com:443"): "sk-secret-1234567890"}
        assert not auth.credentials_file().exists()
        got = auth.get_token("https://gpu.example.com:443/v1")
        assert got is not None and got.token == "sk-secret-1234567890" and "keyring" in got.source
        assert "sk-secret" not in repr(got)
        assert auth.delete_token("https://gpu.example.com/v1") == [where]
        assert auth.get_token("https://gpu.example.com/v1") is None
    finally:
        keyring.set_keyring(previous)


def test_without_a_backend_the_file_fallback_is_announced_and_private(config_dir: Path) -> None:
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # what a headless box has (defining MemoryKeyring registered a backend)
    try:
        _file_fallback()
    finally:
        keyring.set_keyring(previous)


def _file_fallback() -> None:
    where, warning = auth.store_token("http://10.0.0.5:8000/v1", "sk-file-1234567890")
    path = auth.credentials_file()
    assert warning is not None and str(path) in warning and "0600" in warning and str(path) in where
    assert path.stat().st_mode & 0o777 == 0o600
    assert auth.get_token("http://10.0.0.5:8000/other").token == "sk-file-1234567890"  # type: ignore[union-attr]
    assert auth.get_token("http://10.0.0.6:8000/v1") is None


@pytest.mark.parametrize(("offset_s", "ok", "warn"), [(0, True, False), (-120, True, True), (900, False, False)])
def test_clock_skew_verdicts(offset_s: float, ok: bool, warn: bool) -> None:
    date = email.utils.formatdate(time.time() - offset_s, usegmt=True)
    report = doctor.Report()
    doctor.check_clock(report, auth.ModelsProbe(200, ["m"], True, date, 1.0))
    check = report.checks[0]
    assert (check.ok, check.warn) == (ok, warn)
    shown = int(check.detail.rsplit("by ", 1)[1].rstrip("s"))  # the Date header has 1 s resolution
    assert abs(shown - abs(offset_s)) <= 1, check.detail
    assert ("behind" in check.detail) == (offset_s < -1) or offset_s == 0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.0 and percentile(values, 99) == 10.0


def test_resolve_endpoints_order_and_names() -> None:
    cfg = Config(
        server_url="https://gw/v1",
        fallback=["default", "office", "tunnel", "http://x:1/v1"],
        endpoints={"office": "https://office/v1"},
        tunnel_local_port=18005,
    )
    eps = resolve_endpoints(cfg)
    assert [(e.name, e.url) for e in eps] == [
        ("default", "https://gw/v1"),
        ("office", "https://office/v1"),
        ("tunnel", "http://127.0.0.1:18005/v1"),
        ("http://x:1/v1", "http://x:1/v1"),
    ]
    # A running tunnel is tried last when the order does not name it.
    assert [e.name for e in resolve_endpoints(Config(), tunnel_url="http://127.0.0.1:18009/v1")] == [
        "default",
        "tunnel",
    ]


async def test_fallback_transport_fails_fast_when_down_and_skips_a_refusing_endpoint(standin, config_dir) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    events: list[tuple[str, dict[str, object]]] = []
    cfg = Config(
        server_url=dead, fallback=["default", "standin"], endpoints={"standin": standin.base_url}, probe_interval=60.0
    )
    t = FallbackTransport(cfg, notify=lambda e, p: events.append((e, p)))
    params = CompletionParams(prompt="x", model="standin-model")
    try:
        assert "".join([c.text async for c in t.stream(params)]) == "hello world\n"
        assert t.current is not None and t.current.name == "standin"
        assert events[-1][0] == "up"

        standin.behaviour.fault = "401"  # the key is refused mid-way: unusable, fall over, none left
        with pytest.raises(TransportError):
            [c async for c in t.stream(params)]
        assert [e for e, _ in events].count("down") == 1 and t.down
        t0, sent = time.perf_counter(), len(standin.stats.requests)
        for _ in range(20):  # while down and before the next re-probe: no network at all
            with pytest.raises(TransportError):
                [c async for c in t.stream(params)]
        assert time.perf_counter() - t0 < 1.0 and len(standin.stats.requests) == sent
        assert [e for e, _ in events].count("down") == 1
        n_requests = len(standin.stats.requests)
        standin.behaviour.fault = None
        assert await t.probe() is not None and not t.down
        assert "".join([c.text async for c in t.stream(params)]) == "hello world\n"
        assert len(standin.stats.requests) == n_requests + 1
    finally:
        await t.aclose()
