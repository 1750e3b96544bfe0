"""`codeassist context FILE:LINE:COL`: show the prompt the context engine builds, part by part, and why."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

__all__ = ["cmd_context", "register"]


def _fail(msg: str, as_json: bool) -> int:
    from codeassist.client.positions_cli import location_error

    return location_error("context", msg, as_json)  # the same words and exit status as `complete`


def cmd_context(args: argparse.Namespace) -> int:
    from codeassist.client.positions_cli import LocationError, parse_location
    from codeassist.context.budget import check_budget
    from codeassist.context.engine import ContextEngine
    from codeassist.context.errors import ContextError
    from codeassist.context.templates import template_for

    root = Path(args.root).resolve()
    try:
        location = parse_location(args.location, root=root, utf16=args.utf16)
        text = location.read()
        offset = location.offset(text)
    except LocationError as exc:
        return _fail(str(exc), args.json)
    path, line, col = location.path, location.line, location.col
    try:
        budget = check_budget(args.budget)
    except ValueError as exc:
        return _fail(str(exc), args.json)
    from codeassist.client.config import ConfigError, load_config

    try:
        cfg = load_config(root)
    except ConfigError as exc:
        return _fail(str(exc), args.json)
    family = args.family
    if family == "auto":
        family = "qwen" if cfg.family == "auto" else cfg.family
    engine = ContextEngine(budget=budget, exclude=cfg.exclude)
    try:
        t0 = time.perf_counter()
        index = engine.add_root(root, background=False, watch=False)
        index_s = time.perf_counter() - t0
        parts = engine.build(text, offset, template_for(family), path=path.resolve(), budget=budget)
    except ContextError as exc:
        return _fail(str(exc), args.json)
    finally:
        engine.close()
    out: dict[str, Any] = {
        "prompt": parts.prompt,
        "prefix": parts.prefix,
        "suffix": parts.suffix,
        "snippets": [{k: s[k] for k in ("path", "text", "tokens", "reason")} for s in parts.snippets],
        "tokens": parts.tokens,
        "budget": parts.budget,
        "ms": round(parts.ms, 3),
    }
    if args.json:
        out |= {"token_counter": parts.token_counter, "family": family, "index": index.stats()}
        print(json.dumps(out))
        return 0
    c = engine.counter
    exact = "" if c.exact else "  (APPROXIMATE: chars/4 fallback, no offline tokenizer found)"
    print(f"# {path}:{line}:{col}  family={family}  counter={c.name}{exact}")
    print(f"# index: {len(index.files)} files, {len(index.skipped)} skipped, {index_s * 1000:.0f} ms")
    print(f"# prompt: {parts.tokens}/{parts.budget} tokens, built in {parts.ms:.1f} ms\n")
    for s in parts.snippets:
        print(f"== snippet {s['path']}  [{s['tokens']} tokens]  why: {s['reason']}")
        print(s["text"].rstrip() + "\n")
    print(f"== prefix  [{c.count(parts.prefix)} tokens]  why: cursor window, cut at syntax boundaries")
    print(parts.prefix + "\u2588")
    print(f"\n== suffix  [{c.count(parts.suffix)} tokens]")
    print(parts.suffix)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from codeassist.client.positions_cli import add_location_arguments

    p = sub.add_parser("context", help="show the prompt context for FILE:LINE:COL (1-based) and why each part")
    add_location_arguments(p)
    p.add_argument("--budget", type=int, default=2048, help="token budget, 1024..4096 (default 2048)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--root", default=".", help="repository root (default: the current directory)")
    p.add_argument("--family", default="auto", help="template family (auto: config, else qwen)")
    p.set_defaults(func=cmd_context)
