"""The gateway's own HTTP/1.1 server on raw sockets: framing, keep-alive, pipelining, limits, bad input."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import httpx
from codeassist.serverkit.gateway import http1
from codeassist.serverkit.gateway.upstream import UpstreamClient
from codeassist.serverkit.standin import StandinBehaviour, StandinServer
from gwhelpers import auth, body, wait_until


def request(key: str, payload: dict | None = None, extra: str = "", version: str = "1.1") -> bytes:
    data = json.dumps(payload or body(max_tokens=2)).encode()
    return (
        f"POST /v1/completions HTTP/{version}\r\nhost: gw\r\nauthorization: Bearer {key}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(data)}\r\n{extra}\r\n"
    ).encode() + data


def talk(gw, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the gateway closes it."""
    with socket.create_connection((gw.host, gw.port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def read_response(s: socket.socket) -> tuple[bytes, bytes]:
    """One response with a content-length body: (head, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
    while len(rest) < length:
        rest += s.recv(65536)
    return head, rest


def statuses(raw: bytes) -> list[int]:
    return [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


def test_malformed_request_is_400_and_the_server_stays_up(keys, standin, gateway_factory):
    key = keys.add("m")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    junks = (b"BLAH\r\n\r\n", b"GET / HTTP/9.9\x00\r\n\r\n", b"POST /v1/completions HTTP/1.1\r\nbad header\r\n\r\n")
    for junk in junks:
        raw = talk(gw, junk)
        assert statuses(raw) == [400], raw
    r = httpx.post(gw.url + "/v1/completions", json=body(), headers=auth(key))
    assert r.status_code == 200 and "[DONE]" in r.text


def test_huge_declared_body_is_413_before_it_is_sent(keys, standin, gateway_factory):
    key = keys.add("h")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), max_body_bytes=1_000))
    head = (
        f"POST /v1/completions HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {key}\r\n"
        "content-length: 10000000000\r\n\r\n"
    ).encode()
    with socket.create_connection((gw.host, gw.port), timeout=5) as s:
        s.sendall(head + b"{")  # not the body: the answer must come without it
        status_line, payload = read_response(s)
    assert status_line.startswith(b"HTTP/1.1 413") and b"connection: close" in status_line
    assert json.loads(payload)["error"]["type"] == "too_large"
    assert standin.stats.requests == []
    assert httpx.post(gw.url + "/v1/completions", json=body(), headers=auth(key)).status_code == 200


def test_chunked_request_bodies_and_their_limit(keys, standin, gateway_factory):
    key = keys.add("c")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), max_body_bytes=2_000))
    data = json.dumps(body(max_tokens=2)).encode()
    head = (
        f"POST /v1/completions HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {key}\r\n"
        "transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    ).encode()
    ok = talk(gw, head + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, data[:10], len(data) - 10, data[10:]))
    assert statuses(ok) == [200] and b"data: [DONE]" in ok
    big = b"x" * 1500
    over = talk(gw, head + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(big), big, len(big), big))
    assert statuses(over) == [413]
    assert len(standin.stats.requests) == 1


def test_keep_alive_and_pipelined_requests_on_one_connection(keys, standin, gateway_factory):
    key = keys.add("k")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    with httpx.Client(base_url=gw.url) as c:  # one pooled connection, two requests after another
        ports = []
        for _ in range(2):
            with c.stream("POST", "/v1/completions", json=body(), headers=auth(key)) as r:
                assert r.status_code == 200 and "[DONE]" in r.read().decode()
                ports.append(r.extensions["network_stream"].get_extra_info("client_addr")[1])
        assert ports[0] == ports[1]
    # Pipelined in one write (the second with a different prompt); answered in order, then closed.
    raw = talk(
        gw,
        request(key, body(prompt="first", max_tokens=2))
        + b"GET /v1/completions HTTP/1.1\r\nhost: gw\r\n\r\n"
        + request(key, body(prompt="second", max_tokens=2), "connection: close\r\n"),
    )
    assert statuses(raw) == [200, 405, 200]
    assert raw.count(b"data: [DONE]") == 2
    assert [r["prompt"] for r in standin.stats.requests[-2:]] == ["first", "second"]


def test_http10_client_gets_the_stream_ended_by_close(keys, standin, gateway_factory):
    key = keys.add("o")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    raw = talk(gw, request(key, version="1.0"))
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding" not in head
    assert rest.startswith(b"data: {") and rest.endswith(b"data: [DONE]\n\n")


def test_expect_100_continue_and_other_routes(keys, standin, gateway_factory):
    key = keys.add("e")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    data = json.dumps(body(max_tokens=2)).encode()
    with socket.create_connection((gw.host, gw.port), timeout=5) as s:
        s.sendall(
            (
                f"POST /v1/completions HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {key}\r\n"
                f"expect: 100-continue\r\nconnection: close\r\ncontent-length: {len(data)}\r\n\r\n"
            ).encode()
        )
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert statuses(out) == [200] and b"data: [DONE]" in out
    assert httpx.get(gw.url + "/nowhere").status_code == 404
    assert httpx.get(gw.url + "/v1/completions").status_code == 405
    assert httpx.get(gw.url + "/stats").status_code == 401
    assert httpx.get(gw.url + "/v1/models", headers=auth(key)).json()["data"][0]["id"]


def test_idle_keep_alive_connection_is_closed(keys, standin, gateway_factory, monkeypatch):
    monkeypatch.setattr(http1, "KEEP_ALIVE_S", 0.3)
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    with socket.create_connection((gw.host, gw.port), timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nhost: gw\r\n\r\n")
        head, _ = read_response(s)
        assert head.startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        assert s.recv(100) == b""  # closed by the gateway
        assert 0.2 < time.monotonic() - t0 < 3.0
    assert wait_until(lambda: not gw.gateway.routes.connections, 2.0)


async def test_relay_hands_chunks_over_and_pauses_while_the_client_is_full():
    gaps = 0.05
    with StandinServer(behaviour=StandinBehaviour(ttft_s=0.01, gap_s=gaps, tokens=[f"t{i}" for i in range(16)])) as up:
        client = UpstreamClient()
        resp = await client.stream("POST", up.base_url + "/completions", json.dumps(body(max_tokens=16)).encode())
        got: list[tuple[float, bytes, bool]] = []
        loop = asyncio.get_running_loop()

        def sink(data: bytes, end: bool) -> None:
            got.append((loop.time(), data, end))
            if len(got) == 2:  # the client's buffer is full: stop reading the upstream for a while
                resp.pause()
                loop.call_later(0.3, resp.resume)

        await resp.relay(sink)
        await client.aclose()
    data = b"".join(d for _, d, _ in got)
    assert data.count(b"data: {") == 16 and data.endswith(b"data: [DONE]\n\n")
    assert [e for _, _, e in got].count(True) == 1 and got[-1][2]
    assert got[2][0] - got[1][0] > 0.25  # nothing came while paused
    assert len(got) >= 6  # not one blob at the end: chunks were handed over as they came


async def test_a_full_client_buffer_pauses_the_upstream_it_relays():
    class Upstream:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def pause(self) -> None:
            self.calls.append("pause")

        def resume(self) -> None:
            self.calls.append("resume")

    conn = http1.Connection(http1.Routes({}, 1000, None))
    up, later = Upstream(), Upstream()
    conn.relaying(up)
    conn.pause_writing()  # the client's socket buffer is full
    conn.resume_writing()
    conn.pause_writing()
    conn.relaying(None)
    conn.relaying(later)  # a relay that starts while the client is still full starts paused
    assert up.calls == ["pause", "resume", "pause"] and later.calls == ["pause"]
