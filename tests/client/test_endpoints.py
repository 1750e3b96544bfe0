"""Endpoint fallback in the real daemon: order, server down (empty answer at once + one message), recovery."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from codeassist.client.protocol import RpcConnection

from tests.conftest import free_port
from tests.realparts import daemon_request, patient, write_sample


async def _complete(conn: RpcConnection, uri: str, offset: int) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    result = await asyncio.wait_for(conn.request("complete", {"uri": uri, "offset": offset}), 30)
    return result, time.perf_counter() - t0


async def test_server_down_answers_empty_at_once_with_one_message_then_recovers(
    daemon_env_factory, local_model_url, proxy_factory
) -> None:
    proxy = proxy_factory(local_model_url)
    env = patient(daemon_env_factory(proxy.url))
    env.env.update({"CODEASSIST_PROBE_INTERVAL": "0.3", "CODEASSIST_ENGINE_MODE": "direct"})
    path, loc = write_sample(env.root)
    first = env.run("complete", loc, "--json")  # starts the daemon; the server is up
    assert first.returncode == 0 and '"text": ""' not in first.stdout, first.stdout + first.stderr

    notes: list[tuple[str, dict[str, Any]]] = []
    conn = await RpcConnection.open_unix(str(env.socket), on_notification=lambda m, p: notes.append((m, p)))
    try:
        text = path.read_text()
        uri = path.resolve().as_uri() + "?down"
        await conn.request("doc/open", {"uri": uri, "text": text, "language": "python"})
        proxy.stop()

        timings = []
        for i in range(4):
            # A different prefix each time so no cache can answer for the server.
            await conn.request("doc/open", {"uri": uri, "text": f"# {i}\n{text}", "language": "python"})
            result, took = await _complete(conn, uri, len(text) + len(f"# {i}\n"))
            assert result["text"] == ""
            timings.append(took)
        # Connection refused is seen at once; later requests do not even try until the re-probe.
        assert max(timings) < 2.0, timings
        assert timings[-1] < 1.0, timings
        await asyncio.sleep(1.0)  # background re-probes keep failing: still no second message
        shown = [p for m, p in notes if m == "window/showMessage"]
        assert len(shown) == 1, notes
        assert "no completion server reachable" in shown[0]["message"] and shown[0]["type"] == 2
        status = await daemon_request(env.socket, "connectivity/status")
        assert status["state"] == "down" and "default" in status["errors"]

        proxy.start()  # same port
        deadline = time.monotonic() + 15
        result: dict[str, Any] = {"text": ""}
        n = 10
        while time.monotonic() < deadline and not result["text"]:
            n += 1
            await conn.request("doc/open", {"uri": uri, "text": f"# {n}\n{text}", "language": "python"})
            result, _ = await _complete(conn, uri, len(text) + len(f"# {n}\n"))
            await asyncio.sleep(0.2)
        assert result["text"].strip(), "the daemon did not recover after the server came back"
        assert any(
            m == "codeassist/status" and p.get("event") == "up" and p.get("recovered") is not False for m, p in notes
        )
        assert len([1 for m, _ in notes if m == "window/showMessage"]) == 1
    finally:
        await conn.aclose()


async def test_fallback_order_uses_the_next_endpoint_and_returns_to_the_preferred(
    daemon_env_factory, local_model_url, proxy_factory
) -> None:
    backup = proxy_factory(local_model_url)
    preferred_port = free_port()
    env = patient(daemon_env_factory(f"http://127.0.0.1:{preferred_port}/v1"))  # nothing listens there yet
    env.env.update(
        {
            "CODEASSIST_FALLBACK": "default,backup",
            "CODEASSIST_ENDPOINTS": f"backup={backup.url}",
            "CODEASSIST_PROBE_INTERVAL": "0.2",
        }
    )
    _, loc = write_sample(env.root)
    r = env.run("complete", loc, "--json")
    assert r.returncode == 0 and '"text": ""' not in r.stdout, r.stdout + r.stderr
    status = await daemon_request(env.socket, "connectivity/status")
    assert status["endpoint"] == "backup" and [e["name"] for e in status["order"]] == ["default", "backup"]
    assert len(backup.seen_auth) >= 2  # /models probe and the completion went to the backup

    proxy_factory(local_model_url, port=preferred_port)  # the preferred server comes up
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = await daemon_request(env.socket, "connectivity/status")
        if status["endpoint"] == "default":
            break
        await asyncio.sleep(0.2)
    assert status["endpoint"] == "default", status


async def test_a_pinned_slot_goes_only_to_the_endpoint_whose_slots_were_counted(standin) -> None:
    """Its slot count was asked of the preferred server, which then went down: no ``id_slot`` for the backup."""
    from codeassist.client.config import Config
    from codeassist.client.endpoints import FallbackTransport
    from codeassist.client.transport.base import CompletionParams
    from codeassist.serverkit.standin import StandinBehaviour, StandinServer

    preferred = StandinServer(behaviour=StandinBehaviour(server="llama.cpp", slots=4)).start()
    standin.behaviour = StandinBehaviour(server="llama.cpp", slots=2)  # the backup
    cfg = Config(server_url=preferred.base_url, fallback=["default", "backup"], endpoints={"backup": standin.base_url})
    ft = FallbackTransport(cfg)
    try:
        assert await ft.slots() == 4
        preferred.stop()
        timings: dict[str, Any] = {}
        params = CompletionParams(prompt="x = ", model="standin-model", extra={"id_slot": 3})
        assert "".join([c.text async for c in ft.stream(params, timings)]) == "hello world\n"
        assert "id_slot" not in standin.stats.requests[-1] and timings["slots_stale"] == 1.0
    finally:
        await ft.aclose()
