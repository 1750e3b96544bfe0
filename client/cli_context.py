"""`codeassist context FILE:LINE:COL`: show the prompt the daemon would send for that position, part by part, and
why each part is there.

"Would send" means the daemon's own choices, made by the daemon's own code: the document's effective config (the
user's config and environment, with the project file found from the document's directory up to the workspace
root on top: ``ProjectResolver``), the model and FIM family (``ModelResolver``: a ``family`` / ``model`` the
config sets, else what the configured server's ``/v1/models`` serves), and the prompt budget (the config's, as
``ServerSpeed`` adjusts it once a running daemon has measured the server). When the server does not answer,
the family is a stated guess (the daemon would send nothing until it answers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codeassist.client.config import Config
    from codeassist.client.project import ProjectResolver, Route

__all__ = ["PromptSettings", "cmd_context", "prompt_settings", "register"]

FALLBACK_FAMILY = "qwen"  # the family shown when neither the config nor the server says one


def _fail(msg: str, as_json: bool) -> int:
    from codeassist.client.positions_cli import location_error

    return location_error("context", msg, as_json)  # the same words and exit status as `complete`


@dataclass
class PromptSettings:
    """What the daemon would use for one document, and why."""

    config: Config  # the document's effective config
    user: Config  # the user's own (config file + environment), as the daemon holds it
    family: str
    family_why: str
    budget: int
    budget_why: str
    model: str | None = None
    server: str = ""
    fallback: bool = False  # the family is a guess: the server did not answer
    warnings: list[str] = field(default_factory=list)
    project_exclude: list[str] = field(default_factory=list)  # the repo's own globs on top of the user's
    region_lines: int = 1  # > 1 for a slow server: the cross-file part is chosen per region of lines


async def _served(route: Route, timeout: float) -> tuple[str, str]:
    from codeassist.client.models import ModelResolver

    return await asyncio.wait_for(ModelResolver().resolve(route), timeout)


async def _daemon_server_speed() -> dict[str, Any] | None:
    """The running daemon's measure of its server (``status``), without starting a daemon; None if none runs."""
    from codeassist.client import paths
    from codeassist.client.daemon_client import call

    try:
        if not paths.socket_path().exists():
            return None
        status = await call("status", timeout=2.0)
    except Exception:
        return None
    speed = status.get("server") if isinstance(status, dict) else None
    return speed if isinstance(speed, dict) else None


async def _close(projects: ProjectResolver, default: Any) -> None:
    for t in [default, *projects.forget()]:
        try:
            await t.aclose()
        except Exception:
            pass


def prompt_settings(root: Path, path: Path, family: str = "auto", budget: int | None = None) -> PromptSettings:
    """The family and budget the daemon would use for ``path`` in workspace ``root``; ``family`` / ``budget``
    given (not "auto" / None) override them, as ``--family`` / ``--budget`` do."""
    from codeassist.client.config import load_config
    from codeassist.client.endpoints import FallbackTransport
    from codeassist.client.models import family_reason
    from codeassist.client.project import ProjectResolver, routing_key
    from codeassist.client.server_speed import ServerSpeed
    from codeassist.client.transport.base import TransportError
    from codeassist.context.templates import detect_family

    user = load_config()  # what the daemon loads: the user's file and the environment, no project file
    default = FallbackTransport(user)
    warnings: list[str] = []
    projects = ProjectResolver(
        user_config=lambda: user,
        default_transport=lambda: default,
        roots=lambda: [str(root)],
        make_transport=lambda cfg: FallbackTransport(cfg),
        warn=warnings.append,
    )
    route = projects.route(path.resolve().as_uri())
    cfg = route.config
    exclude = [g for g in projects.config_for((root / "_").as_uri()).exclude if g not in user.exclude]
    own_server = routing_key(cfg) == routing_key(user)

    async def ask() -> tuple[str, str, str | None, bool, dict[str, Any] | None]:
        try:
            model: str | None = None
            fallback = False
            if family != "auto":
                fam, why = family, "--family"
            else:
                try:
                    model, fam = await _served(route, cfg.connect_timeout + cfg.first_token_timeout)
                    why = family_reason(cfg, model)
                except (TransportError, TimeoutError, OSError) as exc:
                    reason = str(exc) or type(exc).__name__
                    if cfg.family != "auto":
                        fam, why = cfg.family, family_reason(cfg, "")
                        why += f" (the server did not answer /v1/models: {reason})"
                    else:
                        fallback = True
                        fam = detect_family(cfg.model) if cfg.model else FALLBACK_FAMILY
                        why = (
                            f"FALLBACK, a guess: the server at {cfg.server_url} did not answer /v1/models ({reason}), "
                            "so the model and its family are unknown; the daemon sends nothing until it answers, then "
                            "takes the family from the served model's name. Set `family` in your config or pass "
                            "--family to choose"
                        )
            speed = await _daemon_server_speed() if own_server else None
            return fam, why, model, fallback, speed
        finally:
            await _close(projects, default)

    quiet = logging.getLogger("codeassist.client")  # an unreachable server is reported below, not logged
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        fam, why, model, fallback, measured = asyncio.run(ask())
    finally:
        quiet.setLevel(level)
    speed = ServerSpeed()
    rate = (measured or {}).get("prefill_tokens_per_s")
    if isinstance(rate, int | float) and rate > 0:
        speed.prefill_tps = float(rate)  # what the running daemon measured of this server
        ratio = (measured or {}).get("server_tokens_per_counted")
        if isinstance(ratio, int | float) and ratio > 0:
            speed.token_ratio = float(ratio)
    source = cfg.sources.get("budget", "default")
    configured = f"budget = {cfg.budget} from {'the default' if source == 'default' else source}"
    if budget is not None:
        would = cfg.budget if speed.prefill_tps is None else speed.budget(cfg.budget)[0]
        chosen, budget_why = budget, f"--budget (the daemon would use {would})"
    elif speed.prefill_tps is None:  # nothing measured yet: the configured budget (the first request caps it)
        chosen = cfg.budget
        budget_why = (
            f"{configured}; the server's speed is not measured yet "
            f"(a daemon's first request uses at most {speed.budget(cfg.budget)[0]})"
        )
    else:
        chosen, speed_why = speed.budget(cfg.budget)  # the pipeline's own rule
        budget_why = f"{configured}; {speed_why} (as the running daemon measured it)"
    return PromptSettings(
        config=cfg,
        user=user,
        family=fam,
        family_why=why,
        budget=chosen,
        budget_why=budget_why,
        model=model,
        server=cfg.server_url,
        fallback=fallback,
        warnings=list(dict.fromkeys([*cfg.warnings, *warnings])),
        project_exclude=exclude,
        region_lines=speed.region_lines(),
    )


