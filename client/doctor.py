"""`codeassist doctor`: checks that explain what is wrong and how to fix it, then a latency breakdown (doctor_latency).

Returns data (:class:`Report` of :class:`Check`); the CLI formats it. Checks run in data-path order
(config, key, DNS, TCP, TLS, auth, model, tunnel, clock) and stop early where later ones cannot mean
anything. The latency part times N fresh DNS/connect/TLS handshakes and N real completions through the
daemon (so its own overhead shows), and compares time to first token with the autocomplete targets.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import ssl
import time
from urllib.parse import urlsplit

from codeassist.client import auth, login_probe
from codeassist.client.config import Config, ConfigError, find_project_file, load_config, user_config_file
from codeassist.client.daemon_client import call
from codeassist.client.doctor_latency import measure_latency
from codeassist.client.doctor_report import TTFT_P50_TARGET_MS, TTFT_P99_TARGET_MS, Check, Report, format_report
from codeassist.client.netprobe import connect, explain_tls, handshake, is_ip, resolve

__all__ = ["TTFT_P50_TARGET_MS", "TTFT_P99_TARGET_MS", "Check", "Report", "check_clock", "format_report", "run_doctor"]

SKEW_WARN_S = 30.0
SKEW_FAIL_S = 300.0


# -- the checks ---------------------------------------------------------------------------------
def _check_config(report: Report) -> Config | None:
    try:
        cfg = load_config()  # the user's own settings: what the daemon uses (a project file never routes doctor)
    except ConfigError as exc:
        report.checks.append(Check("config", False, str(exc), "fix the file named above (TOML syntax/values)"))
        return None
    ufile = user_config_file()
    pfile = find_project_file(__import__("pathlib").Path.cwd().resolve())
    files = [f"user {ufile}" + ("" if ufile.is_file() else " (absent, defaults used)")]
    if pfile:
        files.append(f"project {pfile} (applies per document: see `codeassist config` there)")
    report.checks.append(
        Check(
            "config",
            True,
            f"server_url {cfg.server_url} (from {cfg.sources['server_url']}); "
            f"fallback {cfg.fallback}; " + "; ".join(files),
        )
    )
    return cfg


def _no_key_needed(report: Report, url: str) -> None:
    """No key stored is only worth a warning while we do not know the server needs one; now we know it does not."""
    for i, check in enumerate(report.checks):
        if check.name == "token" and check.warn:
            report.checks[i] = Check(
                "token", True, f"no API key stored for {auth.server_key(url)}; the server needs none"
            )


def _check_token(report: Report, url: str) -> None:
    stored = auth.get_token(url)
    if stored is None:
        report.checks.append(
            Check(
                "token",
                True,
                f"no API key stored for {auth.server_key(url)} (fine if the server needs none)",
                f"codeassist login {url}",
                warn=True,
            )
        )
    else:
        report.checks.append(Check("token", True, f"API key present ({len(stored.token)} chars) in {stored.source}"))


async def _check_network(report: Report, cfg: Config, url: str) -> bool:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    timeout = max(2.0, cfg.connect_timeout)
    try:
        infos, dns_ms = await asyncio.to_thread(resolve, host, port)
    except socket.gaierror as exc:
        report.checks.append(
            Check(
                "dns",
                False,
                f"cannot resolve {host!r}: {exc.strerror}",
                "check the host name in server_url, your VPN, or /etc/hosts",
            )
        )
        return False
    addrs = sorted({str(i[4][0]) for i in infos})
    report.checks.append(
        Check(
            "dns",
            True,
            f"{host} is an address, no lookup" if is_ip(host) else f"{host} -> {', '.join(addrs)} in {dns_ms:.1f} ms",
        )
    )
    try:
        sock, connect_ms = await asyncio.to_thread(connect, infos[0], timeout)
    except TimeoutError:
        report.checks.append(
            Check(
                "tcp",
                False,
                f"connecting to {host}:{port} timed out after {timeout:.0f}s",
                "a firewall or VPN drops the traffic; or reach the host over SSH: codeassist tunnel user@gpu-host",
            )
        )
        return False
    except OSError as exc:
        report.checks.append(
            Check(
                "tcp",
                False,
                f"cannot connect to {host}:{port}: {exc.strerror or exc}",
                "start the model server / gateway on that host (server-kit), check the port, "
                "or use the tunnel: codeassist tunnel user@gpu-host",
            )
        )
        return False
    report.checks.append(Check("tcp", True, f"connected to {host}:{port} in {connect_ms:.1f} ms"))
    if parts.scheme != "https":
        sock.close()
        loopback = auth.is_loopback(host)  # the same rule that decides whether the key may go over plain http
        report.checks.append(
            Check(
                "tls",
                True,
                "plain HTTP" + ("" if loopback else " over the network: the key travels unencrypted"),
                "" if loopback else "use https:// or the SSH tunnel",
                warn=not loopback,
            )
        )
        return True
    try:
        cert, tls_ms = await asyncio.to_thread(handshake, sock, host, cfg.ca_bundle)
    except ssl.SSLError as exc:
        detail, fix = await asyncio.to_thread(explain_tls, exc, host, port, timeout)
        plain = None if isinstance(exc, ssl.SSLCertVerificationError) else await login_probe.plain_http_url(url)
        if plain is not None:
            detail, fix = login_probe.plain_http_message(plain), f'server_url = "{plain}" (codeassist login {plain})'
        report.checks.append(Check("tls", False, detail, fix))
        return False
    except OSError as exc:  # a plain-HTTP server may just wait for a request line: the handshake times out
        plain = await login_probe.plain_http_url(url)
        detail, fix = f"TLS handshake failed: {exc}", "check that the port speaks HTTPS"
        if plain is not None:
            detail, fix = login_probe.plain_http_message(plain), f'server_url = "{plain}" (codeassist login {plain})'
        report.checks.append(Check("tls", False, detail, fix))
        return False
    finally:
        sock.close()
    expires = ssl.cert_time_to_seconds(cert["notAfter"]) if cert.get("notAfter") else None
    days = (expires - time.time()) / 86400 if expires else None
    issuer = ", ".join("=".join(x) for rdn in cert.get("issuer", ()) for x in rdn)
    report.checks.append(
        Check(
            "tls",
            True,
            f"certificate valid for {host}, issued by {issuer or '?'}"
            + (f", expires in {days:.0f} days" if days is not None else "")
            + f"; handshake {tls_ms:.1f} ms",
            "renew the certificate soon" if days is not None and days < 14 else "",
            warn=days is not None and days < 14,
        )
    )
    return True


async def _check_auth(report: Report, cfg: Config, url: str) -> auth.ModelsProbe | None:
    import httpx

    try:
        probe = await auth.probe_models(url, cfg.ca_bundle)
    except httpx.HTTPError as exc:
        report.checks.append(Check("auth", False, f"GET /models failed: {exc!r}", "see the checks above"))
        return None
    if probe.status in (401, 403):
        detail = (
            "the server refused the stored API key"
            if probe.sent_key
            else "the server requires an API key and none is stored"
        )
        report.checks.append(
            Check(
                "auth",
                False,
                f"{detail} (HTTP {probe.status})",
                f"codeassist login {url}  (ask the server admin for a key if yours was revoked)",
            )
        )
        return None
    if probe.status != 200:
        report.checks.append(
            Check(
                "auth",
                False,
                f"GET /models answered HTTP {probe.status}",
                "is server_url the OpenAI-compatible base (ending in /v1)?",
            )
        )
        return None
    report.checks.append(
        Check(
            "auth",
            True,
            ("API key accepted" if probe.sent_key else "no key needed") + f" (/models in {probe.elapsed_ms:.0f} ms)",
        )
    )
    return probe


def _check_model(report: Report, cfg: Config, probe: auth.ModelsProbe) -> str | None:
    from codeassist.context.templates import detect_family

    if not probe.models:
        report.checks.append(Check("model", False, "the server serves no model", "start the model server"))
        return None
    model = cfg.model or probe.models[0]
    if cfg.model and cfg.model not in probe.models:
        report.checks.append(
            Check(
                "model",
                False,
                f"model {cfg.model!r} not served (served: {probe.models})",
                f"set model to one of {probe.models} or leave it empty",
            )
        )
        return None
    family = cfg.family if cfg.family != "auto" else detect_family(model)
    plain = family == "plain"
    report.checks.append(
        Check(
            "model",
            True,
            f"{model}: FIM family {family}"
            + (" (no fill-in-the-middle: completions see only the prefix)" if plain else ""),
            "serve a FIM-trained code model (Qwen2.5-Coder, StarCoder2, ...)" if plain else "",
            warn=plain,
        )
    )
    return model


async def _check_tunnel(report: Report, cfg: Config) -> None:
    from codeassist.client.daemon_client import DaemonUnavailable

    try:
        st = await call("connectivity/status")
    except (DaemonUnavailable, ConnectionError, OSError, TimeoutError):
        configured = f"configured for {cfg.tunnel_host}, " if cfg.tunnel_host else ""
        report.checks.append(Check("tunnel", True, f"{configured}daemon not running (no tunnel, no endpoint state)"))
        return
    tun = st.get("tunnel") or {}
    where = f"daemon uses endpoint {st.get('endpoint') or 'none'} ({st.get('state')}) at {st.get('url') or '-'}"
    in_use = st.get("url")
    if in_use and st.get("endpoint") == "default" and in_use.rstrip("/") != cfg.server_url:
        report.checks.append(
            Check(
                "daemon",
                False,
                f"the running daemon sends completions to {in_use}, not to server_url {cfg.server_url}",
                "codeassist stop (it restarts with the current settings on the next editor request)",
            )
        )
    if not tun.get("spec"):
        report.checks.append(Check("tunnel", True, f"no tunnel; {where}"))
    elif tun["state"] == "up":
        report.checks.append(
            Check(
                "tunnel",
                True,
                f"{tun['spec']['target']} up on {tun['local_url']} (restarts {tun['restarts']}); {where}",
            )
        )
    else:
        report.checks.append(
            Check(
                "tunnel",
                False,
                f"{tun['spec']['target']} is {tun['state']}: {tun.get('last_error') or 'no error yet'}; {where}",
                f"try `ssh -o BatchMode=yes {tun['spec']['target']} true`: load your key with "
                "ssh-add, accept the host key once, check the remote port",
            )
        )


def check_clock(report: Report, probe: auth.ModelsProbe) -> None:
    """The 'clock' check: the local clock against the server's Date header (from the /models probe)."""
    if not probe.date:
        report.checks.append(Check("clock", True, "not checked: the server sends no Date header", skipped=True))
        return
    try:
        server = email.utils.parsedate_to_datetime(probe.date).timestamp()
    except (TypeError, ValueError):
        report.checks.append(Check("clock", True, f"not checked: unreadable Date header {probe.date!r}", skipped=True))
        return
    skew = time.time() - server
    ok, warn = abs(skew) < SKEW_FAIL_S, abs(skew) >= SKEW_WARN_S
    report.checks.append(
        Check(
            "clock",
            ok,
            f"local clock {'ahead of' if skew >= 0 else 'behind'} the server by {abs(skew):.0f}s",
            "enable NTP (timedatectl set-ntp true)" if warn else "",
            warn=warn and ok,
        )
    )


async def run_doctor(samples: int = 10, use_daemon: bool = True, url: str | None = None) -> Report:
    report = Report()
    cfg = _check_config(report)
    if cfg is None:
        return report
    url = (url or cfg.server_url).rstrip("/")
    _check_token(report, url)
    network_ok = await _check_network(report, cfg, url)
    probe = await _check_auth(report, cfg, url) if network_ok else None
    if probe is not None and probe.status == 200 and not probe.sent_key:
        _no_key_needed(report, url)
    model = _check_model(report, cfg, probe) if probe else None
    await _check_tunnel(report, cfg)
    if probe:
        check_clock(report, probe)
    if model and samples > 0:
        await measure_latency(report, cfg, url, model, samples, use_daemon and url == cfg.server_url)
    return report
