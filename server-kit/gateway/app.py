"""The gateway's routes other than the completions: a Starlette app over a :class:`GatewayState`.

/health, /metrics, /stats and /v1/models. The completion routes (``POST /v1/completions`` and
``/v1/chat/completions``) are served by :class:`~.proxy.CompletionProxy` straight from the HTTP/1.1
connection (see :mod:`.http1` and :mod:`.server`); this app only sees the rest, through
:mod:`.asgi_bridge`.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from codeassist.serverkit.gateway.state import GatewayState
from codeassist.serverkit.gateway.upstream import UpstreamError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["create_app"]


def _unauthorized() -> JSONResponse:
    return JSONResponse({"error": {"message": "invalid, revoked or expired API key", "type": "auth", "code": 401}},
                        status_code=401)


def create_app(state: GatewayState) -> Starlette:
    cfg = state.cfg

    def authorized(request: Request) -> bool:
        return state.keys is None or state.keys.verify(request.headers.get("authorization")) is not None

    async def health(request: Request) -> Response:
        async def probe(root: str) -> bool:
            try:
                status, _ = await state.client.request("GET", f"{root}/health", timeout=2.0)
                return status == 200
            except (UpstreamError, TimeoutError):
                return False
        roots = cfg.upstream_roots
        results = await asyncio.gather(*(probe(r) for r in roots))
        ok = any(results)
        body = {"status": "ok" if ok else "upstream_unavailable",
                "replicas": [{"url": u, "healthy": h, "ejected": not r.available(state.pool.now()),
                              "outstanding": r.outstanding}
                             for u, h, r in zip(cfg.upstreams, results, state.pool.replicas, strict=True)],
                "inflight": state.scheduler.inflight, "queued": state.scheduler.queued}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        text = state.registry.render() + await state.upstream_metrics.render()
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def stats(request: Request) -> Response:
        if not authorized(request):
            return _unauthorized()
        users: dict[str, Any] = {}
        for uid, u in state.users.items():
            d = asdict(u)
            d["mean_latency_ms"] = round(u.latency_ms_sum / max(1, sum(u.by_status.values())), 2)
            users[uid] = d
        return JSONResponse({"users": users, "inflight": state.scheduler.inflight,
                             "queued": state.scheduler.queued,
                             "replicas": [{"url": r.url, "outstanding": r.outstanding, "served": r.served,
                                           "ejected": not r.available(state.pool.now())}
                                          for r in state.pool.replicas]})

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

    routes = [
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/stats", stats, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.gateway = state
    return app
