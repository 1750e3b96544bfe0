"""Fallback across endpoints: try them in the configured order, remember the one that works.

``FallbackTransport`` is a :class:`~codeassist.client.transport.base.Transport` over one
``HttpTransport`` per endpoint (``default`` = ``server_url`` with the stored key, ``tunnel`` = the SSH
tunnel's local port, other names from ``[endpoints]``). When the current endpoint cannot be reached it
probes the next ones; when none answers it goes *down*: requests then fail at once (an empty
completion, never a hang), the daemon is told once, and a background task re-probes every
``probe_interval`` seconds until one answers again. While on a lower-priority endpoint it also
re-probes the preferred ones (every 5 intervals) and moves back when they answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from codeassist.client import auth
from codeassist.client.config import Config
from codeassist.client.tasks import cancel_and_wait
from codeassist.client.transport.base import CompletionParams, StreamChunk, TransportError
from codeassist.client.transport.http import HttpTransport

__all__ = ["Endpoint", "FallbackTransport", "resolve_endpoints"]

log = logging.getLogger(__name__)

# Errors that mean "this endpoint is unusable", not "this request failed".
FAILOVER_KINDS = frozenset({"connect", "auth"})
Notify = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    kind: str = "direct"  # direct | tunnel


def resolve_endpoints(config: Config, tunnel_url: str | None = None) -> list[Endpoint]:
    """The endpoints to try, in order. A running tunnel is appended when the order does not name it."""
    out: list[Endpoint] = []
    names = list(config.fallback or ["default"])
    if tunnel_url and "tunnel" not in names:
        names.append("tunnel")
    for name in names:
        if name == "default":
            out.append(Endpoint("default", config.server_url.rstrip("/")))
        elif name == "tunnel":
            url = tunnel_url or f"http://127.0.0.1:{config.tunnel_local_port}/v1"
            out.append(Endpoint("tunnel", url, "tunnel"))
        elif name in config.endpoints:
            out.append(Endpoint(name, config.endpoints[name].rstrip("/")))
        elif name.startswith(("http://", "https://")):
            out.append(Endpoint(name, name.rstrip("/")))
        else:
            log.warning("fallback names unknown endpoint %r (not in [endpoints]); skipped", name)
    seen: set[str] = set()
    return [e for e in out if not (e.url in seen or seen.add(e.url))]


class FallbackTransport:
    def __init__(
        self,
        config: Config,
        tunnel_url: Callable[[], str | None] = lambda: None,
        tunnel_up: Callable[[], bool] = lambda: False,
        notify: Notify | None = None,
        tunnel_pending: Callable[[], bool] = lambda: False,
    ) -> None:
        self.config = config
        self._slots_of: str | None = None  # the endpoint whose slot count the engine pins documents to
        self._tunnel_url = tunnel_url
        self._tunnel_up = tunnel_up
        # True while the tunnel's first connection attempt is still running: not an outage yet.
        self._tunnel_pending = tunnel_pending
        self._notify = notify
        self._clients: dict[str, HttpTransport] = {}
        self.current: Endpoint | None = None
        self.down = False
        self.down_since: float | None = None
        self.last_probe = 0.0
        self.errors: dict[str, str] = {}
        self._probe_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # -- endpoints -------------------------------------------------------------------------------
    def endpoints(self) -> list[Endpoint]:
        return resolve_endpoints(self.config, self._tunnel_url())

    def client(self, ep: Endpoint) -> HttpTransport:
        t = self._clients.get(ep.url)
        if t is None:
            stored = auth.get_token(ep.url)
            if stored is None and ep.kind == "tunnel":  # the tunnel usually leads to the same gateway
                stored = auth.get_token(self.config.server_url)
            if stored is not None and not auth.may_send_key(ep.url, self.config.allow_insecure_http):
                log.warning(
                    "not sending the API key to %s: plain http to another host "
                    "(use https, a tunnel, or allow_insecure_http = true in your own config)",
                    ep.url,
                )
                self.errors[ep.name] = "API key withheld: plain http:// to another host"
                stored = None
            t = self._clients[ep.url] = HttpTransport(
                ep.url,
                token=stored.token if stored else None,
                connect_timeout=self.config.connect_timeout,
                first_token_timeout=self.config.first_token_timeout,
                total_timeout=self.config.total_timeout,
                verify=auth.ssl_verify(self.config.ca_bundle),
            )
        return t

    async def reload(self) -> None:
        """Drop the clients (new key after `codeassist login`) and probe again."""
        old, self._clients = self._clients, {}
        for t in old.values():
            with contextlib.suppress(Exception):
                await t.aclose()
        self.current = None
        self.last_probe = 0.0

    def status(self) -> dict[str, Any]:
        return {
            "state": "down" if self.down else ("up" if self.current else "unknown"),
            "endpoint": self.current.name if self.current else None,
            "url": self.current.url if self.current else None,
            "order": [{"name": e.name, "url": e.url} for e in self.endpoints()],
            "down_since": self.down_since,
            "errors": dict(self.errors),
        }

    def _emit(self, event: str, **params: Any) -> None:
        if self._notify is not None:
            try:
                self._notify(event, params)
            except Exception:
                log.exception("connectivity notification failed")

    def tunnel_changed(self, state: str) -> None:
        """The supervised tunnel went up or down: re-select soon instead of waiting for a failure."""
        if state == "up" and (self.down or self.current is None):
            self.last_probe = 0.0
            if self._task is not None:
                asyncio.get_running_loop().create_task(self.probe())
        elif state != "up" and self.current is not None and self.current.kind == "tunnel":
            self.current = None

    # -- probing ---------------------------------------------------------------------------------
    async def _probe(self, ep: Endpoint) -> bool:
        if ep.kind == "tunnel" and not self._tunnel_up():
            self.errors[ep.name] = "tunnel not up"
            return False
        try:
            await self.client(ep).models()
        except TransportError as exc:
            self.errors[ep.name] = f"{exc.kind}: {exc}"
            return False
        self.errors.pop(ep.name, None)
        return True

    async def probe(self, candidates: list[Endpoint] | None = None) -> Endpoint | None:
        """Probe in order; the first that answers becomes current. Sets or clears the down state."""
        async with self._probe_lock:
            self.last_probe = time.monotonic()
            for ep in candidates if candidates is not None else self.endpoints():
                if await self._probe(ep):
                    self._use(ep)
                    return ep
            if (candidates is None or not self.current) and not self._tunnel_pending():
                self._go_down()
            elif candidates is None:
                self.current = None
            return None

    def _use(self, ep: Endpoint) -> None:
        was_down, previous = self.down, self.current
        self.current, self.down, self.down_since = ep, False, None
        if was_down or previous is None or previous.url != ep.url:
            log.info("using endpoint %s (%s)%s", ep.name, ep.url, " again" if was_down else "")
            self._emit("up", endpoint=ep.name, url=ep.url, recovered=was_down)

    def _go_down(self) -> None:
        self.current = None
        if self.down:
            return
        self.down, self.down_since = True, time.time()
        summary = "; ".join(f"{n}: {e}" for n, e in self.errors.items()) or "no endpoint configured"
        log.warning("no endpoint reachable: %s", summary)
        self._emit(
            "down",
            message=f"codeassist: no completion server reachable ({summary}). "
            "Completions are off until it answers; run `codeassist doctor`.",
        )

    async def _select(self, exclude: set[str]) -> Endpoint:
        if self.current is not None and self.current.name not in exclude:
            return self.current
        if self.down and not exclude and time.monotonic() - self.last_probe < self.config.probe_interval:
            raise TransportError("connect", "no completion server reachable (re-probing in the background)")
        candidates = [e for e in self.endpoints() if e.name not in exclude]
        ep = await self.probe(candidates) if candidates else None
        if ep is None:
            if (exclude or not candidates) and not self._tunnel_pending():
                self._go_down()
            raise TransportError(
                "connect",
                "no completion server reachable: "
                + ("; ".join(f"{n}: {e}" for n, e in self.errors.items()) or "none configured"),
            )
        return ep

    def _failed(self, ep: Endpoint, exc: TransportError) -> None:
        self.errors[ep.name] = f"{exc.kind}: {exc}"
        log.warning("endpoint %s failed: %s", ep.name, exc.kind)
        if self.current is not None and self.current.name == ep.name:
            self.current = None

    # -- Transport ---------------------------------------------------------------------------------
    async def models(self) -> list[str]:
        tried: set[str] = set()
        while True:
            ep = await self._select(tried)
            try:
                return await self.client(ep).models()
            except TransportError as exc:
                if exc.kind not in FAILOVER_KINDS:
                    raise
                self._failed(ep, exc)
                tried.add(ep.name)

    async def slots(self) -> int | None:
        try:
            ep = await self._select(set())
        except TransportError:
            return None
        self._slots_of = ep.name
        if ep.kind == "tunnel":  # this machine's port, another machine's (maybe shared) server
            return 0
        return await self.client(ep).slots()

    async def stream(
        self, params: CompletionParams, timings: dict[str, Any] | None = None
    ) -> AsyncIterator[StreamChunk]:
        tried: set[str] = set()
        while True:
            ep = await self._select(tried)
            t = self.client(ep)
            started = False
            stale = "id_slot" in params.extra and ep.name != self._slots_of  # counted on another endpoint's slots
            if stale:
                params = replace(params, extra={k: v for k, v in params.extra.items() if k != "id_slot"})
            try:
                async with contextlib.aclosing(t.stream(params, timings)) as chunks:
                    async for chunk in chunks:
                        started = True
                        yield chunk
                return
            except TransportError as exc:
                if started or exc.kind not in FAILOVER_KINDS:
                    raise
                self._failed(ep, exc)
                tried.add(ep.name)
            finally:
                if timings is not None:
                    timings["endpoint"] = ep.name
                    if stale:
                        timings["slots_stale"] = 1.0  # the engine asks again (the transport clears timings)

    # -- background ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._probe_loop(), name="endpoint-probe")

    async def _probe_loop(self) -> None:
        interval = max(0.1, self.config.probe_interval)
        ticks = 0
        await self.probe()
        while True:
            await asyncio.sleep(interval)
            ticks += 1
            try:
                if self.down or self.current is None:
                    await self.probe()
                elif ticks % 5 == 0:
                    order = self.endpoints()
                    better = next((i for i, e in enumerate(order) if e.url == self.current.url), len(order))
                    if better > 0:
                        await self.probe(order[:better])
            except Exception:
                log.exception("background probe failed")

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        for t in self._clients.values():
            with contextlib.suppress(Exception):
                await t.aclose()
        self._clients.clear()
