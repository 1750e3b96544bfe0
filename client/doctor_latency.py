"""`codeassist doctor`'s latency part: N fresh DNS/connect/TLS handshakes and N real completions (through the
daemon, so its own overhead shows, or straight to the server), compared with the autocomplete targets."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from codeassist.client import auth
from codeassist.client.config import Config
from codeassist.client.doctor_report import TTFT_P50_TARGET_MS, TTFT_P99_TARGET_MS, Check, Report, summary
from codeassist.client.netprobe import connect, handshake, resolve

__all__ = ["measure_latency"]

# A short single-line completion, like most keystrokes: the figures are about latency, not long output.
PROBE_TEXT = 'def add_{tag}(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n    return '


# -- latency ------------------------------------------------------------------------------------
async def _network_samples(cfg: Config, url: str, n: int) -> dict[str, list[float]]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    out: dict[str, list[float]] = {"dns": [], "connect": [], "tls": []}
    for _ in range(n):
        infos, dns_ms = await asyncio.to_thread(resolve, host, port)
        sock, connect_ms = await asyncio.to_thread(connect, infos[0], 5.0)
        out["dns"].append(dns_ms)
        out["connect"].append(connect_ms)
        if parts.scheme == "https":
            _, tls_ms = await asyncio.to_thread(handshake, sock, host, cfg.ca_bundle)
            out["tls"].append(tls_ms)
        else:
            sock.close()
    return out


async def _daemon_samples(n: int) -> dict[str, list[float]]:
    from codeassist.client.daemon_client import connect

    out: dict[str, list[float]] = {
        "ttft": [],
        "total": [],
        "context": [],
        "debounce": [],
        "daemon_overhead": [],
        "errors": [],
        "cached": [],
    }
    conn = await connect(start=True)
    try:
        for i in range(n):
            uri = f"file:///codeassist-doctor/{uuid.uuid4().hex}/probe.py"
            text = PROBE_TEXT.format(tag=f"{i}_{uuid.uuid4().hex[:8]}")  # new text near the cursor: no cache hit
            await conn.request("doc/open", {"uri": uri, "text": text, "language": "python"})
            t0 = time.perf_counter()
            # "stats": false asks the daemon to keep these probes out of `codeassist stats` (shown, acceptance rate).
            request = {"uri": uri, "offset": len(text), "stats": False}
            result = await asyncio.wait_for(conn.request("complete", request), 60)
            rtt = (time.perf_counter() - t0) * 1000
            await conn.request("doc/close", {"uri": uri})
            timings = result.get("timings") or {}
            if result.get("error"):
                out["errors"].append(1.0)
                continue
            if "ttft_ms" not in timings:  # answered from the cache or a prefetch: no model time to measure
                out["cached"].append(rtt)
                continue
            out["ttft"].append(float(timings["ttft_ms"]))
            out["total"].append(rtt)
            out["context"].append(float(timings.get("context_ms", 0.0)))
            debounce = float(timings.get("debounce_ms", 0.0))
            out["debounce"].append(debounce)
            # Everything but the model and the deliberate debounce wait: IPC, queueing, context build, filters.
            out["daemon_overhead"].append(max(0.0, rtt - debounce - float(timings.get("model_ms", rtt))))
    finally:
        await conn.aclose()
    return out


async def _direct_samples(cfg: Config, url: str, model: str, n: int) -> dict[str, list[float]]:
    from codeassist.client.transport.base import CompletionParams, TransportError
    from codeassist.client.transport.http import HttpTransport

    stored = auth.get_token(url)
    t = HttpTransport(
        url,
        token=stored.token if stored else None,
        connect_timeout=cfg.connect_timeout,
        first_token_timeout=cfg.first_token_timeout,
        total_timeout=cfg.total_timeout,
        verify=auth.ssl_verify(cfg.ca_bundle),
    )
    out: dict[str, list[float]] = {"ttft": [], "total": [], "errors": []}
    try:
        for i in range(n):
            params = CompletionParams(
                prompt=PROBE_TEXT.format(tag=f"{i}_{uuid.uuid4().hex[:8]}"), model=model, max_tokens=16, stop=("\n",)
            )
            timing: dict[str, float] = {}
            try:
                async for _ in t.stream(params, timing):
                    pass
            except TransportError:
                out["errors"].append(1.0)
                continue
            if "ttft_ms" in timing:
                out["ttft"].append(timing["ttft_ms"])
                out["total"].append(timing["total_ms"])
    finally:
        await t.aclose()
    return out


def _latency_hints(lat: dict[str, Any]) -> list[str]:
    hints: list[str] = []
    ttft = lat.get("ttft", {}).get("p50_ms", float("nan"))
    rtt = lat.get("connect", {}).get("p50_ms", 0.0)
    tls = lat.get("tls", {}).get("p50_ms", 0.0)
    if ttft == ttft and ttft > TTFT_P50_TARGET_MS:
        if rtt >= 0.4 * ttft:
            hints.append(
                f"TTFT dominated by the network (round trip ≈ {rtt:.0f} ms of {ttft:.0f} ms): use the "
                "tunnel to the nearer host or a gateway closer to you"
            )
        else:
            hints.append(
                f"server time to first token high ({ttft - rtt:.0f} ms beyond the {rtt:.0f} ms round trip): "
                "queueing or prefill on the server; see `server-kit plan` (smaller model, more replicas, "
                "prefix caching)"
            )
    if tls > 50:
        hints.append(
            f"TLS handshake {tls:.0f} ms: the daemon keeps connections alive, so this hits only the first "
            "request; a persistent daemon (not killed between edits) avoids it"
        )
    overhead = lat.get("daemon_overhead", {}).get("p50_ms", 0.0)
    if overhead > 20:
        ctx = lat.get("context", {}).get("p50_ms", 0.0)
        hints.append(
            f"daemon overhead {overhead:.0f} ms (context build {ctx:.0f} ms): lower `budget` or check the "
            "daemon log for queueing"
        )
    return hints


async def _prompt_check(report: Report) -> None:
    """What the daemon made of the server's speed (its probes just taught it): the prompt budget it uses, why,
    and how much of the prompts the server's cache served."""
    from codeassist.client.cli_stats import server_line
    from codeassist.client.daemon_client import call

    try:
        server = (await call("stats")).get("server")
    except Exception:  # an older daemon, or it went away: the latency check above says enough
        return
    if isinstance(server, dict):
        report.latency["server"] = server
        report.checks.append(Check("prompt", True, server_line(server).removeprefix("server: ")))


