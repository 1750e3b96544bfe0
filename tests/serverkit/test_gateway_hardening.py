"""Regression tests of the gateway security review: resource limits, timeouts, hostile bodies, framing."""

from __future__ import annotations

import socket

import httpx
from gwhelpers import auth, body
from test_gateway_http1 import request, statuses


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
