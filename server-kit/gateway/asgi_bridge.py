"""Serve one parsed request with an ASGI app (the Starlette app of the non-completion routes).

Only what those routes use: a one-message request body, ``http.disconnect`` once the client hangs up,
and responses with or without ``more_body`` (chunked when the app streams without a length).
"""

from __future__ import annotations

from typing import Any

from codeassist.serverkit.gateway.http1 import Connection, Request

__all__ = ["call_asgi"]


async def call_asgi(app: Any, conn: Connection, req: Request, body: bytes) -> None:
    sock = conn.transport.get_extra_info("sockname") if conn.transport is not None else None
    peer = conn.transport.get_extra_info("peername") if conn.transport is not None else None
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": req.version,
        "method": req.method.decode("latin-1"),
        "scheme": conn.scheme,
        "path": req.path,
        "raw_path": req.url.partition(b"?")[0],
        "query_string": req.query,
        "root_path": "",
        "headers": req.headers,
        "server": tuple(sock[:2]) if sock else None,
        "client": tuple(peer[:2]) if peer else None,
    }
    sent_body = False
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    streaming = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        if conn.disconnected is None:
            conn.disconnected = conn.loop.create_future()
        if not conn.gone:
            await conn.disconnected
        return {"type": "http.disconnect"}

    async def send(msg: dict[str, Any]) -> None:
        nonlocal status, headers, streaming
        if msg["type"] == "http.response.start":
            status, headers = msg["status"], [(bytes(k).lower(), bytes(v)) for k, v in msg.get("headers", [])]
            return
        if msg["type"] != "http.response.body":
            return
        data, more = msg.get("body", b""), msg.get("more_body", False)
        if not streaming and not more:
            conn.send(status, headers, data)  # the usual case: one body message, sent with its length
            return
        if not streaming:
            streaming = True
            ctype = next((v for k, v in headers if k == b"content-type"), b"application/octet-stream")
            conn.start_stream(status, ctype, data, not more)
        else:
            conn.stream(data, not more)

    await app(scope, receive, send)
