"""The gateway's routes other than the completions: a Starlette app over a :class:`GatewayState`.

/health, /metrics, /stats, /v1/models and /v1/codeassist/telemetry (GET: 200 when this gateway collects the
daemons' acceptance counters; POST, with the user's key: a report of counter deltas, numbers only, kept in
the usage store under the user's pseudonym). Who sees what: ``/health`` answers only ``{"status": "ok"}`` (200)
or ``{"status": "upstream_unavailable"}`` (503), to anyone; ``/stats`` needs a key and shows that key's user
only, everyone's (and the replicas) to an admin key; ``/metrics`` (replica URLs, GPU and load figures) is
served to loopback clients that no proxy forwarded, and to admin keys from anywhere. The completion routes
(``POST /v1/completions`` and ``/v1/chat/completions``) are served by :class:`~.proxy.CompletionProxy`
straight from the HTTP/1.1 connection (see :mod:`.http1` and :mod:`.server`); this app only sees the rest,
through :mod:`.asgi_bridge`.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import time
from dataclasses import asdict
from typing import Any

from codeassist.serverkit.gateway import dashboard
from codeassist.serverkit.gateway.keys import KeyRecord
from codeassist.serverkit.gateway.state import GatewayState
from codeassist.serverkit.gateway.upstream import UpstreamError
from codeassist.serverkit.gateway.usage_store import CLIENT_COUNTERS
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["create_app"]


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        {"error": {"message": "invalid, revoked or expired API key", "type": "auth", "code": 401}}, status_code=401
    )


def _forbidden() -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "message": "needs an admin key (server-kit keys add NAME --admin)",
                "type": "forbidden",
                "code": 403,
            }
        },
        status_code=403,
    )


# A reverse proxy on this host (the Caddy of `--write-caddy`) connects from loopback and names its client in
# one of these; such a request is not local.
_FORWARDED = ("x-forwarded-for", "forwarded", "x-real-ip")


def is_local(request: Request) -> bool:
    """A loopback peer that no proxy forwarded."""
    if request.client is None or any(h in request.headers for h in _FORWARDED):
        return False
    try:
        ip = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _bearer(header: str | None) -> str | None:
    """A Basic header (the browser's prompt; the key is the password) as the Bearer header keys verify."""
    if header and header[:6].lower() == "basic ":
        try:
            _, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return f"Bearer {secret}"
    return header


_NO_AUTH = KeyRecord("", "anonymous", "", admin=True)  # --no-auth (loopback only): nothing to hide


def create_app(state: GatewayState) -> Starlette:
    cfg = state.cfg

    def caller(request: Request) -> KeyRecord | None:
        """The key's record (None: no valid key)."""
        if state.keys is None:
            return _NO_AUTH
        return state.keys.verify(request.headers.get("authorization"))

    def authorized(request: Request) -> bool:
        return caller(request) is not None

    async def health(request: Request) -> Response:
        async def probe(root: str) -> bool:
            try:
                status, _ = await state.client.request("GET", f"{root}/health", timeout=2.0)
                return status == 200
            except (UpstreamError, TimeoutError):
                return False

        # Unauthenticated, so nothing but the verdict: replica URLs and load are in /metrics and /stats.
        ok = any(await asyncio.gather(*(probe(r) for r in cfg.upstream_roots)))
        return JSONResponse({"status": "ok" if ok else "upstream_unavailable"}, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        if not is_local(request):
            rec = caller(request)
            if rec is None:
                return _unauthorized()
            if not rec.admin:
                return _forbidden()
        text = state.registry.render() + await state.upstream_metrics.render()
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def stats(request: Request) -> Response:
        rec = caller(request)
        if rec is None:
            return _unauthorized()
        if rec.admin:
            rows = list(state.users.items())
        else:  # the caller's own row only, found by its pseudonym (not created when absent)
            uid = state.user_id(rec.user)
            rows = [(uid, state.users[uid])] if uid in state.users else []
        users: dict[str, Any] = {}
        for uid, u in rows:
            d = asdict(u)
            d["mean_latency_ms"] = round(u.latency_ms_sum / max(1, sum(u.by_status.values())), 2)
            users[uid] = d
        if not rec.admin:
            return JSONResponse({"users": users})
        return JSONResponse(
            {
                "users": users,
                "inflight": state.scheduler.inflight,
                "queued": state.scheduler.queued,
                "replicas": [
                    {
                        "url": r.url,
                        "outstanding": r.outstanding,
                        "served": r.served,
                        "ejected": not r.available(state.pool.now()),
                    }
                    for r in state.pool.replicas
                ],
            }
        )

    async def models(request: Request) -> Response:
        if not authorized(request):
            return _unauthorized()
        rep = state.pool.pick()
        if rep is None:
            return JSONResponse({"error": {"message": "no upstream", "code": 503}}, status_code=503)
        try:
            status, content = await state.client.request("GET", f"{rep.url}/models", timeout=5.0)
        except (UpstreamError, TimeoutError):
            return JSONResponse({"error": {"message": "upstream unreachable", "code": 502}}, status_code=502)
        return Response(content, status_code=status, media_type="application/json")

    async def telemetry_info(request: Request) -> Response:
        """200 when this gateway collects the daemons' acceptance counters (the daemon asks once)."""
        if not authorized(request):
            return _unauthorized()
        if state.usage is None or not cfg.collect_telemetry:
            return JSONResponse({"collect": False}, status_code=404)
        state.registry.inc("codeassist_team_checks_total")
        return JSONResponse(
            {"collect": True, "interval_s": cfg.telemetry_interval_s, "counters": list(CLIENT_COUNTERS)}
        )

    async def telemetry_post(request: Request) -> Response:
        rec = caller(request)
        if rec is None:
            return _unauthorized()
        if state.usage is None or not cfg.collect_telemetry:
            return JSONResponse({"collect": False}, status_code=404)
        try:
            body = json.loads(await request.body())
            counters = body["counters"]
            if not isinstance(counters, dict):
                raise TypeError("counters must be an object")
            kept = state.usage.record_client(state.user_id(rec.user), counters)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            return JSONResponse(
                {"error": {"message": f"bad report: {type(exc).__name__}: {str(exc)[:120]}", "code": 400}},
                status_code=400,
            )
        state.registry.inc("codeassist_team_reports_total")
        for name, v in kept.items():
            if v:
                state.registry.inc(f"codeassist_team_{name}_total", by=v)
        return JSONResponse({"ok": True})

    async def dashboard_page(request: Request) -> Response:
        """The team dashboard: an admin key (Bearer, or Basic with the key as password: the browser asks), or
        a loopback client that presents no key."""
        header = request.headers.get("authorization")
        if header is not None or not is_local(request):
            if state.keys is None:
                rec: KeyRecord | None = _NO_AUTH
            else:
                rec = state.keys.verify(_bearer(header))
            if rec is None:
                resp = _unauthorized()
                resp.headers["www-authenticate"] = 'Basic realm="codeassist dashboard"'
                return resp
            if not rec.admin:
                return _forbidden()
        if state.usage is None:
            return PlainTextResponse("no usage store (the gateway runs without a state dir)", status_code=404)
        try:
            days = int(request.query_params.get("days", "7"))
        except ValueError:
            days = 7
        names = None
        if request.query_params.get("names") == "1" and state.keys is not None:
            names = {state.user_id(u): u for u in state.keys.users()}
        upstream_text = await state.upstream_metrics.render()
        cards = dashboard.gpu_names(upstream_text)  # nvidia-smi on this host, if the gateway runs on the GPU box
        gpu_key = cfg.cost_gpu or (dashboard.price_key(cards[0]) if cards else None) or "H100"
        count = cfg.cost_gpus or len(cards) or 1
        price = dashboard.gpu_price_per_hour(gpu_key, cfg.cost_usd_per_hour)
        data = await asyncio.to_thread(dashboard.collect, state.usage, days, None, count, price, names)
        html = dashboard.render(data, dashboard.gpu_figures(upstream_text), gpu_key, time.time())
        return HTMLResponse(html, headers={"cache-control": "no-store"})

    routes = [
        Route("/dashboard", dashboard_page, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/codeassist/telemetry", telemetry_info, methods=["GET"]),
        Route("/v1/codeassist/telemetry", telemetry_post, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/stats", stats, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.gateway = state
    return app
