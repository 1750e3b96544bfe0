"""Unit tests of the gateway's parts with injected clocks: buckets, scheduler, replicas, audit, metrics."""

from __future__ import annotations

import asyncio
import json
from dataclasses import fields

import httpx
import pytest
from codeassist.serverkit.gateway.audit import AuditLog
from codeassist.serverkit.gateway.config import CLASS_FLOOR
from codeassist.serverkit.gateway.metrics import Registry, parse_nvidia_smi
from codeassist.serverkit.gateway.proxy import CompletionProxy
from codeassist.serverkit.gateway.queue import Rejected, Scheduler
from codeassist.serverkit.gateway.ratelimit import RateLimiter
from codeassist.serverkit.gateway.record import Reason, RequestRecord
from codeassist.serverkit.gateway.replicas import ReplicaPool
from codeassist.serverkit.gateway.state import GatewayState
from codeassist.serverkit.standin import StandinServer
from gwhelpers import body


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_refills_at_its_rate():
    clock = Clock()
    rl = RateLimiter(requests_per_minute=60, request_burst=2, tokens_per_minute=6000, now=clock)
    assert rl.check("a", 10) == 0 and rl.check("a", 10) == 0
    wait = rl.check("a", 10)
    assert 0.9 < wait <= 1.0
    assert rl.check("b", 10) == 0  # per user
    clock.t += 1.0
    assert rl.check("a", 10) == 0
    clock.t += 10
    assert rl.check("a", 6000) == 0 and rl.check("a", 100) == pytest.approx(1.0, abs=0.01)


async def test_scheduler_priority_then_round_robin_between_users():
    s = Scheduler(n_classes=3, max_inflight=1, max_queue=100, max_queue_per_user=100, quantum=100)
    await s.acquire("x", 0, 10)
    order: list[str] = []

    async def job(user: str, rank: int) -> None:
        await s.acquire(user, rank, 10)
        order.append(f"{user}{rank}")
        s.release()

    tasks = [asyncio.create_task(job("heavy", 2)) for _ in range(4)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(job("light", 2)), asyncio.create_task(job("urgent", 0))]
    await asyncio.sleep(0)
    assert s.queued == 6 and s.depth(2) == 5
    s.release()
    await asyncio.gather(*tasks)
    assert order[0] == "urgent0"
    assert order.index("light2") <= 2  # not behind the whole heavy flood
    assert s.inflight == 0 and s.queued == 0


async def test_scheduler_cancelled_waiter_leaves_no_trace():
    s = Scheduler(n_classes=1, max_inflight=1, max_queue=10, max_queue_per_user=10, timeout_s=5)
    await s.acquire("a", 0, 1)
    t = asyncio.create_task(s.acquire("b", 0, 1))
    await asyncio.sleep(0)
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    assert s.queued == 0
    s.release()
    assert s.inflight == 0


async def test_scheduler_rejects_when_full():
    s = Scheduler(n_classes=1, max_inflight=1, max_queue=1, max_queue_per_user=1, timeout_s=0.05)
    await s.acquire("a", 0, 1)
    with pytest.raises(Rejected) as e:
        await s.acquire("a", 0, 1)
    assert e.value.status == 503 and e.value.reason is Reason.QUEUE_TIMEOUT and e.value.retry_after >= 1
    assert e.value.message == "queued too long"
    t = asyncio.create_task(s.acquire("b", 0, 1))
    await asyncio.sleep(0)
    with pytest.raises(Rejected) as e:
        await s.acquire("c", 0, 1)
    assert e.value.status == 503 and e.value.reason is Reason.QUEUE_FULL
    s.release()
    await t
    assert s.inflight == 1


def test_replicas_least_outstanding_affinity_and_ejection():
    clock = Clock()
    pool = ReplicaPool(("http://a/v1", "http://b/v1", "http://c/v1"), slack=2, eject_after=2, eject_base_s=5, now=clock)
    a, b, c = pool.replicas
    a.outstanding, b.outstanding, c.outstanding = 3, 1, 2
    assert pool.pick() is b
    home = pool.pick("alice|main.py")
    assert all(pool.pick("alice|main.py") is home for _ in range(5))  # sticky
    homes = {pool.pick(f"user{i}|f.py").url for i in range(30)}
    assert len(homes) >= 2  # keys spread over replicas
    home.outstanding = 10  # overloaded: fall back to the least loaded
    assert pool.pick("alice|main.py") is min(pool.replicas, key=lambda r: r.outstanding)
    for r in pool.replicas:
        r.outstanding = 0
    pool.failed(a)
    assert a.available(clock())
    pool.failed(a)
    assert not a.available(clock()) and all(pool.pick(f"k{i}") is not a for i in range(20))
    clock.t += 5.1
    assert a.available(clock())
    pool.failed(a)
    pool.failed(a)
    assert a.ejected_until - clock() == pytest.approx(10)  # back-off doubles
    pool.succeeded(a)
    assert a.ejections == 0


