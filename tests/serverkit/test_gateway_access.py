"""Who sees what: /stats shows a key its own user's row (an admin key: everyone's), /metrics is for loopback
clients or admin keys, /health says only whether the gateway can serve."""

from __future__ import annotations

import contextlib
import socket

import httpx
import pytest
from codeassist.serverkit.gateway.keys import KeyStore
from gwhelpers import PEPPER, auth, body


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (no packet is sent), or None."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        addr = s.getsockname()[0]
        return None if addr.startswith("127.") else addr
    return None


def test_stats_shows_own_row_unless_admin(keys, standin, gateway_factory):
    alice, bob = keys.add("alice"), keys.add("bob")
    root = keys.add("root", admin=True)
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    for key, n in ((alice, 1), (bob, 2)):
        for _ in range(n):
            assert httpx.post(gw.url + "/v1/completions", json=body(), headers=auth(key)).status_code == 200

    mine = httpx.get(gw.url + "/stats", headers=auth(alice)).json()
    assert set(mine) == {"users"}  # no replica URLs, no gateway-wide counts
    assert [u["requests"] for u in mine["users"].values()] == [1]
    assert list(mine["users"]) == [gw.state.user_id("alice")]
    bobs = httpx.get(gw.url + "/stats", headers=auth(bob)).json()
    assert list(bobs["users"]) == [gw.state.user_id("bob")] and bobs["users"][gw.state.user_id("bob")]["requests"] == 2

    everyone = httpx.get(gw.url + "/stats", headers=auth(root)).json()
    assert sorted(u["requests"] for u in everyone["users"].values()) == [1, 2]
    assert everyone["replicas"][0]["url"] == standin.base_url and "inflight" in everyone
    assert httpx.get(gw.url + "/stats").status_code == 401
    assert httpx.get(gw.url + "/stats", headers=auth("ca-nothere.secret")).status_code == 401


def test_admin_flag_is_read_from_the_store_and_revocable(keys, standin, gateway_factory):
    root = keys.add("root", admin=True)
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    assert "replicas" in httpx.get(gw.url + "/stats", headers=auth(root)).json()
    KeyStore(keys.path, PEPPER).revoke("root")  # as `server-kit keys revoke root` would
    gw.state.keys.reload()  # now, not at the next re-check within a second
    assert httpx.get(gw.url + "/stats", headers=auth(root)).status_code == 401


def test_metrics_for_loopback_clients_or_admin_keys(keys, standin, gateway_factory):
    user, root = keys.add("alice"), keys.add("root", admin=True)
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    m = httpx.get(gw.url + "/metrics")  # a Prometheus on this host
    assert m.status_code == 200 and "codeassist_gateway_inflight" in m.text
    # A reverse proxy on this host (Caddy) connects from loopback but says whom it forwards: not local.
    for fwd in ({"x-forwarded-for": "203.0.113.9"}, {"forwarded": "for=203.0.113.9"}, {"x-real-ip": "203.0.113.9"}):
        assert httpx.get(gw.url + "/metrics", headers=fwd).status_code == 401
        assert httpx.get(gw.url + "/metrics", headers={**fwd, **auth(user)}).status_code == 403
        r = httpx.get(gw.url + "/metrics", headers={**fwd, **auth(root)})
        assert r.status_code == 200 and "codeassist_gateway_inflight" in r.text


def test_metrics_refused_to_a_remote_client_without_admin_key(keys, standin, gateway_factory):
    addr = non_loopback_address()
    if addr is None:
        pytest.skip("this machine has no non-loopback address")
    user, root = keys.add("alice"), keys.add("root", admin=True)
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)), host=addr)
    assert httpx.get(gw.url + "/metrics").status_code == 401
    assert httpx.get(gw.url + "/metrics", headers=auth(user)).status_code == 403
    assert httpx.get(gw.url + "/metrics", headers=auth(root)).status_code == 200
    assert httpx.get(gw.url + "/health").json() == {"status": "ok"}


def test_health_says_only_ok(keys, standin, gateway_factory):
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    r = httpx.get(gw.url + "/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert standin.base_url.split("//")[1] not in r.text
