"""Through a real loopback gateway: unbuffered SSE, disconnects, upstream faults, timeouts, TLS."""

from __future__ import annotations

import itertools
import json
import ssl
import time

import httpx
import trustme
from codeassist.serverkit.standin import StandinBehaviour, StandinServer
from gwhelpers import auth, body, wait_until


def test_sse_is_streamed_through_unbuffered(keys, gateway_factory):
    with StandinServer(behaviour=StandinBehaviour(ttft_s=0.05, gap_s=0.3, tokens=["a", "b", "c", "d"])) as up:
        key = keys.add("ann")
        gw = gateway_factory(keys.config(upstreams=(up.base_url,)))
        arrivals = []
        t0 = time.perf_counter()
        with httpx.stream("POST", gw.url + "/v1/completions", json=body(), headers=auth(key)) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    arrivals.append(time.perf_counter() - t0)
        assert len(arrivals) == 4
        # each event arrives when the upstream sends it (0.05, 0.35, 0.65, 0.95 s), not all at the end; the
        # bounds leave room for a loaded box delaying one event
        assert arrivals[0] < 0.5 and arrivals[-1] - arrivals[0] > 0.6, arrivals
        assert sum(b - a > 0.15 for a, b in itertools.pairwise(arrivals)) >= 2, arrivals


def test_client_disconnect_aborts_upstream_at_once(keys, gateway_factory):
    with StandinServer(behaviour=StandinBehaviour(gap_s=0.3, tokens=[f" t{i}" for i in range(40)])) as up:
        key = keys.add("ben")
        gw = gateway_factory(keys.config(upstreams=(up.base_url,)))
        with httpx.stream("POST", gw.url + "/v1/completions", json=body(max_tokens=40), headers=auth(key)) as r:
            next(r.iter_raw())
        t_close = time.perf_counter()
        assert wait_until(lambda: up.stats.disconnected == 1, 2.0)
        assert time.perf_counter() - t_close < 1.0 and up.stats.completed == 0
        assert wait_until(lambda: gw.state.scheduler.inflight == 0, 1.0)
        assert wait_until(lambda: next(iter(gw.state.users.values())).disconnected == 1, 1.0)


def test_upstream_dying_mid_stream_gives_clean_error_event(keys, gateway_factory):
    with StandinServer(behaviour=StandinBehaviour(gap_s=0.01, tokens=[f" t{i}" for i in range(6)], fault="drop")) as up:
        key = keys.add("cat")
        gw = gateway_factory(keys.config(upstreams=(up.base_url,)))
        with httpx.stream("POST", gw.url + "/v1/completions", json=body(), headers=auth(key)) as r:
            lines = [ln for ln in r.iter_lines() if ln.startswith("data: ")]
        assert r.status_code == 200
        assert lines[-1] == "data: [DONE]"
        err = json.loads(lines[-2][6:])
        assert err["error"]["type"] == "upstream_error"
        assert sum(1 for ln in lines if '"choices"' in ln) == 3
        up.behaviour.fault = None  # the gateway stays up and serves the next request
        r2 = httpx.post(gw.url + "/v1/completions", json=body(), headers=auth(key))
        assert r2.status_code == 200 and "[DONE]" in r2.text
        assert httpx.get(gw.url + "/health").status_code == 200


def test_upstream_killed_mid_stream(keys, gateway_factory):
    up = StandinServer(behaviour=StandinBehaviour(gap_s=0.2, tokens=[f" t{i}" for i in range(20)])).start()
    key = keys.add("cal")
    gw = gateway_factory(keys.config(upstreams=(up.base_url,)))
    with httpx.stream("POST", gw.url + "/v1/completions", json=body(max_tokens=20), headers=auth(key)) as r:
        it = r.iter_lines()
        assert next(it).startswith("data: {")
        up.stop()  # mid-stream: its connections are cut as it goes
        rest = [ln for ln in it if ln.startswith("data: ")]
    assert rest[-1] == "data: [DONE]" and '"error"' in rest[-2]
    h = httpx.get(gw.url + "/health")
    assert h.status_code == 503 and h.json()["status"] == "upstream_unavailable"


def test_upstream_hang_gives_504(keys, gateway_factory):
    with StandinServer(behaviour=StandinBehaviour(fault="hang")) as up:
        key = keys.add("dan")
        gw = gateway_factory(keys.config(upstreams=(up.base_url,), first_token_timeout_s=0.5))
        t0 = time.perf_counter()
        r = httpx.post(gw.url + "/v1/completions", json=body(), headers=auth(key), timeout=5)
        assert r.status_code == 504 and 0.4 < time.perf_counter() - t0 < 2.0
        assert wait_until(lambda: up.stats.disconnected == 1, 2.0)  # the hung request is aborted too


def test_upstream_500_passes_through(keys, gateway_factory):
    with StandinServer(behaviour=StandinBehaviour(fault="500")) as up:
        key = keys.add("eve")
        gw = gateway_factory(keys.config(upstreams=(up.base_url,)))
        r = httpx.post(gw.url + "/v1/completions", json=body(), headers=auth(key))
        assert r.status_code == 500 and "scripted failure" in r.text


def test_gateway_serves_tls(keys, gateway_factory, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    with StandinServer() as up:
        key = keys.add("fin")
        gw = gateway_factory(
            keys.config(upstreams=(up.base_url,)), tls_cert=tmp_path / "cert.pem", tls_key=tmp_path / "key.pem"
        )
        assert gw.url.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        r = httpx.post(gw.url + "/v1/completions", json=body(), headers=auth(key), verify=ctx)
        assert r.status_code == 200 and "[DONE]" in r.text