async def measure_latency(report: Report, cfg: Config, url: str, model: str, n: int, use_daemon: bool) -> None:
    try:
        net = await _network_samples(cfg, url, n)
        comp = await (_daemon_samples(n) if use_daemon else _direct_samples(cfg, url, model, n))
    except Exception as exc:
        report.checks.append(Check("latency", False, f"measuring failed: {exc!r}", "see the checks above"))
        return
    lat: dict[str, Any] = {k: summary(v) for k, v in {**net, **comp}.items() if v and k not in ("errors", "cached")}
    lat["samples"], lat["errors"], lat["via"] = n, len(comp.get("errors", [])), "daemon" if use_daemon else "direct"
    lat["cached"] = len(comp.get("cached", []))
    lat["targets"] = {"ttft_p50_ms": TTFT_P50_TARGET_MS, "ttft_p99_ms": TTFT_P99_TARGET_MS}
    report.latency = lat
    report.hints = _latency_hints(lat)
    if use_daemon:
        await _prompt_check(report)
    if "ttft" not in lat:
        report.checks.append(
            Check(
                "latency",
                False,
                f"none of {n} completions produced a token",
                "see the daemon log (codeassist status shows where)",
            )
        )
        return
    p50, p99 = lat["ttft"]["p50_ms"], lat["ttft"]["p99_ms"]
    met = p50 < TTFT_P50_TARGET_MS and p99 < TTFT_P99_TARGET_MS
    if lat["errors"]:
        report.hints.append(
            f"{lat['errors']} of {n} completions failed (see the daemon log): usually timeouts "
            "on an overloaded server; raise first_token_timeout only if the server is known slow"
        )
    report.checks.append(
        Check(
            "latency",
            True,
            f"TTFT p50 {p50:.0f} ms / p99 {p99:.0f} ms over {lat['ttft']['n']} "
            f"completions (targets < {TTFT_P50_TARGET_MS:.0f} / < {TTFT_P99_TARGET_MS:.0f} ms)"
            + ("" if met else ": above target")
            + (f"; {lat['errors']} of {n} failed" if lat["errors"] else ""),
            "; ".join(report.hints),
            warn=not met or bool(lat["errors"]),
        )
    )
