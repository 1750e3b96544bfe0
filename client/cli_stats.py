"""`codeassist stats`: acceptance signals and latency percentiles of the running daemon's session."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

__all__ = ["format_stats", "register", "server_line"]


def format_stats(stats: dict[str, Any]) -> str:
    c = stats.get("counts", {})
    rate = stats.get("acceptance_rate")
    lines = [f"session: {stats.get('uptime_s', 0)} s, engine mode {stats.get('mode', '?')}"]
    for name in (
        "shown",
        "accepted",
        "partially_accepted",
        "typed_through",
        "cancelled",
        "cache_hits",
        "prefetch_hits",
        "upstream_requests",
        "prefetch_requests",
        "prefetch_used",
        "prefetch_wasted",
        "prefetch_held",
        "prefetch_cancelled",
        "errors",
    ):
        lines.append(f"  {name:>20}: {c.get(name, 0)}")
    lines.append(f"  {'acceptance rate':>20}: {'-' if rate is None else f'{rate:.1%}'}")
    if server := stats.get("server"):
        lines.append(server_line(server))
    lines.append("latency (ms)            count      p50      p90      p99")
    for name, t in stats.get("latency_ms", {}).items():
        cells = ["-" if t.get(k) is None else f"{t[k]:.1f}" for k in ("p50_ms", "p90_ms", "p99_ms")]
        lines.append(f"  {name:<20} {t.get('count', 0):>7} {cells[0]:>8} {cells[1]:>8} {cells[2]:>8}")
    return "\n".join(lines)


def server_line(server: dict[str, Any]) -> str:
    """The effective budget and why, and how much of the prompts the server's cache served."""
    share = server.get("server_cache_hit_share")
    rate = server.get("prefill_tokens_per_s")
    eager = "; a request at each keystroke, no debounce (a slow llama-server; config `eager`)"
    return (
        f"server: prompt budget {server.get('effective_budget')} tokens ({server.get('budget_why')}); "
        f"prefill {'-' if rate is None else f'{rate} tokens/s'}; "
        f"prompt tokens from the server's cache {'-' if share is None else f'{share:.0%}'}"
        f"{eager if server.get('eager') else ''}"
    )


def cmd_stats(args: argparse.Namespace) -> int:
    from codeassist.client.daemon_client import DaemonUnavailable, call

    try:
        stats = asyncio.run(call("stats"))
    except (DaemonUnavailable, ConnectionError, OSError):
        print(json.dumps({"running": False}) if args.json else "daemon: not running (no session to report)")
        return 3
    print(json.dumps(stats) if args.json else format_stats(stats))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="shown/accepted/typed-through/cancelled and latency percentiles")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)
