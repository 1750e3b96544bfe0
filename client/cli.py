"""`codeassist`: the developer's command line. Each subcommand parses, calls one function, prints."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def cmd_daemon(args: argparse.Namespace) -> int:
    from codeassist.client import daemon

    return daemon.main(foreground=args.foreground)


def cmd_lsp(args: argparse.Namespace) -> int:
    from codeassist.lsp.server import main as lsp_main

    return lsp_main()


def cmd_status(args: argparse.Namespace) -> int:
    from codeassist.client.daemon_client import DaemonUnavailable, call

    try:
        status = _run(call("status"))
    except DaemonUnavailable:
        print("daemon: not running" if not args.json else json.dumps({"running": False}))
        return 3
    if args.json:
        print(json.dumps({"running": True, **status}))
    else:
        print(format_status(status))
    return 0


def duration(seconds: float) -> str:
    """How long, at a glance: ``3.2 s``, ``4 min 5 s``, ``2 h``, ``1 d 4 h``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    for big, big_unit, small, small_unit in ((86400, "d", 3600, "h"), (3600, "h", 60, "min"), (60, "min", 1, "s")):
        if whole >= big:
            rest = whole % big // small
            return f"{whole // big} {big_unit}" + (f" {rest} {small_unit}" if rest else "")
    raise AssertionError("unreachable")


def _plain(value: Any) -> str:
    """A value this CLI has no words for yet, without Python's brackets and quotes."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "-"
    return str(value)


def _connectivity_rows(conn: dict[str, Any], now: float) -> list[tuple[str, str]]:
    state = str(conn.get("state") or "unknown")
    head = f"{state} via {conn['endpoint']} ({conn.get('url') or '-'})" if conn.get("endpoint") else state
    rows = [("connectivity", head)]
    order = conn.get("order") or []
    if order:
        rows.append(("  endpoints", ", then ".join(f"{e.get('name')} {e.get('url')}" for e in order)))
    if conn.get("down_since") is not None:  # wall-clock seconds (time.time()) in the daemon
        rows.append(("  down since", f"{duration(max(0.0, now - float(conn['down_since'])))} ago"))
    for name, error in (conn.get("errors") or {}).items():
        rows.append(("  last error", f"{name}: {error}"))
    return rows


def _counter_text(counters: dict[str, Any]) -> str:
    rest = ", ".join(f"{v} {k}" for k, v in counters.items() if k != "requests")
    return f"{counters.get('requests', 0)} ({rest})" if rest else str(counters.get("requests", 0))


def status_rows(status: dict[str, Any], now: float) -> list[tuple[str, str]]:
    """The daemon's status as (label, text) rows: known fields in words, any other field as plain text."""
    st = dict(status)
    model = st.pop("model", None)
    family = st.pop("family", None)
    server, in_use = st.pop("server_url", None), st.pop("server_in_use", None)
    idle = st.pop("idle_timeout_s", None)
    rows = [("version", _plain(st.pop("version", None))), ("pid", _plain(st.pop("pid", None)))]
    if (uptime := st.pop("uptime_s", None)) is not None:
        rows.append(("uptime", duration(float(uptime))))
    rows += [
        ("clients", f"{_plain(st.pop('clients', 0))} connected (not counting this command)"),
        ("documents", f"{_plain(st.pop('documents', 0))} open"),
        ("server_url", _plain(server)),
        ("server in use", "the same" if in_use == server and in_use else in_use or "none (no endpoint answers)"),
        ("model", f"{model or 'not known yet'}" + (f" (family {family})" if family else "")),
    ]
    if idle is not None:
        rows.append(("idle timeout", f"exits after {duration(float(idle))} with no editor connected"))
    rows += [("socket", _plain(st.pop("socket", None))), ("log", _plain(st.pop("log", None)))]
    if isinstance(counters := st.pop("counters", None), dict):
        rows.append(("requests", _counter_text(counters)))
    if isinstance(server_speed := st.pop("server", None), dict):
        from codeassist.client.cli_stats import server_line

        rows.append(("server speed", server_line(server_speed).removeprefix("server: ")))
    connectivity = st.pop("connectivity", None)
    rows += [(key.replace("_", " "), _plain(value)) for key, value in st.items()]
    if isinstance(connectivity, dict):
        rows += _connectivity_rows(connectivity, now)
    return rows