def cmd_context(args: argparse.Namespace) -> int:
    from codeassist.client.config import ConfigError
    from codeassist.client.positions_cli import LocationError, parse_location
    from codeassist.context.budget import check_budget
    from codeassist.context.engine import ContextEngine
    from codeassist.context.errors import ContextError
    from codeassist.context.templates import FAMILIES, template_for

    root = Path(args.root).resolve()
    try:
        location = parse_location(args.location, root=root, utf16=args.utf16)
        text = location.read()
        offset = location.offset(text)
    except LocationError as exc:
        return _fail(str(exc), args.json)
    path, line, col = location.path, location.line, location.col
    try:
        if args.budget is not None:
            check_budget(args.budget)
        if args.family != "auto":
            template_for(args.family)
    except ValueError as exc:
        return _fail(str(exc), args.json)
    try:
        settings = prompt_settings(root, path, args.family, args.budget)
    except ConfigError as exc:
        return _fail(str(exc), args.json)
    family, budget = settings.family, settings.budget
    if family not in FAMILIES:
        return _fail(f"unknown model family {family!r}", args.json)
    engine = ContextEngine(budget=settings.user.budget, exclude=settings.user.exclude)  # as the daemon's
    try:
        t0 = time.perf_counter()
        index = engine.add_root(root, background=False, watch=False, exclude=settings.project_exclude)
        index_s = time.perf_counter() - t0
        parts = engine.build(
            text, offset, template_for(family), path=path.resolve(), budget=budget, region_lines=settings.region_lines
        )
    except (ContextError, ValueError) as exc:
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
        out |= {
            "token_counter": parts.token_counter,
            "family": family,
            "family_why": settings.family_why,
            "family_fallback": settings.fallback,
            "model": settings.model,
            "server": settings.server,
            "budget_why": settings.budget_why,
            "region_lines": settings.region_lines,
            "warnings": settings.warnings,
            "index": index.stats(),
        }
        print(json.dumps(out))
        return 0
    c = engine.counter
    exact = "" if c.exact else "  (APPROXIMATE: chars/4 fallback, no offline tokenizer found)"
    print(f"# {path}:{line}:{col}  family={family}  counter={c.name}{exact}")
    print(f"# family {family}: {settings.family_why}")
    print(f"# budget {budget}: {settings.budget_why}")
    if settings.region_lines > 1:
        print(f"# a slow server: the cross-file part is chosen per {settings.region_lines} lines, as the daemon does")
    for warning in settings.warnings:
        print(f"# {warning}")
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

    p = sub.add_parser(
        "context", help="show the prompt the daemon would send for FILE:LINE:COL (1-based), and why each part"
    )
    add_location_arguments(p)
    p.add_argument(
        "--budget", type=int, default=None, help="token budget, 1024..4096 (default: the daemon's, from the config)"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--root", default=".", help="workspace root (default: the current directory)")
    p.add_argument(
        "--family",
        default="auto",
        help="template family (auto: the daemon's choice: the config's family, else the served model's)",
    )
    p.set_defaults(func=cmd_context)
