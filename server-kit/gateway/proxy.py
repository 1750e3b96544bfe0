"""The completion path as a raw ASGI app: auth, limits, admission, then an unbuffered SSE pass-through.

Upstream bytes go to the client chunk by chunk as they arrive (no re-framing, no parsing of events).
The response head is sent only once the first upstream chunk is in, so a replica that fails before its
first token can still be answered with a proper status (or retried on another replica). A watcher on
``receive()`` cancels the work the moment the client hangs up, which closes the upstream connection
and so aborts the request in vLLM.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from codeassist.serverkit.gateway.config import CLASS_FLOOR, CLASSES
from codeassist.serverkit.gateway.keys import KeyRecord, user_hash
from codeassist.serverkit.gateway.queue import Rejected
from codeassist.serverkit.gateway.replicas import Replica
from codeassist.serverkit.gateway.state import GatewayState
from codeassist.serverkit.gateway.upstream import UpstreamConnectError, UpstreamError, UpstreamResponse

__all__ = ["CompletionProxy", "completion_tokens", "send_json"]

_RANK = {c: i for i, c in enumerate(CLASSES)}
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]


async def send_json(send: Any, status: int, payload: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def _error(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code}}


def sse_error(message: str, code: int = 502) -> bytes:
    return b"data: " + json.dumps(_error(message, "upstream_error", code)).encode() + b"\n\ndata: [DONE]\n\n"


_JSON_HEADERS = {"content-type": "application/json"}
_USAGE = re.compile(rb'"usage"\s*:\s*\{[^{}]*"completion_tokens"\s*:\s*(\d+)')


def completion_tokens(events: int, last: bytes) -> int | None:
    """Tokens streamed: vLLM's ``usage`` when the stream carries it (its last event before ``[DONE]`` with
    ``stream_options.include_usage``), else one per ``data:`` event less the closing ``[DONE]``.
    No per-chunk JSON parsing: events are counted with ``bytes.count``; only the last two chunks are searched."""
    found = _USAGE.findall(last) if b'"usage"' in last else None
    if found:
        return int(found[-1])
    return max(0, events - 1) if events else None


class _Refuse(Exception):
    def __init__(self, status: int, message: str, reason: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.reason, self.retry_after = status, message, reason, retry_after


class CompletionProxy:
    def __init__(self, state: GatewayState, default_class: str = "interactive", path: str = "/completions") -> None:
        self.state, self.default_class, self.path = state, default_class, path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        st = self.state
        t0 = time.perf_counter()
        headers = dict(scope["headers"])
        rec: KeyRecord | None = None
        audit: dict[str, Any] = {"class": self.default_class}
        try:
            rec = self._auth(headers)
            uid = user_hash(st.cfg.pepper, rec.user) if rec else "anonymous"
            audit.update(user=uid, key_id=rec.key_id if rec else None)
            body = await self._read_body(headers, receive)
            req, cls, cost = self._prepare(body, headers, rec)
            audit.update(model=req.get("model"), prompt_tokens=cost - int(req.get("max_tokens") or 16))
            audit["class"] = cls
            wait = st.limiter.check(uid, cost, rec.requests_per_minute if rec else None,
                                    rec.tokens_per_minute if rec else None)
            if wait > 0:
                raise _Refuse(429, "rate limit exceeded", "rate_limit", int(st.limiter.retry_after(wait)))
        except _Refuse as r:
            await self._refuse(send, r, audit, t0)
            return
        st.users[uid].requests += 1
        payload = json.dumps(req).encode()
        affinity = headers.get(b"x-affinity-key", b"").decode() or None
        affinity = f"{uid}|{affinity}" if affinity else f"{uid}|{str(req.get('prompt', ''))[:256]}"

        # The work runs in this (the server's) task; a watcher task cancels it the moment the client hangs up,
        # which closes the upstream connection. Cheaper than a second task per request plus asyncio.wait.
        task = asyncio.current_task()
        assert task is not None
        gone = done = False

        def hung_up(w: asyncio.Future[None]) -> None:
            nonlocal gone
            if not done and not w.cancelled() and w.exception() is None:
                gone = True
                task.cancel()

        watch = asyncio.ensure_future(self._watch_disconnect(receive))
        watch.add_done_callback(hung_up)
        try:
            await self._serve(send, payload, cls, cost, uid, affinity, audit, t0)
        except asyncio.CancelledError:
            if not gone:
                raise
            task.uncancel()
        finally:
            done = True  # the end of the response also ends receive(): not a hang-up
            watch.cancel()
            if gone:
                audit.update(status=499, reason="client_disconnect")
                st.users[uid].disconnected += 1
            self._finish(audit, t0)

    @staticmethod
    async def _watch_disconnect(receive: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return

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

    async def _read_body(self, headers: dict[bytes, bytes], receive: Any) -> bytes:
        limit = self.state.cfg.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _Refuse(413, f"request body over {limit} bytes", "too_large")
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise _Refuse(499, "client went away", "client_disconnect")
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Refuse(413, f"request body over {limit} bytes", "too_large")
            chunks.append(chunk)
            if not msg.get("more_body"):
                return b"".join(chunks)

    def _prepare(self, body: bytes, headers: dict[bytes, bytes],
                 rec: KeyRecord | None) -> tuple[dict[str, Any], str, int]:
        try:
            req = json.loads(body)
            if not isinstance(req, dict):
                raise ValueError("not an object")
            max_tokens = int(req.get("max_tokens") or 16)
            client_prio = int(req.get("priority") or 0)
        except (ValueError, TypeError) as exc:
            raise _Refuse(400, f"bad request body: {exc}", "bad_request") from None
        asked = headers.get(b"x-priority", b"").decode("latin-1").strip().lower() or self.default_class
        if asked not in _RANK:
            raise _Refuse(400, f"x-priority must be one of {', '.join(CLASSES)}", "bad_request")
        cap = _RANK[rec.max_class] if rec else 0
        cls = CLASSES[max(_RANK[asked], cap)]  # a key cannot ask for more urgency than it is allowed
        floor = CLASS_FLOOR[cls]
        req["priority"] = floor + min(max(client_prio - floor, 0), 4)  # vLLM: lower runs first
        prompt = req.get("prompt") or req.get("messages") or ""
        cost = len(prompt if isinstance(prompt, str) else json.dumps(prompt)) // 4 + max_tokens
        return req, cls, cost

    async def _refuse(self, send: Any, r: _Refuse, audit: dict[str, Any], t0: float) -> None:
        st = self.state
        st.reject(r.reason, audit.get("user"))
        audit.update(status=r.status, reason=r.reason)
        if r.status != 499:
            extra = [(b"retry-after", str(r.retry_after).encode())] if r.retry_after is not None else []
            await send_json(send, r.status, _error(r.message, r.reason, r.status), extra)
        self._finish(audit, t0)

    # -- the upstream ------------------------------------------------------------------------
    async def _serve(self, send: Any, payload: bytes, cls: str, cost: int, uid: str, affinity: str,
                     audit: dict[str, Any], t0: float) -> None:
        st = self.state
        try:
            await st.scheduler.acquire(uid, _RANK[cls], cost)
        except Rejected as rj:
            await self._refuse(send, _Refuse(rj.status, rj.reason, "queue_full" if rj.status != 503 or "full"
                                             in rj.reason else "queue_timeout", rj.retry_after), audit, t0)
            return
        st.registry.observe("codeassist_gateway_queue_wait_seconds", time.perf_counter() - t0, cls)
        try:
            await self._forward(send, payload, cls, uid, affinity, audit, t0)
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
                async with asyncio.timeout(max(0.001, deadline - time.perf_counter())):
                    resp = await st.client.stream("POST", rep.url + self.path, payload, _JSON_HEADERS)
                    first = await resp.next_chunk()
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

    async def _forward(self, send: Any, payload: bytes, cls: str, uid: str, affinity: str,
                       audit: dict[str, Any], t0: float) -> None:
        st = self.state
        try:
            rep, resp, first = await self._open(payload, affinity, t0)
        except _Refuse as r:
            await self._refuse(send, r, audit, t0)
            return
        audit["replica"] = rep.url
        events = 0
        prev = last = b""
        try:
            ttft = time.perf_counter() - t0
            audit["ttft_ms"] = round(ttft * 1000, 2)
            st.registry.observe("codeassist_gateway_ttft_seconds", ttft, cls)
            if resp.status_code >= 500:
                st.pool.failed(rep)
            ctype = resp.headers.get("content-type", "application/json").encode("latin-1")
            hdrs = _SSE_HEADERS if ctype.startswith(b"text/event-stream") else [(b"content-type", ctype)]
            await send({"type": "http.response.start", "status": resp.status_code, "headers": hdrs})
            audit["status"] = resp.status_code
            chunk = first
            more = True
            try:
                while chunk:
                    events += chunk.count(b"data: ")
                    prev, last = last, chunk
                    more = not resp.ended  # the last chunk goes out with the chunked terminator: one write less
                    await send({"type": "http.response.body", "body": chunk, "more_body": more})
                    if not more:
                        break
                    chunk = await resp.next_chunk()
            except (UpstreamError, TimeoutError) as exc:  # upstream died or went silent mid-stream
                st.pool.failed(rep)
                kind = "timeout" if isinstance(exc, TimeoutError) else "protocol"
                st.registry.inc("codeassist_gateway_upstream_errors_total", rep.url, kind)
                audit.update(status=502, reason="upstream_died_mid_stream")
                await send({"type": "http.response.body", "body": sse_error("upstream failed mid-stream"),
                            "more_body": True})
                more = True
            if more:
                await send({"type": "http.response.body", "body": b""})
            if audit["status"] < 500:
                st.pool.succeeded(rep)
        finally:
            rep.outstanding -= 1
            resp.close()  # back to the pool when read to the end; otherwise closed, which aborts it in vLLM
            audit["completion_tokens"] = completion_tokens(events, prev + last if prev else last)

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
