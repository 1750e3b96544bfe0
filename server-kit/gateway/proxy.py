"""The completion path: auth, limits, admission, then an unbuffered SSE pass-through.

Transport-neutral: :meth:`CompletionProxy.handle` gets the parsed request head and body and answers
through a :class:`Responder` (the HTTP/1.1 connection of :mod:`.http1`). Upstream bytes go to the
client as they arrive (no re-framing, no parsing of events), handed over from the upstream socket's
callback by :meth:`UpstreamResponse.relay` without a task wake-up per chunk; on the way the proxy counts
the ``data:`` events and keeps the last two pieces (for the completion tokens). The response head is sent
only once the first upstream chunk is in, so a replica that fails before its first token can still be
answered with a proper status (or retried on another replica). A client that hangs up cancels the
request's task (the connection does that), which closes the upstream connection and so aborts the
request in vLLM.

Each request is one :class:`~.record.RequestRecord`, filled in by the stages (:meth:`~CompletionProxy._prepare`,
:meth:`~CompletionProxy._serve`, :meth:`~CompletionProxy._forward`); the audit line and the metrics are written
from it once, by :meth:`~CompletionProxy._account`. A refusal is a :class:`~.record.Rejected` with a
:class:`~.record.Reason`.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from typing import Any, NamedTuple, Protocol

from codeassist.serverkit.gateway.config import CLASS_FLOOR, CLASSES
from codeassist.serverkit.gateway.keys import KeyRecord
from codeassist.serverkit.gateway.record import Reason, Rejected, RequestRecord
from codeassist.serverkit.gateway.replicas import Replica
from codeassist.serverkit.gateway.state import GatewayState
from codeassist.serverkit.gateway.upstream import ClientStalled, UpstreamConnectError, UpstreamError, UpstreamResponse
from codeassist.serverkit.gateway.upstream_conn import Sink

__all__ = ["CompletionProxy", "Responder", "completion_tokens", "error_body"]

_RANK = {c: i for i, c in enumerate(CLASSES)}


class Responder(Protocol):
    """The client side of one request, as the proxy needs it."""

    gone: bool  # the client hung up

    def send_json(self, status: int, payload: dict[str, Any], headers: list[tuple[bytes, bytes]] = ...) -> None: ...

    def start_stream(self, status: int, content_type: bytes, first: bytes, end: bool) -> None:
        """The response head and its first body bytes; ``end``: there are no more."""

    def stream(self, data: bytes, end: bool) -> None:
        """More body bytes; ``end`` closes the body."""

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


class _Tally:
    """The relay's sink (:meth:`sink`): counts what an upstream response body brings (``data: `` occurrences,
    bytes, the last two pieces, where vLLM's usage event is), then hands it to the client's ``write``. Kept
    apart from the :class:`RequestRecord`, which holds counts only, never completion text."""

    __slots__ = ("bytes", "events", "last", "prev", "write")

    def __init__(self, write: Sink, first: bytes) -> None:
        self.write = write
        self.events, self.bytes, self.prev, self.last = first.count(b"data: "), len(first), b"", first

    def sink(self, data: bytes, end: bool) -> None:  # (a bound method: cheaper per chunk than __call__)
        if data:
            self.events += data.count(b"data: ")
            self.bytes += len(data)
            self.prev, self.last = self.last, data
        self.write(data, end)

    def tokens(self) -> int | None:
        return completion_tokens(self.events, self.prev + self.last)


def _with_priority(body: bytes, prio: int, extra: bytes = b"") -> bytes | None:
    """The client's own JSON object with ``"priority"`` (and ``extra`` members, ``b',"k":v'``) added before its
    closing brace: no re-encoding of the prompt. Only for a non-empty UTF-8 object without that key (else None:
    the caller re-encodes)."""
    end = body.rstrip()
    if not end.endswith(b"}") or not body.lstrip().startswith(b"{"):
        return None
    return b'%s,"priority":%d%s}' % (end[:-1], prio, extra)


_MAX_N = 64  # n / best_of above this -> 400


def _bad(message: str) -> Rejected:
    return Rejected(400, message, Reason.BAD_REQUEST)


def _integer(req: dict[str, Any], name: str, lo: int, hi: int) -> int | None:
    """``req[name]`` as an int within [lo, hi] (None when absent); a JSON number that is not a finite integer,
    or anything else, is refused."""
    v = req.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _bad(f"{name} must be an integer")
    if isinstance(v, float):
        if not math.isfinite(v) or not v.is_integer():
            raise _bad(f"{name} must be an integer")
        v = int(v)
    if not lo <= v <= hi:
        raise _bad(f"{name} must be between {lo} and {hi}")
    return v


class _Outbound(NamedTuple):
    """What goes to the upstream for an admitted request (the prompt is in here, never in the record)."""

    user: str  # the user's pseudonym (the scheduler's fair-share key)
    payload: bytes  # the body to send: the client's, with vLLM's priority (and max_tokens when left out)
    affinity: str  # the replica affinity key (user + the client's x-affinity-key, or the prompt's start)


class CompletionProxy:
    def __init__(self, state: GatewayState, default_class: str = "interactive", path: str = "/completions") -> None:
        self.state, self.default_class, self.path = state, default_class, path
        # What a request without max_tokens is charged, and sent with (so that what runs is what was charged):
        # the completions API's own default; for chat, vLLM's is the rest of the context, so the gateway's.
        self.default_max_tokens = 16 if path == "/completions" else state.cfg.default_max_tokens

    async def handle(self, headers: dict[bytes, bytes], body: bytes | None, out: Responder) -> None:
        """One request; ``body`` is None when it was over ``max_body_bytes`` (answered 413 after auth)."""
        rec = RequestRecord(self.default_class, time.perf_counter())
        try:
            try:
                fwd = self._prepare(headers, body, rec)
                rec.admitted = True
                self.state.users[fwd.user].requests += 1
                await self._serve(out, fwd, rec)
            except Rejected as r:
                rec.refuse(r)
                extra = [(b"retry-after", str(r.retry_after).encode())] if r.retry_after is not None else []
                out.send_json(r.status, error_body(r.message, r.reason.value, r.status), extra)
            except asyncio.CancelledError:
                if not out.gone:
                    raise
                # The client hung up (the connection cancelled us): accounted below, nothing left to answer.
            finally:
                if out.gone and rec.admitted:
                    rec.client_gone = True
                    if not rec.rejected:
                        rec.end(499, Reason.CLIENT_DISCONNECT)
        finally:
            self._account(rec)

    # -- checks before the upstream ----------------------------------------------------------
    def _auth(self, headers: dict[bytes, bytes]) -> KeyRecord | None:
        keys = self.state.keys
        if keys is None:
            return None
        auth = headers.get(b"authorization")
        key = keys.verify(auth.decode("latin-1") if auth else None)
        if key is None:
            raise Rejected(401, "invalid, revoked or expired API key", Reason.AUTH)
        return key

    def _prepare(self, headers: dict[bytes, bytes], body: bytes | None, rec: RequestRecord) -> _Outbound:
        """Auth, the body's checks and the rate limit: fills in who, the class, the model and the cost of ``rec``;
        returns what to send upstream, else raises :class:`Rejected`."""
        st = self.state
        key = self._auth(headers)
        uid = st.user_id(key.user) if key else "anonymous"
        rec.user, rec.key_id = uid, key.key_id if key else None
        if body is None:
            raise Rejected(413, f"request body over {st.cfg.max_body_bytes} bytes", Reason.TOO_LARGE)
        rec.bytes_in = len(body)
        try:
            req, cls, cost, payload, prompt_tokens = self._parse(body, headers, key)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            msg = f"bad request body: {type(exc).__name__}: {str(exc)[:200]}"
            raise _bad(msg) from None
        model = req.get("model")
        rec.model, rec.prompt_tokens, rec.cls, rec.cost = model[:128] if model else None, prompt_tokens, cls, cost
        try:
            affinity = headers.get(b"x-affinity-key", b"").decode("latin-1")[:256] or None
            affinity = f"{uid}|{affinity}" if affinity else f"{uid}|{str(req.get('prompt', ''))[:256]}"
        except (ValueError, TypeError, RecursionError) as exc:
            raise _bad(f"bad request: {type(exc).__name__}") from None
        wait = st.limiter.check(
            uid, cost, key.requests_per_minute if key else None, key.tokens_per_minute if key else None
        )
        if wait > 0:
            raise Rejected(429, "rate limit exceeded", Reason.RATE_LIMITED, int(st.limiter.retry_after(wait)))
        return _Outbound(uid, payload, affinity)

    def _parse(
        self, body: bytes, headers: dict[bytes, bytes], key: KeyRecord | None
    ) -> tuple[dict[str, Any], str, int, bytes, int]:
        """The parsed body, its class, its cost in tokens, the body to send upstream (with vLLM's priority, and
        max_tokens when the client left it out), and the estimated prompt tokens.

        The cost is what the request may make vLLM do: the prompt (≈ 4 characters a token) plus the most
        tokens it may generate, times the completions per prompt (``n``, ``best_of``) and the prompts."""
        req = json.loads(body)
        if not isinstance(req, dict):
            raise ValueError("not an object")
        splice = bool(req) and "priority" not in req  # the body can be sent as it came, with members appended
        model = req.get("model")
        if model is not None and not isinstance(model, str):
            raise _bad("model must be a string")
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
            raise _bad(f"x-priority must be one of {', '.join(CLASSES)}")
        cap = _RANK[key.max_class] if key else 0
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

    # -- the upstream ------------------------------------------------------------------------
    async def _serve(self, out: Responder, fwd: _Outbound, rec: RequestRecord) -> None:
        """Wait for an upstream slot (the scheduler's :class:`Rejected` when none comes), then forward."""
        st = self.state
        await st.scheduler.acquire(fwd.user, _RANK[rec.cls], rec.cost)
        rec.queue_wait_s = time.perf_counter() - rec.t0
        try:
            await self._forward(out, fwd, rec)
        finally:
            st.scheduler.release()

    async def _open(self, fwd: _Outbound, rec: RequestRecord) -> tuple[Replica, UpstreamResponse, bytes]:
        """Send to a replica and wait for its first chunk; tries each live replica once on connect errors."""
        st = self.state
        tried: tuple[Replica, ...] = ()
        deadline = rec.t0 + st.cfg.first_token_timeout_s
        while True:
            rep = st.pool.pick(fwd.affinity, tried)
            if rep is None:
                raise Rejected(503, "no upstream replica available", Reason.NO_UPSTREAM, 5)
            tried = (*tried, rep)
            rep.outstanding += 1
            resp: UpstreamResponse | None = None
            try:
                resp = await st.client.stream(
                    "POST",
                    rep.url + self.path,
                    fwd.payload,
                    _JSON_HEADERS,
                    first_body=True,
                    within=deadline - time.perf_counter(),
                )
                first = await resp.next_chunk()  # already in: no wait
                return rep, resp, first
            except TimeoutError:
                rep.outstanding -= 1
                rec.upstream_errors += ((rep.url, "timeout"),)
                if resp is not None:
                    resp.close()
                raise Rejected(504, "upstream did not answer in time", Reason.UPSTREAM_TIMEOUT, 1) from None
            except UpstreamError as exc:
                rep.outstanding -= 1
                st.pool.failed(rep)
                rec.upstream_errors += ((rep.url, "connect" if isinstance(exc, UpstreamConnectError) else "protocol"),)
                if resp is not None:
                    resp.close()
                if len(tried) >= len(st.pool.replicas):
                    raise Rejected(502, "upstream unreachable", Reason.UPSTREAM_UNREACHABLE, 2) from None
            except BaseException:
                rep.outstanding -= 1
                if resp is not None:
                    resp.close()
                raise

    async def _forward(self, out: Responder, fwd: _Outbound, rec: RequestRecord) -> None:
        st = self.state
        rep, resp, first = await self._open(fwd, rec)
        rec.replica = rep.url
        tally: _Tally | None = None
        try:
            rec.ttft_s = time.perf_counter() - rec.t0
            if resp.status_code >= 500:
                st.pool.failed(rep)
            rec.status = resp.status_code
            ended = resp.ended  # the whole body is in: it goes out with the head in one write
            ctype = resp.headers.get("content-type", "application/json")
            out.start_stream(resp.status_code, ctype.encode("latin-1"), first, ended)
            tally = _Tally(out.stream, first)
            if not ended:
                out.relaying(resp)
                try:
                    await resp.relay(tally.sink)
                except ClientStalled:  # the client took nothing for the write timeout: cut off, slot freed
                    rec.end(499, Reason.CLIENT_STALLED)
                    out.abort()
                except (UpstreamError, TimeoutError) as exc:  # upstream died or went silent mid-stream
                    st.pool.failed(rep)
                    rec.upstream_errors += ((rep.url, "timeout" if isinstance(exc, TimeoutError) else "protocol"),)
                    rec.end(502, Reason.UPSTREAM_DIED)
                    if ctype.startswith("text/event-stream"):  # (not counted: the gateway's event, not a token)
                        out.stream(sse_error("upstream failed mid-stream"), True)
                    else:  # a plain body (stream: false) cannot carry an error: cut off, never a whole-looking 200
                        out.abort()
                finally:
                    out.relaying(None)
            if rec.status < 500:
                st.pool.succeeded(rep)
        finally:
            rep.outstanding -= 1
            resp.close()  # back to the pool when read to the end; otherwise closed, which aborts it in vLLM
            if tally is not None:
                rec.sse_events, rec.bytes_out, rec.completion_tokens = tally.events, tally.bytes, tally.tokens()

    # -- the one place a request is written down -------------------------------------------------
    def _account(self, rec: RequestRecord) -> None:
        """The audit line, the metrics and the user's figures, all from ``rec`` (once, when it is over)."""
        st, reg = self.state, self.state.registry
        rec.latency_s = latency = time.perf_counter() - rec.t0
        status = 500 if rec.status is None else rec.status  # nothing decided: a failure of ours
        cls = rec.cls
        if rec.rejected and rec.reason is not None:
            st.reject(rec.reason.value, rec.user)
        for url, kind in rec.upstream_errors:
            reg.inc("codeassist_gateway_upstream_errors_total", url, kind)
        if rec.queue_wait_s is not None:
            reg.observe("codeassist_gateway_queue_wait_seconds", rec.queue_wait_s, cls)
        if rec.ttft_s is not None:
            reg.observe("codeassist_gateway_ttft_seconds", rec.ttft_s, cls)
        reg.inc("codeassist_gateway_requests_total", cls, str(status))
        reg.observe("codeassist_gateway_request_seconds", latency, cls)
        u = st.users["anonymous" if rec.user is None else rec.user]
        if rec.client_gone:
            u.disconnected += 1
        u.by_status[str(status)] = u.by_status.get(str(status), 0) + 1
        if status == 200:
            u.completed += 1
            u.prompt_tokens += rec.prompt_tokens or 0
            u.completion_tokens += rec.completion_tokens or 0
            reg.inc("codeassist_gateway_completion_tokens_total", by=rec.completion_tokens or 0)
        elif status >= 500:
            u.errors += 1
        u.latency_ms_sum += latency * 1000
        st.audit.record(**rec.audit_fields())
        if st.usage is not None and rec.user is not None:  # the pseudonym and numbers only
            st.usage.record_request(
                rec.user,
                status,
                latency,
                rec.ttft_s,
                rec.queue_wait_s,
                rec.prompt_tokens or 0,
                rec.completion_tokens or 0,
            )
