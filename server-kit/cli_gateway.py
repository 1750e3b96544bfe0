"""`server-kit gateway` and `server-kit keys …`: argument wiring only; the work is in ``gateway/``."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from codeassist.serverkit.gateway.config import CLASSES, GatewayConfig
from codeassist.serverkit.gateway.keys import KeyStore, load_pepper

__all__ = ["add_gateway_parser", "add_keys_parser", "build_gateway_parser", "default_state_dir"]


def default_state_dir() -> Path:
    base = os.environ.get("CODEASSIST_SERVER_DIR") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "codeassist-server"
    )
    return Path(base)


def _store(args: argparse.Namespace) -> KeyStore:
    return KeyStore(args.keys_file, load_pepper(args.pepper_file))


def _add_store_args(p: argparse.ArgumentParser) -> None:
    d = default_state_dir()
    p.add_argument("--keys-file", type=Path, default=d / "keys.json", help="hashed key store (mode 0600)")
    p.add_argument(
        "--pepper-file",
        type=Path,
        default=d / "pepper",
        help="server secret for key hashes (or env CODEASSIST_GATEWAY_PEPPER)",
    )


def _expiry(args: argparse.Namespace) -> float | None:
    if args.expires:
        return dt.datetime.fromisoformat(args.expires).replace(tzinfo=dt.UTC).timestamp()
    if args.days:
        return (dt.datetime.now(dt.UTC) + dt.timedelta(days=args.days)).timestamp()
    return None


def _fmt_time(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M") if t else "never"


def cmd_keys(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.keys_cmd == "add":
        key, rec = store.add(args.user, args.max_class, _expiry(args), args.rpm, args.tpm, args.admin)
        role = ", admin" if rec.admin else ""
        # Only the key on stdout: `keys add NAME | codeassist login URL --key-stdin` must get it, and it is shown once.
        print(
            f"key for {rec.user} (id {rec.key_id}, class ≤ {rec.max_class}{role}, expires {_fmt_time(rec.expires)}). "
            "Shown once; store it in the developer's keyring (`codeassist login URL --key-stdin`):",
            file=sys.stderr,
        )
        print(key)
    elif args.keys_cmd == "list":
        print(f"{'id':<14}{'user':<20}{'class':<13}{'admin':<7}{'created':<18}{'expires':<18}state")
        import time

        now = time.time()
        for r in store.list():
            state = "revoked" if r.revoked else ("expired" if not r.active(now) else "active")
            print(
                f"{r.key_id:<14}{r.user:<20}{r.max_class:<13}{'yes' if r.admin else 'no':<7}"
                f"{_fmt_time(r.created):<18}"
                f"{_fmt_time(r.expires):<18}{state}"
            )
    elif args.keys_cmd == "revoke":
        hits = store.revoke(args.ident)
        if not hits:
            print(f"server-kit: no active key {args.ident!r}", file=sys.stderr)
            return 1
        print("revoked " + ", ".join(f"{r.key_id} ({r.user})" for r in hits))
    elif args.keys_cmd == "rotate":
        try:
            key, rec = store.rotate(args.ident)
        except KeyError:
            print(f"server-kit: no active key {args.ident!r}", file=sys.stderr)
            return 1
        print(f"new key for {rec.user} (id {rec.key_id}); the old one is revoked. Shown once:", file=sys.stderr)
        print(key)
    return 0


def add_keys_parser(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="manage per-user API keys")
    ksub = keys.add_subparsers(dest="keys_cmd", required=True)
    add = ksub.add_parser("add", help="create a key for a user (printed once)")
    add.add_argument("user")
    add.add_argument(
        "--max-class",
        choices=CLASSES,
        default="interactive",
        help="most urgent priority class the key may use (a CI bot: batch)",
    )
    add.add_argument("--expires", help="expiry date, ISO format (UTC)")
    add.add_argument("--days", type=float, help="expires after this many days")
    add.add_argument("--rpm", type=float, help="requests per minute for this key")
    add.add_argument("--tpm", type=float, help="tokens per minute for this key")
    add.add_argument(
        "--admin",
        action="store_true",
        help="an operator's key: GET /stats shows every user's counters (other keys: only their "
        "own user's row) and GET /metrics is served to it from any address (without one: "
        "only to loopback clients not forwarded by a proxy); it also works for completions",
    )
    ksub.add_parser("list", help="list keys (never the secrets)")
    rev = ksub.add_parser("revoke", help="revoke a key id, or all keys of a user")
    rev.add_argument("ident")
    rot = ksub.add_parser("rotate", help="replace a key (by id or user); prints the new one once")
    rot.add_argument("ident")
    for p in (add, rev, rot, *[a for a in ksub.choices.values() if a.prog.endswith("list")]):
        _add_store_args(p)
    keys.set_defaults(func=cmd_keys)


def gateway_config(args: argparse.Namespace) -> GatewayConfig:
    keys_file = None if args.no_auth else args.keys_file
    pepper = load_pepper(args.pepper_file) if keys_file else b""
    return GatewayConfig(
        upstreams=tuple(args.upstream or ["http://127.0.0.1:8000/v1"]),
        keys_file=keys_file,
        pepper=pepper,
        max_inflight=args.max_inflight,
        max_queue=args.max_queue,
        max_queue_per_user=args.max_queue_per_user,
        queue_timeout_s=args.queue_timeout,
        requests_per_minute=args.rpm,
        request_burst=args.burst,
        tokens_per_minute=args.tpm,
        max_body_bytes=args.max_body_bytes,
        request_timeout_s=args.request_timeout,
        max_connections=args.max_connections,
        max_tokens_limit=args.max_tokens_limit,
        default_max_tokens=args.default_max_tokens,
        first_token_timeout_s=args.first_token_timeout,
        read_timeout_s=args.read_timeout,
        client_write_timeout_s=args.client_write_timeout,
        audit_file=args.audit_log,
        audit_max_bytes=args.audit_max_bytes,
    )


def cmd_gateway(args: argparse.Namespace) -> int:
    from codeassist.serverkit.gateway.server import serve

    if args.no_auth and args.host not in ("127.0.0.1", "localhost", "::1"):
        print("server-kit: --no-auth is only allowed on a loopback address", file=sys.stderr)
        return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        print("server-kit: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    cfg = gateway_config(args)
    scheme = "https" if args.tls_cert else "http"
    print(f"gateway on {scheme}://{args.host}:{args.port}/v1 -> {', '.join(cfg.upstreams)}", flush=True)
    serve(cfg, args.host, args.port, args.tls_cert, args.tls_key)
    return 0


GATEWAY_ROUTES = (
    "Routes: POST /v1/completions, /v1/chat/completions and GET /v1/models need a key. "
    'GET /health needs none and answers only {"status": "ok"} (200) or {"status": "upstream_unavailable"} (503). '
    "GET /stats needs a key and shows that key's user only; an admin key (`server-kit keys add NAME --admin`) "
    "sees every user, the queue and the replicas. GET /metrics (Prometheus) is served to loopback clients that no "
    "proxy forwarded (no X-Forwarded-For / Forwarded / X-Real-IP header), and to an admin key from anywhere "
    "(Prometheus elsewhere: `authorization: Bearer <admin key>`)."
)


def build_gateway_parser() -> argparse.ArgumentParser:
    g = argparse.ArgumentParser(prog="server-kit gateway", description=GATEWAY_ROUTES)
    _gateway_args(g)
    return g


def add_gateway_parser(sub: argparse._SubParsersAction) -> None:
    _gateway_args(
        sub.add_parser("gateway", help="run the enforcing gateway in front of vLLM", description=GATEWAY_ROUTES)
    )


def _gateway_args(g: argparse.ArgumentParser) -> None:
    g.add_argument("--upstream", action="append", help="vLLM base URL (…/v1); repeat for replicas")
    g.add_argument("--host", default="127.0.0.1")
    g.add_argument("--port", type=int, default=8080)
    _add_store_args(g)
    g.add_argument("--no-auth", action="store_true", help="no API keys (loopback only, for trials)")
    g.add_argument("--max-inflight", type=int, default=64, help="requests with vLLM at once (≈ --max-num-seqs)")
    g.add_argument("--max-queue", type=int, default=512)
    g.add_argument("--max-queue-per-user", type=int, default=32)
    g.add_argument("--queue-timeout", type=float, default=10.0)
    g.add_argument("--rpm", type=float, default=600.0, help="requests per minute per user")
    g.add_argument("--burst", type=float, default=60.0, help="request bucket size per user")
    g.add_argument("--tpm", type=float, default=1_000_000.0, help="prompt+completion tokens per minute per user")
    g.add_argument("--max-body-bytes", type=int, default=256 * 1024)
    g.add_argument(
        "--max-tokens-limit",
        type=int,
        default=32768,
        help="largest max_tokens / max_completion_tokens a request may ask for (above: 400)",
    )
    g.add_argument(
        "--default-max-tokens",
        type=int,
        default=1024,
        help="max_tokens sent (and charged) for chat requests without one (completions: 16)",
    )
    g.add_argument(
        "--request-timeout",
        type=float,
        default=15.0,
        help="seconds for a client to send a request head and body (slow senders get 408)",
    )
    g.add_argument(
        "--max-connections",
        type=int,
        default=4096,
        help="open client connections; at the cap the oldest idle one is closed (the open-files "
        "limit is raised to its hard limit, and this lowered to fit)",
    )
    g.add_argument("--first-token-timeout", type=float, default=30.0)
    g.add_argument("--read-timeout", type=float, default=60.0)
    g.add_argument(
        "--client-write-timeout",
        type=float,
        help="seconds a client may take no response bytes before it is cut off and its slot freed "
        "(default: the --read-timeout)",
    )
    g.add_argument("--audit-log", type=Path, default=default_state_dir() / "audit.jsonl")
    g.add_argument("--audit-max-bytes", type=int, default=20 * 1024 * 1024)
    g.add_argument("--tls-cert", type=Path)
    g.add_argument("--tls-key", type=Path)
    g.set_defaults(func=cmd_gateway)
