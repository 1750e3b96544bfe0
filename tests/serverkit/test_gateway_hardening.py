"""Regression tests of the gateway security review: resource limits, timeouts, hostile bodies, framing."""

from __future__ import annotations

import select
import socket
import time

import httpx
from codeassist.serverkit.standin import StandinBehaviour, StandinServer
from gwhelpers import auth, body, wait_until
from test_gateway_http1 import read_response, request, statuses


def _send_all(s: socket.socket, data: bytes, piece: int = 16384) -> None:
    """Send ``data``; the gateway may stop reading (it answered and closes): that is not an error here."""
    try:
        for i in range(0, len(data), piece):
            s.sendall(data[i:i + piece])
    except OSError:
        pass


def _read_to_close(s: socket.socket) -> bytes:
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


def test_an_unfinished_huge_header_is_431_before_it_is_buffered(keys, standin, gateway_factory):
    key = keys.add("big")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    head = f"POST /v1/completions HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {key}\r\nx-big: ".encode()
    with socket.create_connection((gw.host, gw.port), timeout=3) as s:
        _send_all(s, head + b"a" * (1 << 20))  # no line end: httptools would hold all of it
        raw = _read_to_close(s)
    assert statuses(raw) == [431], raw[:200]
    assert standin.stats.requests == []
    assert httpx.post(gw.url + "/v1/completions", json=body(), headers=auth(key)).status_code == 200


def test_too_many_headers_is_431(keys, standin, gateway_factory):
    key = keys.add("many")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    with socket.create_connection((gw.host, gw.port), timeout=3) as s:
        _send_all(s, request(key, extra="a:\r\n" * 500))
        raw = _read_to_close(s)
    assert statuses(raw) == [431], raw[:200]
    assert standin.stats.requests == []


def test_many_headers_within_the_limits_are_served(keys, standin, gateway_factory):
    key = keys.add("some")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    with socket.create_connection((gw.host, gw.port), timeout=3) as s:
        s.sendall(request(key, extra="x-pad: " + "p" * 1000 + "\r\n" + "a: b\r\n" * 50, version="1.0"))
        raw = _read_to_close(s)
    assert statuses(raw) == [200] and b"[DONE]" in raw


def test_a_slowly_sent_head_is_cut_off(keys, standin, gateway_factory):
    key = keys.add("slow")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), request_timeout_s=0.3))
    with socket.create_connection((gw.host, gw.port), timeout=5) as s:
        s.sendall(f"POST /v1/completions HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {key}\r\n".encode())
        t0 = time.monotonic()
        raw = b""
        try:
            for i in range(60):  # one header line every 0.05 s: bytes keep coming, the head never ends
                s.sendall(b"x-%d: y\r\n" % i)
                if select.select([s], [], [], 0.05)[0]:
                    break  # answered
        except OSError:
            pass
        raw = _read_to_close(s)
        assert time.monotonic() - t0 < 2.5
    assert statuses(raw) == [408]
    with socket.create_connection((gw.host, gw.port), timeout=5) as s:  # a body stalled halfway: the same
        s.sendall(request(key)[:-5])
        raw = _read_to_close(s)
    assert statuses(raw) == [408]
    with socket.create_connection((gw.host, gw.port), timeout=5) as s:  # connected, nothing sent: closed
        assert _read_to_close(s) == b""
    assert wait_until(lambda: not gw.gateway.routes.connections, 2.0)


def test_the_connection_cap_closes_the_oldest_idle_connection(keys, standin, gateway_factory):
    key = keys.add("cap")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), max_connections=3))
    socks = [socket.create_connection((gw.host, gw.port), timeout=5) for _ in range(3)]
    try:
        assert wait_until(lambda: len(gw.gateway.routes.connections) == 3, 2.0)
        socks[1].sendall(b"GET /health HTTP/1.1\r\nhost: gw\r\n")  # a head in progress: not idle
        time.sleep(0.05)
        with socket.create_connection((gw.host, gw.port), timeout=5) as s:
            s.sendall(request(key, version="1.0"))
            raw = _read_to_close(s)
        assert statuses(raw) == [200]
        assert socks[0].recv(10) == b""  # the oldest idle one made room
        socks.append(socket.create_connection((gw.host, gw.port), timeout=5))
        for s in socks[2:]:
            s.sendall(b"GET /health HTTP/1.1\r\nhost: gw\r\n")
        assert wait_until(lambda: len(gw.gateway.routes.connections) == 3
                          and all(c.parsing is not None for c in gw.gateway.routes.connections), 2.0)
        with socket.create_connection((gw.host, gw.port), timeout=5) as s:  # none idle: refused
            assert statuses(_read_to_close(s)) == [503]
        socks[1].sendall(b"\r\n")
        assert read_response(socks[1])[0].startswith(b"HTTP/1.1 200")
    finally:
        for s in socks:
            s.close()


def test_the_open_files_limit_is_raised_to_the_hard_limit():
    import resource

    from codeassist.serverkit.gateway.server import raise_nofile_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    got = raise_nofile_limit()
    now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert got == now >= soft
    if hard != resource.RLIM_INFINITY:
        assert now == hard


def test_a_client_that_stops_reading_is_cut_off_and_frees_its_slot(keys, gateway_factory):
    big = "x" * 16384
    with StandinServer(behaviour=StandinBehaviour(tokens=[big] * 1000)) as up:
        key = keys.add("stall")
        gw = gateway_factory(keys.config(upstreams=(up.base_url,), client_write_timeout_s=0.3))
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        s.connect((gw.host, gw.port))
        try:
            s.sendall(request(key, body(max_tokens=1000)))  # and reads nothing
            assert wait_until(lambda: gw.state.scheduler.inflight == 1, 2.0)
            assert wait_until(lambda: gw.state.scheduler.inflight == 0, 3.0)
            user = next(iter(gw.state.users.values()))
            assert wait_until(lambda: user.by_status.get("499") == 1, 1.0)
            assert wait_until(lambda: up.stats.disconnected == 1, 2.0) and up.stats.completed == 0
        finally:
            s.close()
