"""The completion path: auth, limits, admission, then an unbuffered SSE pass-through.

Transport-neutral: :meth:`CompletionProxy.handle` gets the parsed request head and body and answers
through a :class:`Responder` (the HTTP/1.1 connection of :mod:`.http1`). Upstream bytes go to the
client as they arrive (no re-framing, no parsing of events), handed over from the upstream socket's
callback by :meth:`UpstreamResponse.relay` without a task wake-up per chunk. The response head is sent
only once the first upstream chunk is in, so a replica that fails before its first token can still be
answered with a proper status (or retried on another replica). A client that hangs up cancels the
request's task (the connection does that), which closes the upstream connection and so aborts the
request in vLLM.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from typing import Any, Protocol

from codeassist.serverkit.gateway.config import CLASS_FLOOR, CLASSES
from codeassist.serverkit.gateway.keys import KeyRecord
from codeassist.serverkit.gateway.queue import Rejected
from codeassist.serverkit.gateway.replicas import Replica
from codeassist.serverkit.gateway.state import GatewayState
from codeassist.serverkit.gateway.upstream import ClientStalled, UpstreamConnectError, UpstreamError, UpstreamResponse

__all__ = ["CompletionProxy", "Responder", "completion_tokens", "error_body"]

_RANK = {c: i for i, c in enumerate(CLASSES)}


class Responder(Protocol):
    """The client side of one request, as the proxy needs it."""

    gone: bool  # the client hung up
    # What went out in the current response body (counted where the bytes are written, so that the relay's
    # per-chunk path is one call): "data: " occurrences, and the last two pieces written.
    events: int
    prev: bytes
    last: bytes

    def send_json(self, status: int, payload: dict[str, Any], headers: list[tuple[bytes, bytes]] = ...) -> None: ...

    def start_stream(self, status: int, content_type: bytes, first: bytes, end: bool) -> None:
        """The response head and its first body bytes (which restart the counts); ``end``: there are no more."""

    def stream(self, data: bytes, end: bool) -> None:
        """More body bytes (the relay sink, counted); ``end`` closes the body."""

    def relaying(self, resp: UpstreamResponse | None) -> None:
        """The upstream response whose reading to pause while the client's buffer is full."""

    def abort(self) -> None:
        """Drop the client connection at once (a response that cannot be finished properly)."""


def error_body(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code}}


def sse_error(message: str, code: int = 502) -> bytes:
    return b"data: " + json.dumps(error_body(message, "upstream_error", code)).encode() + b"\n\ndata: [DONE]\n\n"


_JSON_HEADERS = b"content-type: application/json\r\n"
_USAGE = re.compile(rb'"usage"\s*:\s*\{[^{}]*"completion_tokens"\s*:\s*(\d+)')


def completion_tokens(events: int, last: bytes) -> int | None:
    """Tokens streamed: vLLM's ``usage`` when the stream carries it (its last event before ``[DONE]`` with
    ``stream_options.include_usage``), else one per ``data:`` event less the closing ``[DONE]``.
    No per-chunk JSON parsing: events are counted with ``bytes.count``; only the last two chunks are searched."""
    found = _USAGE.findall(last) if b'"usage"' in last else None
    if found:
        return int(found[-1])
    return max(0, events - 1) if events else None


def _with_priority(body: bytes, prio: int, extra: bytes = b"") -> bytes | None:
    """The client's own JSON object with ``"priority"`` (and ``extra`` members, ``b',"k":v'``) added before its
    closing brace: no re-encoding of the prompt. Only for a non-empty UTF-8 object without that key (else None:
    the caller re-encodes)."""
    end = body.rstrip()
    if not end.endswith(b"}") or not body.lstrip().startswith(b"{"):
        return None
    return b'%s,"priority":%d%s}' % (end[:-1], prio, extra)


_MAX_N = 64  # n / best_of above this -> 400


def _integer(req: dict[str, Any], name: str, lo: int, hi: int) -> int | None:
    """``req[name]`` as an int within [lo, hi] (None when absent); a JSON number that is not a finite integer,
    or anything else, is refused."""
    v = req.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _Refuse(400, f"{name} must be an integer", "bad_request")
    if isinstance(v, float):
        if not math.isfinite(v) or not v.is_integer():
            raise _Refuse(400, f"{name} must be an integer", "bad_request")
        v = int(v)
    if not lo <= v <= hi:
        raise _Refuse(400, f"{name} must be between {lo} and {hi}", "bad_request")
    return v


