"""Keys: wrong, revoked and expired keys get 401; the key never reaches a log; limits answer 413/429."""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from codeassist.serverkit.gateway.keys import KeyStore
from gwhelpers import PEPPER, auth, body


def client(gw) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gw.url)


async def test_wrong_revoked_expired_keys_are_refused_and_never_logged(
    keys, standin, gateway_factory, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    good = keys.add("alice")
    revoked = keys.add("bob")
    expired = keys.add("carol", expires=time.time() - 1)
    keys.store.revoke("bob")
    audit = tmp_path / "audit.jsonl"
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), audit_file=audit))
    async with client(gw) as c:
        assert (await c.post("/v1/completions", json=body(), headers=auth(good))).status_code == 200
        tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
        for bad in (tampered, revoked, expired, "ca-nothere.secret", "garbage"):
            r = await c.post("/v1/completions", json=body(), headers=auth(bad))
            assert r.status_code == 401, bad
        assert (await c.post("/v1/completions", json=body())).status_code == 401
        assert (await c.get("/stats", headers=auth(revoked))).status_code == 401
        assert (await c.get("/v1/models", headers=auth(good))).status_code == 200
    assert len(standin.stats.requests) == 1
    logged = audit.read_text() + caplog.text + keys.path.read_text()
    for k in (good, revoked, expired, tampered):
        assert k not in logged and k.split(".")[1] not in logged
    assert "def f():" not in audit.read_text()  # no prompt text either
    entries = audit.read_text().splitlines()
    assert len(entries) == 7 and '"status":401' in entries[-1] and "alice" not in audit.read_text()


async def test_revocation_by_another_process_takes_effect(keys, standin, gateway_factory):
    key = keys.add("dave")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    async with client(gw) as c:
        assert (await c.post("/v1/completions", json=body(), headers=auth(key))).status_code == 200
        KeyStore(keys.path, PEPPER).revoke("dave")  # as `server-kit keys revoke dave` would
        gw.state.keys.reload()  # now, not at the next re-check (within a second: the test below)
        assert (await c.post("/v1/completions", json=body(), headers=auth(key))).status_code == 401


def test_the_key_store_rereads_the_file_within_a_second(keys):
    clock = [1000.0]
    key = keys.add("fay")
    store = KeyStore(keys.path, PEPPER, now=lambda: clock[0])  # the gateway's, with a clock of the test's
    assert store.verify(f"Bearer {key}") is not None
    KeyStore(keys.path, PEPPER).revoke("fay")  # another process
    clock[0] += 0.5
    assert store.verify(f"Bearer {key}") is not None  # not re-read on every request
    clock[0] += 0.6
    assert store.verify(f"Bearer {key}") is None


async def test_rate_limit_answers_429_with_retry_after(keys, standin, gateway_factory):
    key = keys.add("erin")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), requests_per_minute=6, request_burst=2))
    async with client(gw) as c:
        codes = [(await c.post("/v1/completions", json=body(), headers=auth(key))) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert int(codes[2].headers["retry-after"]) >= 1
    assert len(standin.stats.requests) == 2


async def test_token_bucket_counts_tokens(keys, standin, gateway_factory):
    key = keys.add("fay", tokens_per_minute=600)
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    async with client(gw) as c:
        first = await c.post("/v1/completions", json=body(max_tokens=500), headers=auth(key))
        second = await c.post("/v1/completions", json=body(max_tokens=500), headers=auth(key))
    assert first.status_code == 200 and second.status_code == 429 and "retry-after" in second.headers


@pytest.mark.parametrize("size", [2_000, 50_000])
async def test_oversized_body_is_413(keys, standin, gateway_factory, size):
    key = keys.add("gus")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), max_body_bytes=1_000))
    async with client(gw) as c:
        r = await c.post("/v1/completions", json=body(prompt="x" * size), headers=auth(key))
        ok = await c.post("/v1/completions", json=body(prompt="x" * 100), headers=auth(key))
    assert r.status_code == 413 and ok.status_code == 200
    assert len(standin.stats.requests) == 1


async def test_priority_is_capped_by_the_key_and_passed_to_vllm(keys, standin, gateway_factory):
    bot = keys.add("ci-bot", max_class="batch")
    dev = keys.add("hana")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    async with client(gw) as c:
        await c.post("/v1/completions", json=body(priority=0), headers=auth(bot, "interactive"))
        await c.post("/v1/completions", json=body(priority=0), headers=auth(dev, "interactive"))
        await c.post("/v1/completions", json=body(priority=10), headers=auth(dev, "prefetch"))
        bad = await c.post("/v1/completions", json=body(), headers=auth(dev, "urgent!!"))
    assert [r["priority"] for r in standin.stats.requests] == [20, 0, 10]
    assert bad.status_code == 400