def format_status(status: dict[str, Any], now: float | None = None) -> str:
    rows = status_rows(status, time.time() if now is None else now)
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}: {text}" for label, text in rows)


def cmd_stop(args: argparse.Namespace) -> int:
    from codeassist.client.daemon_client import DaemonUnavailable, call

    try:
        _run(call("stop"))
    except DaemonUnavailable:
        print("daemon: not running")
        return 0
    print("daemon: stopping")
    return 0


async def complete_file(path: Path, offset: int, text: str) -> dict[str, Any]:
    from codeassist.client.daemon_client import connect

    conn = await connect()
    try:
        uri = path.resolve().as_uri()
        await conn.request("doc/open", {"uri": uri, "text": text, "language": path.suffix.lstrip(".")})
        result = await conn.request("complete", {"uri": uri, "offset": offset})
        await conn.request("doc/close", {"uri": uri})
        return result
    finally:
        await conn.aclose()


def cmd_complete(args: argparse.Namespace) -> int:
    from codeassist.client.positions_cli import LocationError, location_error, parse_location

    try:
        location = parse_location(args.location, utf16=args.utf16)
        text = location.read()
        offset = location.offset(text)
    except LocationError as exc:
        return location_error("complete", str(exc), args.json)
    result = _run(complete_file(location.path, offset, text))
    if args.json:
        print(json.dumps(result))
    else:
        print(result["text"])
        if result.get("error"):
            print(f"codeassist: {result['error']}", file=sys.stderr)
    return 0 if not result.get("error") else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from codeassist.client.demo import run_demo

    return run_demo(keep=args.keep, port=args.port)


Registrar = Callable[[argparse._SubParsersAction], None]


def _register_core(sub: argparse._SubParsersAction) -> None:
    from codeassist.client.positions_cli import add_location_arguments

    p = sub.add_parser("daemon", help="run the per-user daemon (normally started for you)")
    p.add_argument("--foreground", action="store_true", help="log to stderr")
    p.set_defaults(func=cmd_daemon)
    p = sub.add_parser("lsp", help="the LSP server on stdio that editors start")
    p.set_defaults(func=cmd_lsp)
    p = sub.add_parser("status", help="is the daemon running, and what is it doing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("stop", help="stop the daemon")
    p.set_defaults(func=cmd_stop)
    p = sub.add_parser("complete", help="one completion from the shell: FILE:LINE:COL (1-based)")
    add_location_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_complete)
    p = sub.add_parser("demo", help="start the local model server and complete a sample file")
    p.add_argument("--keep", action="store_true", help="leave the model server and daemon running")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_demo)


# Other modules add their subcommands here (one registrar each).
REGISTRARS: list[str] = [
    "codeassist.client.cli_stats:register",
    "codeassist.client.cli_connect:register",
    "codeassist.client.cli_context:register",
]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="codeassist", description="Self-hosted AI code completion.")
    sub = parser.add_subparsers(dest="command", required=True)
    _register_core(sub)
    for dotted in REGISTRARS:
        module, _, func = dotted.partition(":")
        getattr(importlib.import_module(module), func)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from codeassist.client.daemon_client import DaemonUnavailable
    from codeassist.client.paths import UnsafeRuntimeDir

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except UnsafeRuntimeDir as exc:  # another user's planted directory: say so, no traceback
        print(f"codeassist: {exc}", file=sys.stderr)
        return 2
    except DaemonUnavailable as exc:
        print(f"codeassist: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
