"""Acceptance counters to the team's gateway: aggregate counts only, never code, file names or prompts.

When the gateway the daemon uses announces that it collects them (``GET …/v1/codeassist/telemetry`` answers
200 with ``"collect": true``), the daemon tells the user once (one ``window/showMessage`` to the editors; a
gateway already announced is remembered in the state dir), then every few minutes sends the deltas of
:data:`REPORTED` since its last report (``POST`` to the same URL, with the user's key). ``telemetry = false`` in
the user's config (or ``CODEASSIST_TELEMETRY=false``) turns it off: nothing is asked or sent.

What is sent is built here from :class:`~codeassist.client.stats.SessionStats` counts — a dict of integers —
so nothing else can go with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from typing import Any, Protocol

import httpx
from codeassist.client import auth, paths
from codeassist.client.tasks import cancel_and_wait

__all__ = ["INTERVAL_ENV", "REPORTED", "Telemetry"]

log = logging.getLogger(__name__)

REPORTED = ("shown", "accepted", "partially_accepted", "accepted_chars", "typed_through", "cancelled")
INTERVAL_ENV = "CODEASSIST_TELEMETRY_INTERVAL"  # seconds between reports (tests); default: the gateway's ask
DEFAULT_INTERVAL_S = 300.0
MIN_INTERVAL_S = 60.0  # a gateway cannot ask for more often than this
RECHECK_S = 3600.0  # a gateway that does not collect is asked again after this long
NOTICE_FILE = "telemetry-notices.json"


class _Daemon(Protocol):  # what the telemetry task uses of the daemon
    config: Any
    engine: Any
    transport: Any
    connections: dict[int, Any]

    def broadcast(self, method: str, params: dict[str, Any]) -> None: ...


def _override_interval() -> float | None:
    raw = os.environ.get(INTERVAL_ENV)
    try:
        return max(0.05, float(raw)) if raw else None
    except ValueError:
        return None


class Telemetry:
    def __init__(self, daemon: _Daemon, interval_s: float | None = None) -> None:
        self.daemon = daemon
        self.interval_s = interval_s if interval_s is not None else _override_interval()
        self.sent: dict[str, int] = dict.fromkeys(REPORTED, 0)  # counts as of the last report that was taken
        self.reports = 0
        self.collecting: str | None = None  # the telemetry URL that collects (None: none found yet)
        self.told = False  # the user was told (now or by an earlier daemon): reports may go
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    # -- where and with what key -------------------------------------------------------------------
    def _target(self) -> tuple[str, str | None] | None:
        """(telemetry URL, key) of the endpoint in use (else the first configured one)."""
        tr = self.daemon.transport
        ep = tr.current
        if ep is None:
            eps = tr.endpoints()
            if not eps:
                return None
            ep = eps[0]
        cfg = self.daemon.config
        stored = auth.get_token(ep.url)
        if stored is None and getattr(ep, "kind", "") == "tunnel":
            stored = auth.get_token(cfg.server_url)
        token = stored.token if stored is not None else None
        if token is not None and not auth.may_send_key(ep.url, cfg.allow_insecure_http):
            token = None
        return ep.url.rstrip("/") + "/codeassist/telemetry", token

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(5.0), verify=auth.ssl_verify(self.daemon.config.ca_bundle)
            )
        return self._client

    def _headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    # -- the notice, once per gateway ---------------------------------------------------------------
    def _notice_path(self):
        return paths.state_dir() / NOTICE_FILE

    def _noticed(self, url: str) -> bool:
        with contextlib.suppress(OSError, ValueError):
            return url in json.loads(self._notice_path().read_text())
        return False

    def _note_noticed(self, url: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            try:
                seen = list(json.loads(self._notice_path().read_text()))
            except (OSError, ValueError):
                seen = []
            self._notice_path().write_text(json.dumps([*seen, url][-50:]))

    def _tell(self, url: str) -> bool:
        """The one editor message; False while no editor is connected to see it (nothing is sent before)."""
        if self._noticed(url):
            return True
        if not self.daemon.connections:
            return False
        from codeassist.client.config import user_config_file

        self.daemon.broadcast(
            "window/showMessage",
            {
                "type": 3,
                "message": "codeassist: your team's server collects usage counts (completions shown and "
                "accepted, accepted characters), sent every few minutes with your key — never code, file "
                f"names or prompts. To turn it off: telemetry = false in {user_config_file()}.",
            },
        )
        self._note_noticed(url)
        self.sent = self.counts()  # from the notice on: nothing counted before it is sent
        return True

    # -- the loop ---------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        c = self.daemon.engine.stats.counts
        return {name: int(c.get(name, 0)) for name in REPORTED}

    async def check(self) -> float | None:
        """Ask the gateway whether it collects; the interval it asks for, or None."""
        target = self._target()
        if target is None:
            return None
        url, token = target
        try:
            resp = await self._http().get(url, headers=self._headers(token))
            info = resp.json() if resp.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return None
        if not isinstance(info, dict) or info.get("collect") is not True:
            return None
        self.collecting = url
        asked = info.get("interval_s")
        return max(MIN_INTERVAL_S, float(asked)) if isinstance(asked, int | float) else DEFAULT_INTERVAL_S

    async def report(self) -> bool:
        """Send the deltas since the last report; True when the gateway took them."""
        target = self._target()
        if target is None or self.collecting is None:
            return False
        url, token = target
        if url != self.collecting:  # the user switched servers: ask the new one (and tell the user) first
            self.collecting, self.told = None, False
            return False
        now = self.counts()
        delta = {k: max(0, now[k] - self.sent[k]) for k in REPORTED}
        if not any(delta.values()):
            return True
        try:
            resp = await self._http().post(url, json={"counters": delta}, headers=self._headers(token))
        except httpx.HTTPError as exc:
            log.debug("telemetry report failed: %r", exc)
            return False
        if resp.status_code != 200:
            if resp.status_code == 404:
                self.collecting = None  # the gateway stopped collecting
            return False
        self.sent = now
        self.reports += 1
        return True

    def enabled(self) -> bool:
        return bool(getattr(self.daemon.config, "telemetry", True))

    async def run(self) -> None:
        asked: float | None = None
        while True:
            wait = self.interval_s or asked or DEFAULT_INTERVAL_S
            if not self.enabled():
                self.collecting, self.told = None, False
                self.sent = self.counts()  # what was counted while off is never sent
                await asyncio.sleep(wait)
                continue
            if self.collecting is None:
                asked = await self.check()
                if self.collecting is None:
                    await asyncio.sleep(self.interval_s or RECHECK_S)
                    continue
                wait = self.interval_s or asked or DEFAULT_INTERVAL_S
            if not self.told:
                self.told = self._tell(self.collecting)
            if self.told:
                await self.report()
            await asyncio.sleep(wait)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._guarded())

    async def _guarded(self) -> None:
        try:
            await self.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # telemetry must never take the daemon down
            log.exception("telemetry stopped")

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self.enabled() and self.told and self.collecting is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.report(), 2.0)  # the last counts before the daemon exits
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None
