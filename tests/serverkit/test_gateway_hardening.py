"""Regression tests of the gateway security review: resource limits, timeouts, hostile bodies, framing."""

from __future__ import annotations

import json
import select
import socket
import time

import httpx
import pytest
from codeassist.serverkit.standin import StandinBehaviour, StandinServer
from gwhelpers import auth, body, wait_until
from test_gateway_http1 import read_response, request, statuses


def _send_all(s: socket.socket, data: bytes, piece: int = 16384) -> None:
    """Send ``data``; the gateway may stop reading (it answered and closes): that is not an error here."""
    try:
        for i in range(0, len(data), piece):
            s.sendall(data[i : i + piece])
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
        assert wait_until(
            lambda: (
                len(gw.gateway.routes.connections) == 3
                and all(c.parsing is not None for c in gw.gateway.routes.connections)
            ),
            2.0,
        )
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


def _post(gw, key: str, data: bytes, path: str = "/v1/completions", extra: bytes = b"") -> tuple[int, bytes]:
    """One raw request on its own connection: (status, body); status 0 when no response came."""
    head = (
        (
            f"POST {path} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {key}\r\nconnection: close\r\n"
            f"content-type: application/json\r\ncontent-length: {len(data)}\r\n"
        ).encode()
        + extra
        + b"\r\n"
    )
    with socket.create_connection((gw.host, gw.port), timeout=5) as s:
        _send_all(s, head + data)
        raw = _read_to_close(s)
    got = statuses(raw)
    return (got[0] if got else 0), raw.partition(b"\r\n\r\n")[2]


def _audit(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_max_tokens_must_be_a_positive_integer_within_the_limit(keys, standin, gateway_factory, tmp_path):
    key = keys.add("neg")
    audit = tmp_path / "audit.jsonl"
    gw = gateway_factory(
        keys.config(upstreams=(standin.base_url,), tokens_per_minute=600, max_tokens_limit=4096, audit_file=audit)
    )
    bad = [
        b'{"prompt":"x","max_tokens":-1000000}',
        b'{"prompt":"x","max_tokens":0}',
        b'{"prompt":"x","max_tokens":5000}',
        b'{"prompt":"x","max_tokens":"2"}',
        b'{"prompt":"x","max_tokens":2.5}',
        b'{"prompt":"x","max_tokens":true}',
        b'{"prompt":"x","n":0}',
        b'{"prompt":"x","best_of":1000}',
        b'{"messages":[],"max_completion_tokens":-3}',
    ]
    for data in bad:
        status, payload = _post(gw, key, data)
        assert status == 400 and json.loads(payload)["error"]["type"] == "bad_request", data
    assert standin.stats.requests == []
    # the bucket was not refilled by any of them: a request costing it all still goes through once
    assert _post(gw, key, json.dumps(body(max_tokens=590)).encode())[0] == 200
    assert _post(gw, key, json.dumps(body(max_tokens=100)).encode())[0] == 429
    assert [e["status"] for e in _audit(audit)] == [400] * len(bad) + [200, 429]


def test_token_bucket_take_never_refills():
    from codeassist.serverkit.gateway.ratelimit import TokenBucket

    b = TokenBucket(rate=1.0, capacity=100.0, level=10.0, stamp=0.0)
    b.take(-1e9)
    assert b.level == 10.0


@pytest.mark.parametrize(
    "data",
    [
        body(max_tokens=100, n=8),
        body(max_tokens=100, best_of=8),
        body(prompt=["a", "b", "c", "d", "e", "f", "g", "h"], max_tokens=100),
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 500, "stream": True},
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True},
    ],
)
def test_what_a_request_may_generate_is_charged(keys, standin, gateway_factory, data):
    key = keys.add("under")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), tokens_per_minute=600, default_max_tokens=500))
    path = "/v1/chat/completions" if "messages" in data else "/v1/completions"
    assert _post(gw, key, json.dumps(data).encode(), path)[0] == 200
    assert _post(gw, key, json.dumps(data).encode(), path)[0] == 429  # the first took (nearly) the whole bucket


def test_a_missing_max_tokens_is_sent_as_charged(keys, standin, gateway_factory):
    key = keys.add("dflt")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), default_max_tokens=77))
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    assert _post(gw, key, json.dumps(chat).encode(), "/v1/chat/completions")[0] == 200
    assert _post(gw, key, b'{"model":"m","prompt":"x","stream":true}')[0] == 200
    assert _post(gw, key, json.dumps({**chat, "max_completion_tokens": 5}).encode(), "/v1/chat/completions")[0] == 200
    sent = standin.stats.requests
    assert sent[0]["max_tokens"] == 77 and sent[1]["max_tokens"] == 16
    assert "max_tokens" not in sent[2] and sent[2]["max_completion_tokens"] == 5