class _Refuse(Exception):
    def __init__(self, status: int, message: str, reason: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.reason, self.retry_after = status, message, reason, retry_after


class CompletionProxy:
    def __init__(self, state: GatewayState, default_class: str = "interactive", path: str = "/completions") -> None:
        self.state, self.default_class, self.path = state, default_class, path
        # What a request without max_tokens is charged, and sent with (so that what runs is what was charged):
        # the completions API's own default; for chat, vLLM's is the rest of the context, so the gateway's.
        self.default_max_tokens = 16 if path == "/completions" else state.cfg.default_max_tokens

    async def handle(self, headers: dict[bytes, bytes], body: bytes | None, out: Responder) -> None:
        """One request; ``body`` is None when it was over ``max_body_bytes`` (answered 413 after auth)."""
        st = self.state
        t0 = time.perf_counter()
        rec: KeyRecord | None = None
        audit: dict[str, Any] = {"class": self.default_class}
        try:
            rec = self._auth(headers)
            uid = st.user_id(rec.user) if rec else "anonymous"
            audit.update(user=uid, key_id=rec.key_id if rec else None)
            if body is None:
                raise _Refuse(413, f"request body over {st.cfg.max_body_bytes} bytes", "too_large")
            req, cls, cost, payload, prompt_tokens = self._prepare(body, headers, rec)
            model = req.get("model")
            audit.update(model=model[:128] if model else None, prompt_tokens=prompt_tokens)
            audit["class"] = cls
            try:
                affinity = headers.get(b"x-affinity-key", b"").decode("latin-1")[:256] or None
                affinity = f"{uid}|{affinity}" if affinity else f"{uid}|{str(req.get('prompt', ''))[:256]}"
            except (ValueError, TypeError, RecursionError) as exc:
                raise _Refuse(400, f"bad request: {type(exc).__name__}", "bad_request") from None
            wait = st.limiter.check(uid, cost, rec.requests_per_minute if rec else None,
                                    rec.tokens_per_minute if rec else None)
            if wait > 0:
                raise _Refuse(429, "rate limit exceeded", "rate_limit", int(st.limiter.retry_after(wait)))
        except _Refuse as r:
            self._refuse(out, r, audit, t0)
            return
        st.users[uid].requests += 1
        try:
            await self._serve(out, payload, cls, cost, uid, affinity, audit, t0)
        except asyncio.CancelledError:
            if not out.gone:
                raise
            # The client hung up (the connection cancelled us): accounted below, nothing left to answer.
        finally:
            if out.gone:
                audit.update(status=499, reason="client_disconnect")
                st.users[uid].disconnected += 1
            self._finish(audit, t0)

    # -- checks before the upstream ----------------------------------------------------------
    def _auth(self, headers: dict[bytes, bytes]) -> KeyRecord | None:
        keys = self.state.keys
        if keys is None:
            return None
        auth = headers.get(b"authorization")
        rec = keys.verify(auth.decode("latin-1") if auth else None)
        if rec is None:
            raise _Refuse(401, "invalid, revoked or expired API key", "auth")
        return rec

    def _prepare(self, body: bytes, headers: dict[bytes, bytes],
                 rec: KeyRecord | None) -> tuple[dict[str, Any], str, int, bytes, int]:
        """The parsed body, its class, its cost in tokens, the body to send upstream (with vLLM's priority, and
        max_tokens when the client left it out), and the estimated prompt tokens.

        The cost is what the request may make vLLM do: the prompt (≈ 4 characters a token) plus the most
        tokens it may generate, times the completions per prompt (``n``, ``best_of``) and the prompts."""
        try:
            return self._prepare_checked(body, headers, rec)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise _Refuse(400, f"bad request body: {type(exc).__name__}: {str(exc)[:200]}", "bad_request") from None

    def _prepare_checked(self, body: bytes, headers: dict[bytes, bytes],
                         rec: KeyRecord | None) -> tuple[dict[str, Any], str, int, bytes, int]:
        req = json.loads(body)
        if not isinstance(req, dict):
            raise ValueError("not an object")
        splice = bool(req) and "priority" not in req  # the body can be sent as it came, with members appended
        model = req.get("model")
        if model is not None and not isinstance(model, str):
            raise _Refuse(400, "model must be a string", "bad_request")
        limit = self.state.cfg.max_tokens_limit
        max_tokens = _integer(req, "max_tokens", 1, limit)
        max_completion = _integer(req, "max_completion_tokens", 1, limit)
        client_prio = _integer(req, "priority", -(1 << 63), 1 << 63) or 0
        copies = max(_integer(req, "n", 1, _MAX_N) or 1, _integer(req, "best_of", 1, _MAX_N) or 1)
        extra = b""
        if max_tokens is None and max_completion is None:
            max_tokens = self.default_max_tokens
            req["max_tokens"] = max_tokens
            extra = b',"max_tokens":%d' % max_tokens
        most = max(max_tokens or 0, max_completion or 0)
        asked = headers.get(b"x-priority", b"").decode("latin-1").strip().lower() or self.default_class
        if asked not in _RANK:
            raise _Refuse(400, f"x-priority must be one of {', '.join(CLASSES)}", "bad_request")
        cap = _RANK[rec.max_class] if rec else 0
        cls = CLASSES[max(_RANK[asked], cap)]  # a key cannot ask for more urgency than it is allowed
        floor = CLASS_FLOOR[cls]
        prio = floor + min(max(client_prio - floor, 0), 4)  # vLLM: lower runs first
        payload = _with_priority(body, prio, extra) if splice else None
        req["priority"] = prio
        if payload is None:
            payload = json.dumps(req).encode()
        prompt = req.get("prompt") or req.get("messages") or ""
        prompts = 1  # a completions prompt may be a list of prompts (strings or token lists), each run n times
        if "prompt" in req and isinstance(prompt, list) and prompt and isinstance(prompt[0], str | list):
            prompts = len(prompt)
        prompt_tokens = len(prompt if isinstance(prompt, str) else json.dumps(prompt)) // 4
        cost = prompt_tokens + most * copies * prompts
        return req, cls, cost, payload, prompt_tokens

    def _refuse(self, out: Responder, r: _Refuse, audit: dict[str, Any], t0: float) -> None:
        st = self.state
        st.reject(r.reason, audit.get("user"))
        audit.update(status=r.status, reason=r.reason)
        extra = [(b"retry-after", str(r.retry_after).encode())] if r.retry_after is not None else []
        out.send_json(r.status, error_body(r.message, r.reason, r.status), extra)
        self._finish(audit, t0)

    # -- the upstream ------------------------------------------------------------------------
    async def _serve(self, out: Responder, payload: bytes, cls: str, cost: int, uid: str, affinity: str,
                     audit: dict[str, Any], t0: float) -> None:
        st = self.state
        try:
            await st.scheduler.acquire(uid, _RANK[cls], cost)
        except Rejected as rj:
            self._refuse(out, _Refuse(rj.status, rj.reason, "queue_full" if rj.status != 503 or "full"
                                      in rj.reason else "queue_timeout", rj.retry_after), audit, t0)
            return
        st.registry.observe("codeassist_gateway_queue_wait_seconds", time.perf_counter() - t0, cls)
        try:
            await self._forward(out, payload, cls, affinity, audit, t0)
        finally:
            st.scheduler.release()

    async def _open(self, payload: bytes, affinity: str, t0: float) -> tuple[Replica, UpstreamResponse, bytes]:
        """Send to a replica and wait for its first chunk; tries each live replica once on connect errors."""
        st = self.state
        tried: tuple[Replica, ...] = ()
        deadline = t0 + st.cfg.first_token_timeout_s
        while True:
            rep = st.pool.pick(affinity, tried)
            if rep is None:
                raise _Refuse(503, "no upstream replica available", "no_upstream", 5)
            tried = (*tried, rep)
            rep.outstanding += 1
            resp: UpstreamResponse | None = None
            try:
                resp = await st.client.stream("POST", rep.url + self.path, payload, _JSON_HEADERS, first_body=True,
                                              within=deadline - time.perf_counter())
                first = await resp.next_chunk()  # already in: no wait
                return rep, resp, first
            except TimeoutError:
                rep.outstanding -= 1
                st.registry.inc("codeassist_gateway_upstream_errors_total", rep.url, "timeout")
                if resp is not None:
                    resp.close()
                raise _Refuse(504, "upstream did not answer in time", "upstream_timeout", 1) from None
            except UpstreamError as exc:
                rep.outstanding -= 1
                st.pool.failed(rep)
                kind = "connect" if isinstance(exc, UpstreamConnectError) else "protocol"
                st.registry.inc("codeassist_gateway_upstream_errors_total", rep.url, kind)
                if resp is not None:
                    resp.close()
                if len(tried) >= len(st.pool.replicas):
                    raise _Refuse(502, "upstream unreachable", "upstream_error", 2) from None
            except BaseException:
                rep.outstanding -= 1
                if resp is not None:
                    resp.close()
                raise

    async def _forward(self, out: Responder, payload: bytes, cls: str, affinity: str,
                       audit: dict[str, Any], t0: float) -> None:
        st = self.state
        try:
            rep, resp, first = await self._open(payload, affinity, t0)
        except _Refuse as r:
            self._refuse(out, r, audit, t0)
            return
        audit["replica"] = rep.url
        tokens: int | None = None
        started = False
        try:
            ttft = time.perf_counter() - t0
            audit["ttft_ms"] = round(ttft * 1000, 2)
            st.registry.observe("codeassist_gateway_ttft_seconds", ttft, cls)
            if resp.status_code >= 500:
                st.pool.failed(rep)
            audit["status"] = resp.status_code
            ended = resp.ended  # the whole body is in: it goes out with the head in one write
            out.start_stream(resp.status_code, resp.headers.get("content-type", "application/json").encode("latin-1"),
                             first, ended)
            started = True
            if not ended:
                out.relaying(resp)
                try:
                    await resp.relay(out.stream)
                except ClientStalled:  # the client took nothing for the write timeout: cut off, slot freed
                    tokens = completion_tokens(out.events, out.prev + out.last)
                    audit.update(status=499, reason="client_stalled")
                    out.abort()
                except (UpstreamError, TimeoutError) as exc:  # upstream died or went silent mid-stream
                    tokens = completion_tokens(out.events, out.prev + out.last)  # before the error event
                    st.pool.failed(rep)
                    kind = "timeout" if isinstance(exc, TimeoutError) else "protocol"
                    st.registry.inc("codeassist_gateway_upstream_errors_total", rep.url, kind)
                    audit.update(status=502, reason="upstream_died_mid_stream")
                    if resp.headers.get("content-type", "").startswith("text/event-stream"):
                        out.stream(sse_error("upstream failed mid-stream"), True)
                    else:  # a plain body (stream: false) cannot carry an error: cut off, never a whole-looking 200
                        out.abort()
                finally:
                    out.relaying(None)
            if audit["status"] < 500:
                st.pool.succeeded(rep)
        finally:
            rep.outstanding -= 1
            resp.close()  # back to the pool when read to the end; otherwise closed, which aborts it in vLLM
            if tokens is None and started:
                tokens = completion_tokens(out.events, out.prev + out.last)
            audit["completion_tokens"] = tokens

    def _finish(self, audit: dict[str, Any], t0: float) -> None:
        if audit.get("finished"):
            return
        audit["finished"] = True
        st = self.state
        latency = time.perf_counter() - t0
        status = int(audit.get("status", 500))
        cls = str(audit.get("class"))
        st.registry.inc("codeassist_gateway_requests_total", cls, str(status))
        st.registry.observe("codeassist_gateway_request_seconds", latency, cls)
        u = st.users[str(audit.get("user", "anonymous"))]
        u.by_status[str(status)] = u.by_status.get(str(status), 0) + 1
        if status == 200:
            u.completed += 1
            u.prompt_tokens += int(audit.get("prompt_tokens") or 0)
            u.completion_tokens += int(audit.get("completion_tokens") or 0)
            st.registry.inc("codeassist_gateway_completion_tokens_total", by=int(audit.get("completion_tokens") or 0))
        elif status >= 500:
            u.errors += 1
        u.latency_ms_sum += latency * 1000
        audit["latency_ms"] = round(latency * 1000, 2)
        st.audit.record(**audit)
