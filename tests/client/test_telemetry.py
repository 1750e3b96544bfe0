"""The daemon's acceptance counters reach a gateway that collects them: the user is told once, only counts are
sent (a marker typed in a document and a completion request never reaches the gateway's store), and
``telemetry = false`` sends nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from codeassist.client.protocol import RpcConnection
from codeassist.serverkit.gateway.config import GatewayConfig
from codeassist.serverkit.gateway.keys import KeyStore
from codeassist.serverkit.gateway.server import GatewayServer

PEPPER = b"telemetry-test-pepper"
MARKER = "ZQXMARKER"  # typed in the document, its path and the completion's prompt
ENSURE = "from codeassist.client.daemon_client import ensure_daemon; print(ensure_daemon())"


@pytest.fixture
def gateway(tmp_path: Path, standin):
    store = KeyStore(tmp_path / "keys.json", PEPPER)
    key, _ = store.add("dev1")
    gw = GatewayServer(GatewayConfig(upstreams=(standin.base_url,), keys_file=tmp_path / "keys.json", pepper=PEPPER))
    gw.start()
    gw.key = key  # type: ignore[attr-defined]
    yield gw
    gw.stop()


def _daemon(daemon_env_factory, gw: GatewayServer, **env: str) -> Any:
    denv = daemon_env_factory(gw.url + "/v1")
    denv.env.update({"CODEASSIST_API_KEY": gw.key, "CODEASSIST_TELEMETRY_INTERVAL": "0.2", **env})
    r = subprocess.run([sys.executable, "-c", ENSURE], env=denv.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return denv


async def _edit_and_accept(sock: Path, messages: list[dict[str, Any]], seconds: float) -> None:
    async def note(method: str, params: dict[str, Any]) -> None:
        if method == "window/showMessage":
            messages.append(params)

    conn = await RpcConnection.open_unix(str(sock), on_notification=note)
    try:
        uri = f"file:///tmp/{MARKER}_dir/{MARKER}.py"
        text = f"def {MARKER}_fn(a, b):\n    # {MARKER} secret\n    return "
        await conn.request("doc/open", {"uri": uri, "text": text, "language": "python", "version": 1})
        shown = 0
        for _ in range(3):
            res = await conn.request("complete", {"uri": uri, "offset": len(text)})
            if res.get("text"):
                shown += 1
                await conn.request("accept", {"id": res.get("id"), "chars": None})
        assert shown
        await asyncio.sleep(seconds)  # several report intervals, with an editor connected
    finally:
        await conn.aclose()


def _scan(tmp_path: Path) -> None:
    for f in tmp_path.glob("usage.sqlite3*"):
        data = f.read_bytes()
        assert MARKER.encode() not in data and b"dev1" not in data, f


def test_counts_reach_the_gateway_once_told_and_no_text_does(gateway, daemon_env_factory, tmp_path) -> None:
    denv = _daemon(daemon_env_factory, gateway)
    messages: list[dict[str, Any]] = []
    asyncio.run(_edit_and_accept(denv.socket, messages, 1.5))
    store = gateway.state.usage
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(r["shown"] for _, r in store.per_user(0)):
        time.sleep(0.1)
    rows = dict(store.per_user(0))
    row = rows[gateway.state.user_id("dev1")]
    assert row["shown"] >= 1 and row["accepted"] >= 1 and row["accepted_chars"] > 0
    assert row["requests"] >= 1  # the completions themselves, from the gateway's own accounting
    notices = [m for m in messages if "usage counts" in m["message"]]
    assert len(notices) == 1 and "never code" in notices[0]["message"]
    # A second editor session: not told again (remembered in the state dir).
    again: list[dict[str, Any]] = []
    asyncio.run(_edit_and_accept(denv.socket, again, 0.5))
    assert not [m for m in again if "usage counts" in m["message"]]
    store.flush()
    _scan(tmp_path)
    # `codeassist config` shows the switch.
    out = denv.run("config").stdout
    assert "telemetry" in out


def test_telemetry_false_sends_nothing(gateway, daemon_env_factory, tmp_path) -> None:
    denv = _daemon(daemon_env_factory, gateway, CODEASSIST_TELEMETRY="false")
    messages: list[dict[str, Any]] = []
    asyncio.run(_edit_and_accept(denv.socket, messages, 1.5))
    assert not [m for m in messages if "usage counts" in m["message"]]
    assert gateway.state.registry.value("codeassist_team_reports_total") == 0
    assert gateway.state.registry.value("codeassist_team_checks_total") == 0
    rows = dict(gateway.state.usage.per_user(0))
    row = rows[gateway.state.user_id("dev1")]
    assert row["requests"] >= 1 and row["shown"] == 0
    _scan(tmp_path)


def test_a_gateway_that_does_not_collect_gets_nothing(tmp_path, standin, daemon_env_factory) -> None:
    store = KeyStore(tmp_path / "keys.json", PEPPER)
    key, _ = store.add("dev1")
    cfg = GatewayConfig(
        upstreams=(standin.base_url,), keys_file=tmp_path / "keys.json", pepper=PEPPER, collect_telemetry=False
    )
    with GatewayServer(cfg) as gw:
        gw.key = key  # type: ignore[attr-defined]
        denv = _daemon(daemon_env_factory, gw)
        messages: list[dict[str, Any]] = []
        asyncio.run(_edit_and_accept(denv.socket, messages, 1.0))
        assert not [m for m in messages if "usage counts" in m["message"]]
        assert gw.state.registry.value("codeassist_team_reports_total") == 0
        row = dict(gw.state.usage.per_user(0))[gw.state.user_id("dev1")]
        assert row["requests"] >= 1 and row["shown"] == 0
