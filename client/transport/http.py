"""Streaming ``/v1/completions`` over one pooled httpx client (keep-alive)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
from codeassist.client.priority import VALUE as PRIORITY_VALUE
from codeassist.client.transport.base import CompletionParams, StreamChunk, TransportError

__all__ = ["HttpTransport"]

log = logging.getLogger(__name__)


class _Dropped(Exception):
    """The connection broke (read/write/protocol error), as opposed to a refused connect."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class HttpTransport:
    """One ``httpx.AsyncClient`` shared by every editor the daemon serves.

    Cancelling the task that iterates :meth:`stream` leaves the ``async with`` block, which closes the
    response and its connection, so the server (and through the gateway, vLLM) sees the disconnect and
    frees the slot.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        connect_timeout: float = 1.0,
        first_token_timeout: float = 5.0,
        total_timeout: float = 15.0,
        verify: bool | str = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.first_token_timeout = first_token_timeout
        self.total_timeout = total_timeout
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(connect=connect_timeout, read=total_timeout, write=5.0, pool=5.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16, keepalive_expiry=60),
            verify=verify,
        )

    async def models(self) -> list[str]:
        try:
            resp = await self._client.get("/models")
        except httpx.HTTPError as exc:
            raise TransportError("connect", f"cannot reach {self.base_url}: {exc!r}") from None
        if resp.status_code in (401, 403):
            raise TransportError("auth", "the server refused the API token", resp.status_code)
        if resp.status_code != 200:
            raise TransportError("http", f"/models answered {resp.status_code}", resp.status_code)
        try:
            return [m["id"] for m in resp.json().get("data", [])]
        except (ValueError, KeyError, TypeError) as exc:
            raise TransportError("protocol", f"unexpected /models body: {exc}") from None

    async def slots(self) -> int | None:
        """llama-server's slot count (``/props`` at the server's root), only for a server on this machine: the
        developer's own, whose slots the engine may pin documents to; a shared server's slots are everyone's.
        0: none to pin (another machine's server, or not llama-server); None: not known now (unreachable, or
        loading: ask again)."""
        from codeassist.client.auth import is_loopback  # auth imports this module's package: not at import time

        if not is_loopback(urlsplit(self.base_url).hostname or ""):
            return 0
        try:
            resp = await self._client.get(self.base_url.removesuffix("/v1") + "/props", timeout=1.0)
        except httpx.HTTPError:
            return None
        if resp.status_code >= 500:  # llama-server answers 503 while its model loads
            return None
        try:
            n = resp.json().get("total_slots") if resp.status_code == 200 else 0
        except (ValueError, AttributeError):
            return 0
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 0

    def _body(self, params: CompletionParams) -> dict[str, object]:
        body: dict[str, object] = {
            "model": params.model,
            "prompt": params.prompt,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "stream": True,
            # vLLM honours it with --scheduling-policy priority (lower runs first).
            "priority": PRIORITY_VALUE.get(params.priority, 0),
        }
        if params.stop:
            body["stop"] = list(params.stop)
        body.update(params.extra)
        return body

    async def stream(
        self, params: CompletionParams, timings: dict[str, float] | None = None
    ) -> AsyncIterator[StreamChunk]:
        """The completion's chunks; ``timings`` (the caller's) gets headers_ms, ttft_ms and total_ms."""
        # A pooled keep-alive connection the server (or an SSH tunnel) already closed fails with a read or
        # protocol error before any byte: that says nothing about the endpoint, so try once more on a fresh
        # connection before calling it unreachable. A refused or timed-out connect is final at once.
        timing = timings if timings is not None else {}
        for attempt in (1, 2):
            yielded = False
            try:
                async with contextlib.aclosing(self._stream_once(params, timing)) as chunks:  # closes the response now
                    async for chunk in chunks:
                        yielded = True
                        yield chunk
                return
            except _Dropped as exc:
                if yielded or attempt == 2:
                    raise TransportError("connect", f"cannot reach {self.base_url}: {exc.cause!r}") from None
                log.info("connection to %s dropped before an answer (%r); retrying once", self.base_url, exc.cause)

    async def _stream_once(self, params: CompletionParams, timing: dict[str, float]) -> AsyncIterator[StreamChunk]:
        start = time.perf_counter()
        timing.clear()
        deadline = start + self.total_timeout
        headers = {"x-priority": params.priority}
        try:
            async with self._client.stream("POST", "/completions", json=self._body(params), headers=headers) as resp:
                timing["headers_ms"] = (time.perf_counter() - start) * 1000
                if resp.headers.get("server", "").startswith("llama.cpp"):
                    # its own request fields apply from the first answer, even one closed before its timings
                    timing["server_llama"] = 1.0
                if resp.status_code != 200:
                    detail = (await resp.aread())[:300].decode("utf-8", "replace")
                    kind = "auth" if resp.status_code in (401, 403) else "http"
                    raise TransportError(kind, f"server answered {resp.status_code}: {detail}", resp.status_code)
                lines = resp.aiter_lines()
                first = True
                done = False
                while True:
                    budget = deadline - time.perf_counter()
                    if first:
                        budget = min(budget, start + self.first_token_timeout - time.perf_counter())
                    if budget <= 0:
                        raise TimeoutError
                    line = await asyncio.wait_for(anext(lines), timeout=budget)
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        # Read on to the end of the body so the connection goes back to the pool.
                        done = True
                        continue
                    if done:
                        continue
                    chunk = _parse_event(data, timing)
                    if chunk is None:
                        continue
                    if first:
                        timing["ttft_ms"] = (time.perf_counter() - start) * 1000
                        first = False
                    yield chunk
        except StopAsyncIteration:
            pass
        except TimeoutError:
            kind = "first_token_timeout" if "ttft_ms" not in timing else "total_timeout"
            raise TransportError(kind, f"{kind.replace('_', ' ')} from {self.base_url}") from None
        except httpx.ConnectTimeout as exc:
            raise TransportError("connect", f"cannot reach {self.base_url}: {exc!r}") from None
        except httpx.TimeoutException as exc:
            raise TransportError("total_timeout", f"timeout talking to {self.base_url}: {exc!r}") from None
        except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
            raise TransportError("connect", f"cannot reach {self.base_url}: {exc!r}") from None
        except httpx.TransportError as exc:
            raise _Dropped(exc) from None
        finally:
            timing["total_ms"] = (time.perf_counter() - start) * 1000

    def connections(self) -> int:
        """How many connections the keep-alive pool holds now (busy or idle); 0 if httpx's pool can't be seen."""
        pool = getattr(getattr(self._client, "_transport", None), "_pool", None)
        return len(getattr(pool, "connections", ()))

    async def aclose(self) -> None:
        await self._client.aclose()


# llama-server's per-answer ``timings`` -> the caller's timings, for client/server_speed.py
_SERVER_TIMINGS = {
    "prompt_n": "server_prompt_n",
    "cache_n": "server_cache_n",
    "prompt_ms": "server_prompt_ms",
    "predicted_n": "server_predicted_n",
    "predicted_ms": "server_predicted_ms",
}


def _parse_event(data: str, timing: dict[str, float]) -> StreamChunk | None:
    try:
        event = json.loads(data)
    except ValueError:
        raise TransportError("protocol", f"bad SSE event: {data[:80]!r}") from None
    if not isinstance(event, dict):
        raise TransportError("protocol", f"bad SSE event: {data[:80]!r}")
    if "error" in event:
        err = event["error"]
        msg = err.get("message", err) if isinstance(err, dict) else err
        raise TransportError("http", f"server error in stream: {msg}")
    _server_timings(event, timing)
    choices = event.get("choices") or []
    if not choices:
        return None
    choice = choices[0]
    return StreamChunk(text=choice.get("text") or "", finish_reason=choice.get("finish_reason"))


def _server_timings(event: dict[str, object], timing: dict[str, float]) -> None:
    """What the server says about its own work: llama-server's ``timings``, else OpenAI ``usage`` (cached
    tokens where the server reports them, as vLLM does with ``--enable-prompt-tokens-details``)."""
    reported = event.get("timings")
    if isinstance(reported, dict):
        timing["server_llama"] = 1.0  # llama.cpp's own answer format: its request fields apply
        for key, name in _SERVER_TIMINGS.items():
            value = reported.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                timing[name] = float(value)
        return
    usage = event.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        if isinstance(cached, int):
            timing["server_cache_n"] = float(cached)
            timing["server_prompt_n"] = float(usage["prompt_tokens"] - cached)