async def test_dead_replica_is_skipped_and_ejected(keys, gateway_factory):
    from gwhelpers import auth, body

    with StandinServer() as live:
        dead = "http://127.0.0.1:9/v1"  # discard port: connection refused
        gw = gateway_factory(keys.config(upstreams=(dead, live.base_url), eject_after_failures=1))
        key = keys.add("r")
        async with httpx.AsyncClient(base_url=gw.url) as cl:
            rs = [await cl.post("/v1/completions", json=body(prompt=f"p{i}"), headers=auth(key)) for i in range(6)]
        assert [r.status_code for r in rs] == [200] * 6
        pool = gw.state.pool
        assert not pool.replicas[0].available(pool.now()) and pool.replicas[1].served == 6


def test_audit_log_rotates_by_size(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl", max_bytes=500, backups=2)
    for i in range(40):
        log.record(user="u1", status=200, latency_ms=i, prompt="SECRET PROMPT", key="ca-x.y")
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    text = "".join(p.read_text() for p in tmp_path.iterdir())
    assert "SECRET" not in text and "ca-x.y" not in text
    assert all(json.loads(line)["status"] == 200 for line in text.splitlines())


def test_metrics_render_and_gpu_parse():
    reg = Registry()
    reg.histogram("lat", "latency", ("class",))
    for v in (0.004, 0.02, 3.0, 100.0):
        reg.observe("lat", v, "interactive")
    text = reg.render()
    assert 'lat_bucket{class="interactive",le="0.005"} 1' in text
    assert 'lat_bucket{class="interactive",le="5.0"} 3' in text
    assert 'lat_bucket{class="interactive",le="+Inf"} 4' in text and 'lat_count{class="interactive"} 4' in text
    lines = parse_nvidia_smi("0, NVIDIA L4, 12, 2000, 23034, 40, [N/A]\n1, NVIDIA L4, 99, 1, 2, 3, 70.1\n")
    assert 'codeassist_gpu_memory_total_mib{gpu="0",name="NVIDIA L4"} 23034' in lines
    assert not any("power" in ln and 'gpu="0"' in ln for ln in lines)
    assert 'codeassist_gpu_power_watts{gpu="1",name="NVIDIA L4"} 70.1' in lines


@pytest.mark.parametrize("pepper", [b"", b"short", b"p" * 64, b"long" * 40])
def test_peppered_hmac_equals_hmac_sha256(pepper):
    import hashlib
    import hmac

    from codeassist.serverkit.gateway.keys import PepperedHmac

    mac = PepperedHmac(pepper)
    for msg in (b"", b"secret", b"x" * 200):
        assert mac.hexdigest(msg) == hmac.new(pepper, msg, hashlib.sha256).hexdigest()
    assert mac.hexdigest(b"a") != mac.hexdigest(b"b")  # the pads are copied, not consumed


async def test_the_upstream_gets_the_clients_json_with_vllms_priority(keys):
    """The client's own JSON goes upstream with vLLM's ``priority`` (and max_tokens when left out) added: appended
    to the body as it came, or re-encoded (a BOM, the client's own priority); a non-object is refused."""
    floor = CLASS_FLOOR["interactive"]
    sent = [
        b'{"prompt": "}{\\"priority\\"", "n": 1}  \n',  # looks like the end of an object inside the prompt
        b'\xef\xbb\xbf{"prompt": "p", "max_tokens": 2}',
        b'{"prompt": "p", "max_tokens": 2, "priority": 3}',  # the client's own: nudged within its class, at most +4
        b"[1]",
    ]
    with StandinServer() as up:
        key = keys.add("pri")
        st = GatewayState(keys.config(upstreams=(up.base_url,)))
        proxy = CompletionProxy(st)
        outs = [_Out() for _ in sent]
        for payload, out in zip(sent, outs, strict=True):
            await proxy.handle({b"authorization": f"Bearer {key}".encode()}, payload, out)
        await st.aclose()
    assert [o.status for o in outs] == [200, 200, 200, 400]
    assert up.stats.requests == [
        {"prompt": '}{"priority"', "n": 1, "priority": floor, "max_tokens": 16},
        {"prompt": "p", "max_tokens": 2, "priority": floor},
        {"prompt": "p", "max_tokens": 2, "priority": floor + min(max(3 - floor, 0), 4)},
    ]


def test_request_record_makes_the_audit_line_and_holds_no_prompt_or_key(tmp_path):
    names = {f.name for f in fields(RequestRecord)}
    assert not names & {"prompt", "messages", "payload", "body", "key", "authorization", "text", "completion"}
    rec = RequestRecord("interactive", 0.0, user="u-3f9a", key_id="kid1", model="m", prompt_tokens=12, cost=40)
    rec.refuse(Rejected(429, "rate limit exceeded", Reason.RATE_LIMITED, 3))
    assert rec.rejected and rec.status == 429
    done = RequestRecord(
        "chat",
        0.0,
        user="u-3f9a",
        key_id="kid1",
        model="m",
        prompt_tokens=7,
        status=200,
        replica="http://r1/v1",
        ttft_s=0.051234,
        latency_s=0.2104567,
        sse_events=4,
        bytes_out=300,
        completion_tokens=3,
        queue_wait_s=0.001,
    )
    anonymous = RequestRecord("interactive", 0.0)
    anonymous.refuse(Rejected(401, "invalid, revoked or expired API key", Reason.AUTH))
    log = AuditLog(tmp_path / "audit.jsonl")
    for r in (rec, done, anonymous):
        log.record(**r.audit_fields())
    log.close()
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert all(isinstance(e.pop("ts"), float) for e in entries)
    assert entries == [
        {
            "user": "u-3f9a",
            "key_id": "kid1",
            "model": "m",
            "class": "interactive",
            "status": 429,
            "prompt_tokens": 12,
            "reason": "rate_limit",
        },
        {
            "user": "u-3f9a",
            "key_id": "kid1",
            "model": "m",
            "class": "chat",
            "status": 200,
            "prompt_tokens": 7,
            "completion_tokens": 3,
            "latency_ms": 210.46,
            "ttft_ms": 51.23,
            "replica": "http://r1/v1",
        },
        {"class": "interactive", "status": 401, "reason": "auth"},  # no user before the key is verified
    ]
    assert '"reason":"rate_limit"' in lines[0]  # the code's value, not the enum's name


class _Out:
    """A Responder that keeps what it was sent."""

    gone = False

    def __init__(self) -> None:
        self.status: int | None = None
        self.json: dict | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.ended = False

    def send_json(self, status, payload, headers=()) -> None:
        self.status, self.json, self.headers = status, payload, list(headers)

    def start_stream(self, status, content_type, first, end) -> None:
        self.status, self.body, self.ended = status, first, end

    def stream(self, data, end) -> None:
        self.body += data
        self.ended = end

    def relaying(self, resp) -> None:
        pass

    def abort(self) -> None:
        self.gone = True


async def test_the_proxy_counts_events_and_accounts_each_request_once_from_its_record(keys, tmp_path):
    audit = tmp_path / "audit.jsonl"
    with StandinServer() as up:  # three tokens, then [DONE]
        key = keys.add("zoe")
        st = GatewayState(keys.config(upstreams=(up.base_url,), audit_file=audit, request_burst=1))
        proxy = CompletionProxy(st)
        headers = {b"authorization": f"Bearer {key}".encode()}
        payload = json.dumps(body(prompt="def SECRET_PROMPT():")).encode()
        ok, limited, anonymous, bad = _Out(), _Out(), _Out(), _Out()
        await proxy.handle(headers, payload, ok)
        await proxy.handle(headers, payload, limited)  # a burst of one request
        await proxy.handle({}, payload, anonymous)
        await proxy.handle({**headers, b"x-priority": b"urgent!"}, payload, bad)
        await st.aclose()
    assert ok.status == 200 and ok.ended and ok.body.endswith(b"data: [DONE]\n\n")
    assert ok.body.count(b"data: ") == 4  # three tokens and [DONE]: the events counted make 3 completion tokens
    assert limited.status == 429 and limited.json["error"]["type"] == "rate_limit"
    assert int(dict(limited.headers)[b"retry-after"]) >= 1
    assert anonymous.status == 401 and bad.status == 400 and bad.json["error"]["type"] == "bad_request"
    # One audit line a request, written from its record when it is over (the record's fields, as the wire has them).
    text = audit.read_text()
    assert "SECRET_PROMPT" not in text and key not in text and key.split(".")[1] not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert [(e["status"], e.get("reason")) for e in entries] == [
        (200, None),
        (429, Reason.RATE_LIMITED.value),
        (401, Reason.AUTH.value),
        (400, Reason.BAD_REQUEST.value),
    ]
    first = entries[0]
    assert first["completion_tokens"] == 3 and first["ttft_ms"] >= 0 and first["replica"] == up.base_url.rstrip("/")
    metrics = st.registry.render()
    assert 'codeassist_gateway_rejections_total{reason="rate_limit"} 1' in metrics
    assert 'codeassist_gateway_requests_total{class="interactive",status="200"} 1' in metrics
    assert "codeassist_gateway_completion_tokens_total 3" in metrics
    user = st.users[first["user"]]
    assert (user.requests, user.completed, user.rejected, user.completion_tokens) == (1, 1, 2, 3)
