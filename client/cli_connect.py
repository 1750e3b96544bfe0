"""`codeassist login | logout | config | tunnel | doctor`: parse, call one function, print."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from typing import Any

__all__ = ["register"]


def _config(project: bool = False) -> Any:
    """The user's own config (and environment); with ``project``, also the project file of the cwd.

    Commands that send a key or start a program (login, tunnel) never take a project file's values.
    """
    from pathlib import Path

    from codeassist.client.config import ConfigError, load_config

    try:
        cfg = load_config(Path.cwd() if project else None)
    except ConfigError as exc:
        raise SystemExit(f"codeassist: {exc}") from None
    for warning in cfg.warnings:
        print(warning, file=sys.stderr)
    return cfg


async def _daemon(method: str, params: dict[str, Any] | None = None, start: bool = True) -> Any:
    from codeassist.client.daemon_client import connect

    conn = await connect(start=start)
    try:
        return await conn.request(method, params)
    finally:
        await conn.aclose()


def _tell_daemon(method: str) -> None:
    """Best effort: a running daemon picks up the change; none running is fine."""
    from codeassist.client.daemon_client import DaemonUnavailable

    try:
        asyncio.run(_daemon(method, start=False))
    except (DaemonUnavailable, ConnectionError, OSError):
        pass


# -- login / logout ------------------------------------------------------------------------------
def _read_key(args: argparse.Namespace, url: str) -> str | None:
    """The key from stdin (the first key-looking token, said by line, never echoed) or the terminal; None: none."""
    from codeassist.client import auth, login_probe

    if not args.key_stdin:
        return getpass.getpass(f"API key for {url}: ").strip()
    text = sys.stdin.read(1 << 16)
    found = login_probe.find_key(text)
    if found is None:
        lines = len(text.splitlines())
        print(
            f"codeassist: no API key on stdin (looked on {lines} line{'' if lines == 1 else 's'} for a token of "
            f"{login_probe.KEY_MIN_CHARS}+ characters without spaces, alone on its line or after a label such as "
            "'key for carol:'); nothing stored",
            file=sys.stderr,
        )
        return None
    key, line = found
    print(f"codeassist: took the API key {auth.redact(key)} from line {line} of stdin", file=sys.stderr)
    return key


def _save_server_url(args: argparse.Namespace, cfg: Any, url: str) -> None:
    from codeassist.client.config import set_user_value

    if args.url and url != cfg.server_url:
        path = set_user_value("server_url", url)
        print(f"server_url = {url} (saved in {path})")


def _login_refused(args: argparse.Namespace, cfg: Any, url: str) -> str | None:
    """Why login will not even try (exit 2), or None."""
    from codeassist.client import auth

    if not url.startswith(("http://", "https://")):
        return f"expected an http(s) URL, got {url!r}"
    if not auth.may_send_key(url, cfg.allow_insecure_http):
        return (
            f"{url} is plain http:// to another host: the key would cross the network unencrypted; use "
            "https://, an SSH tunnel (codeassist tunnel), or set allow_insecure_http = true in your own config"
        )
    if not args.key_stdin and not sys.stdin.isatty():
        return "no terminal to ask for the key; pipe it with --key-stdin"
    return None


def _no_key_needed(args: argparse.Namespace, cfg: Any, url: str) -> int:
    _save_server_url(args, cfg, url)
    print(
        f"{url} needs no API key (GET /models answers without one): nothing stored. "
        "To store one anyway (its completions need a key after all): codeassist login --force"
    )
    _tell_daemon("auth/reload")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    from codeassist.client import auth, login_probe
    from codeassist.client.transport.base import TransportError

    cfg = _config()
    url = (args.url or cfg.server_url).rstrip("/")
    if (why := _login_refused(args, cfg, url)) is not None:
        print(f"codeassist: {why}", file=sys.stderr)
        return 2
    try:
        # Asked without a key first: the key goes only to a server that wants one, at the URL that serves it.
        needed = asyncio.run(login_probe.needs_key(url, cfg.ca_bundle))
        if not needed and not args.force:
            return _no_key_needed(args, cfg, url)
        token = _read_key(args, url)
        if token is None:
            return 2
        result = asyncio.run(auth.login(url, token, cfg.ca_bundle))
    except ValueError as exc:
        print(f"codeassist: {exc}; nothing stored", file=sys.stderr)
        return 2
    except TransportError as exc:
        said = str(exc)
        print(f"codeassist: {said}" + ("" if said.endswith("nothing stored") else "; nothing stored"), file=sys.stderr)
        return 1
    if result.warning:
        print(f"codeassist: {result.warning}", file=sys.stderr)
    _save_server_url(args, cfg, url)
    models = ", ".join(result.models) or "none"
    verdict = "key accepted" if needed else "key stored as asked (the server answers without one too)"
    print(f"logged in to {url}: {verdict} (models: {models}); stored in {result.stored_in}")
    _tell_daemon("auth/reload")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from codeassist.client import auth

    url = (args.url or _config().server_url).rstrip("/")
    removed = auth.delete_token(url)
    if not removed:
        print(f"no stored key for {auth.server_key(url)}")
        return 0
    print(f"removed the key for {auth.server_key(url)} from {', '.join(removed)}")
    _tell_daemon("auth/reload")
    return 0


# -- config -------------------------------------------------------------------------------------
def cmd_config(args: argparse.Namespace) -> int:
    from codeassist.client.config import user_config_file

    cfg = _config(project=True)
    values = cfg.as_dict()
    if args.json:
        print(
            json.dumps(
                {
                    "user_file": str(user_config_file()),
                    "values": {k: {"value": v, "source": cfg.sources.get(k, "default")} for k, v in values.items()},
                    "ignored": cfg.ignored,
                }
            )
        )
        return 0
    print(f"# user config file: {user_config_file()}")
    width = max(len(k) for k in values)
    for key, value in values.items():
        print(f"{key:<{width}} = {json.dumps(value):<40} # {cfg.sources.get(key, 'default')}")
    for key, why in cfg.ignored.items():
        print(f"# ignored: {key} from {why}")
    return 0


# -- trust --------------------------------------------------------------------------------------
def _project_file(directory: str | None) -> Any:
    from pathlib import Path

    from codeassist.client.config import PROJECT_FILE, find_project_file

    start = Path(directory or ".").resolve()
    found = find_project_file(start, boundary=start if directory else None)
    return found or start / PROJECT_FILE


def cmd_trust(args: argparse.Namespace) -> int:
    from codeassist.client import trust
    from codeassist.client.config import ConfigError, parse_toml, read_config_bytes, unsafe_file_reason

    path = _project_file(args.dir)
    if args.untrust:
        print(f"{path}: no longer trusted" if trust.untrust(path) else f"{path} was not trusted")
        _tell_daemon("config/reload")
        return 0
    if not path.exists():
        print(f"codeassist: no {path.name} in {path.parent}", file=sys.stderr)
        return 2
    if (why := unsafe_file_reason(path)) is not None:
        print(f"codeassist: will not trust {path}: {why}", file=sys.stderr)
        return 2
    data = read_config_bytes(path)
    try:
        values = parse_toml(data, path)
    except ConfigError as exc:
        print(f"codeassist: {exc}", file=sys.stderr)
        return 2
    trust.trust(path, data)
    routed = {k: v for k, v in values.items() if k in ("server_url", "endpoints", "fallback", "ca_bundle")}
    print(
        f"trusted {path} (sha256 {trust.digest(data)[:12]}…); it may now set where this project's "
        f"completions go{': ' + json.dumps(routed) if routed else ''}. An edit to it needs trust again."
    )
    _tell_daemon("config/reload")
    return 0


# -- tunnel -------------------------------------------------------------------------------------
def _format_tunnel(st: dict[str, Any]) -> str:
    spec = st.get("spec") or {}
    if not spec:
        return "tunnel: not running"
    line = (
        f"tunnel {spec['target']}: {st['state']} — 127.0.0.1:{spec['local_port']} -> "
        f"{spec['remote_host']}:{spec['remote_port']} (pid {st.get('pid') or '-'}, restarts {st['restarts']})"
    )
    if st.get("last_error") and st["state"] != "up":
        line += f"\n  last error: {st['last_error']}"
    return line


def cmd_tunnel(args: argparse.Namespace) -> int:
    from codeassist.client.daemon_client import DaemonUnavailable

    try:
        if args.stop:
            st = asyncio.run(_daemon("tunnel/stop", start=False))
        elif args.status or not args.target:
            st = asyncio.run(_daemon("tunnel/status", start=False))
        else:
            cfg = _config()  # the user's own config only: a project file never starts a program
            spec = {
                "target": args.target,
                "remote_port": args.remote_port or cfg.tunnel_remote_port,
                "local_port": args.local_port or cfg.tunnel_local_port,
                "ssh_port": args.ssh_port or cfg.tunnel_ssh_port,
                "identity": args.identity or cfg.tunnel_identity,
                "options": [*cfg.tunnel_ssh_options, *(args.option or [])],
            }
            from codeassist.client.tunnel import TunnelSpec, ssh_command

            try:
                ssh_command(TunnelSpec.from_dict(spec))  # refuse here, in words, what the daemon would refuse
            except ValueError as exc:
                print(f"codeassist: {exc}", file=sys.stderr)
                return 2
            st = asyncio.run(_daemon("tunnel/start", spec))
            if args.save:
                from codeassist.client.config import set_user_value

                for key, value in (
                    ("tunnel_host", args.target),
                    ("tunnel_remote_port", spec["remote_port"]),
                    ("tunnel_local_port", spec["local_port"]),
                    ("tunnel_ssh_port", spec["ssh_port"]),
                    ("tunnel_identity", spec["identity"]),
                    ("tunnel_ssh_options", spec["options"]),
                ):
                    path = set_user_value(key, value)
                fallback = cfg.fallback if "tunnel" in cfg.fallback else [*cfg.fallback, "tunnel"]
                set_user_value("fallback", fallback)
                print(f"saved in {path}: the daemon starts this tunnel whenever it starts", file=sys.stderr)
            deadline = time.monotonic() + args.wait
            while st["state"] != "up" and time.monotonic() < deadline:
                time.sleep(0.2)
                st = asyncio.run(_daemon("tunnel/status", start=False))
    except DaemonUnavailable:
        st = {"state": "stopped", "spec": None}
    if args.json:
        print(json.dumps(st))
    else:
        print(_format_tunnel(st))
    if args.target and not args.stop and not args.status and st["state"] != "up":
        print(
            "codeassist: the tunnel is not up yet; the daemon keeps retrying (see `codeassist tunnel --status`)",
            file=sys.stderr,
        )
        return 1
    return 0


# -- doctor -------------------------------------------------------------------------------------
def cmd_doctor(args: argparse.Namespace) -> int:
    from codeassist.client.doctor import format_report, run_doctor

    report = asyncio.run(run_doctor(samples=args.samples, use_daemon=not args.no_daemon, url=args.url))
    print(json.dumps(report.as_dict(), indent=1) if args.json else format_report(report))
    return 0 if report.ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("login", help="store the API key for the team server (asked without echo)")
    p.add_argument("url", nargs="?", help="server base URL, e.g. https://gpu.example.com/v1 (default: server_url)")
    p.add_argument(
        "--key-stdin",
        action="store_true",
        help="read the key from stdin: the first token that looks like a key (description lines skipped)",
    )
    p.add_argument("--force", action="store_true", help="store the key even if the server answers without one")
    p.set_defaults(func=cmd_login)
    p = sub.add_parser("logout", help="forget the stored API key")
    p.add_argument("url", nargs="?")
    p.set_defaults(func=cmd_logout)
    p = sub.add_parser("config", help="show the effective configuration and where each value comes from")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("trust", help="trust this project's .codeassist.toml (it may then route completions)")
    p.add_argument("dir", nargs="?", help="the project directory (default: the nearest one above the cwd)")
    p.set_defaults(func=cmd_trust, untrust=False)
    p = sub.add_parser("untrust", help="stop trusting a project's .codeassist.toml")
    p.add_argument("dir", nargs="?")
    p.set_defaults(func=cmd_trust, untrust=True)
    p = sub.add_parser("tunnel", help="a supervised SSH tunnel to the GPU host (ssh -N -L), run by the daemon")
    p.add_argument("target", nargs="?", help="user@host or an ~/.ssh/config alias")
    p.add_argument("--remote-port", type=int, default=0, help="model server port on the host (default 8000)")
    p.add_argument("--local-port", type=int, default=0, help="local port (default tunnel_local_port)")
    p.add_argument("--ssh-port", type=int, default=0)
    p.add_argument("-i", "--identity", default="", help="private key file")
    p.add_argument("-o", "--option", action="append", help="extra ssh -o Key=Value (repeatable)")
    p.add_argument("--wait", type=float, default=15.0, help="seconds to wait for the tunnel to come up")
    p.add_argument("--save", action="store_true", help="also save it in the user config (started with the daemon)")
    p.add_argument("--status", action="store_true")
    p.add_argument("--stop", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tunnel)
    p = sub.add_parser("doctor", help="check the connection to the server and measure latency")
    p.add_argument("--json", action="store_true")
    p.add_argument("-n", "--samples", type=int, default=10, help="completion requests for the latency breakdown")
    p.add_argument("--no-daemon", action="store_true", help="measure without the daemon (no overhead figures)")
    p.add_argument("--url", help="check this server instead of server_url")
    p.set_defaults(func=cmd_doctor)