def test_hostile_numbers_and_nesting_are_400_and_audited(keys, standin, gateway_factory, tmp_path):
    key = keys.add("num")
    audit = tmp_path / "audit.jsonl"
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), audit_file=audit))
    bad = [
        b'{"prompt":"x","max_tokens":1e400}',
        b'{"prompt":"x","max_tokens":Infinity}',
        b'{"prompt":"x","max_tokens":NaN}',
        b'{"prompt":"x","max_tokens":1,"priority":-Infinity}',
        b'{"prompt":"x","max_tokens":1,"priority":1e400}',
        b'{"prompt":"x","max_tokens":' + b"9" * 5000 + b"}",
        b'{"prompt":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"prompt":"\xff\xfe"}',
    ]
    for data in bad:
        status, payload = _post(gw, key, data)
        assert status == 400 and json.loads(payload)["error"]["type"] == "bad_request", data[:60]
    assert [e["status"] for e in _audit(audit)] == [400] * len(bad)
    assert standin.stats.requests == []


def test_a_non_utf8_affinity_key_is_served(keys, standin, gateway_factory, tmp_path):
    key = keys.add("aff")
    audit = tmp_path / "audit.jsonl"
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), audit_file=audit))
    status, payload = _post(gw, key, json.dumps(body(max_tokens=1)).encode(), extra=b"x-affinity-key: \xff\xfe\r\n")
    assert status == 200 and b"[DONE]" in payload
    assert [e["status"] for e in _audit(audit)] == [200]


def test_the_audit_log_never_takes_the_clients_model_verbatim(keys, standin, gateway_factory, tmp_path):
    key = keys.add("mod")
    audit = tmp_path / "audit.jsonl"
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), audit_file=audit))
    sneaky = body(max_tokens=1, model={"prompt": "secret prompt", "key": key})
    status, _ = _post(gw, key, json.dumps(sneaky).encode())
    assert status == 400
    assert _post(gw, key, json.dumps(body(max_tokens=1, model="m" * 5000)).encode())[0] == 200
    text = audit.read_text()
    assert "secret prompt" not in text and key not in text
    assert [len(e.get("model", "")) for e in _audit(audit)] == [0, 128]


def test_head_gets_no_body_and_keep_alive_stays_in_step(keys, standin, gateway_factory):
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    with socket.create_connection((gw.host, gw.port), timeout=5) as s:
        s.sendall(
            b"HEAD /health HTTP/1.1\r\nhost: gw\r\n\r\n"
            b"HEAD /v1/completions HTTP/1.1\r\nhost: gw\r\n\r\n"
            b"GET /health HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n"
        )
        raw = _read_to_close(s)
    first, _, rest = raw.partition(b"\r\n\r\n")
    second, _, rest = rest.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200") and b"content-length:" in first.lower()
    assert second.startswith(b"HTTP/1.1 405"), raw
    assert rest.startswith(b"HTTP/1.1 200"), raw
    assert json.loads(rest.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"POST /v1/completions HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET /health HTTP/1.1\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n", 400),
    ],
)
def test_unsupported_transfer_codings_and_a_missing_host(keys, standin, gateway_factory, head, status):
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    with socket.create_connection((gw.host, gw.port), timeout=5) as s:
        s.sendall(head)
        assert statuses(_read_to_close(s)) == [status]
    with socket.create_connection((gw.host, gw.port), timeout=5) as s:  # HTTP/1.0 needs no host
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        assert statuses(_read_to_close(s)) == [200]


def test_a_broken_plain_upstream_body_is_cut_off_not_finished(keys, gateway_factory):
    import threading

    srv = socket.create_server(("127.0.0.1", 0))

    def upstream() -> None:
        conn, _ = srv.accept()
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                b'9\r\n{"id": "x\r\n'
            )
            time.sleep(0.1)
        # closed halfway through the JSON

    t = threading.Thread(target=upstream, daemon=True)
    t.start()
    try:
        key = keys.add("plain")
        gw = gateway_factory(keys.config(upstreams=(f"http://127.0.0.1:{srv.getsockname()[1]}/v1",)))
        with socket.create_connection((gw.host, gw.port), timeout=5) as s:
            s.sendall(request(key, body(stream=False)))
            raw = _read_to_close(s)
        assert raw.startswith(b"HTTP/1.1 200") and b'{"id": "x' in raw
        assert not raw.endswith(b"0\r\n\r\n") and b"upstream_error" not in raw
    finally:
        t.join(5)
        srv.close()


def test_an_empty_object_body_is_sent_as_valid_json(keys, standin, gateway_factory):
    key = keys.add("empty")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    assert _post(gw, key, b"{}")[0] == 200
    assert standin.stats.requests[-1] == {"max_tokens": 16, "priority": 0}
