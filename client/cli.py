"""`codeassist`: the developer's command line. Each subcommand parses, calls one function, prints."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
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
        for key, value in status.items():
            print(f"{key:>15}: {value}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from codeassist.client.daemon_client import DaemonUnavailable, call

    try:
        _run(call("stop"))
    except DaemonUnavailable:
        print("daemon: not running")
        return 0
    print("daemon: stopping")
    return 0


def parse_location(spec: str) -> tuple[Path, int, int]:
    """``FILE:LINE:COL``, 1-based line and column (column in characters)."""
    try:
        file, line, col = spec.rsplit(":", 2)
        return Path(file), int(line), int(col)
    except ValueError:
        raise SystemExit(f"codeassist: expected FILE:LINE:COL (1-based), got {spec!r}") from None


def location_offset(text: str, line: int, col: int) -> int:
    from codeassist.lsp.positions import PositionError, position_to_offset

    try:
        return position_to_offset(text, line - 1, col - 1, encoding="utf-32")
    except PositionError as exc:
        raise SystemExit(f"codeassist: {exc}") from None


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
    path, line, col = parse_location(args.location)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"codeassist: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    result = _run(complete_file(path, location_offset(text, line, col), text))
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


Registrar = Callable[[argparse._SubParsersAction], None]  # type: ignore[type-arg]


def _register_core(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    p.add_argument("location")
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
