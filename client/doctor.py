"""`codeassist doctor`: checks that explain what is wrong and how to fix it, then a latency breakdown.

Returns data (:class:`Report` of :class:`Check`); the CLI formats it. Checks run in data-path order
(config, key, DNS, TCP, TLS, auth, model, tunnel, clock) and stop early where later ones cannot mean
anything. The latency part times N fresh DNS/connect/TLS handshakes and N real completions through the
daemon (so its own overhead shows), and compares time to first token with the autocomplete targets.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ipaddress
import socket
import ssl
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from codeassist.client import auth
from codeassist.client.config import Config, ConfigError, find_project_file, load_config, user_config_file
from codeassist.client.daemon_client import call
from codeassist.client.latency import percentile

__all__ = ["TTFT_P50_TARGET_MS", "TTFT_P99_TARGET_MS", "Check", "Report", "format_report", "run_doctor"]

TTFT_P50_TARGET_MS = 100.0
TTFT_P99_TARGET_MS = 200.0
SKEW_WARN_S = 30.0
SKEW_FAIL_S = 300.0
# A short single-line completion, like most keystrokes: the figures are about latency, not long output.
PROBE_TEXT = "def add_{tag}(a: int, b: int) -> int:\n    \"\"\"Return the sum of a and b.\"\"\"\n    return "


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warn: bool = False  # works, but worth a look


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks], "latency": self.latency,
                "hints": self.hints}


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 2), "p99_ms": round(percentile(values, 99), 2),
            "n": len(values)}


# -- network probes -----------------------------------------------------------------------------
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _resolve(host: str, port: int) -> tuple[list[tuple[Any, ...]], float]:
    t0 = time.perf_counter()
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return infos, (time.perf_counter() - t0) * 1000


def _connect(info: tuple[Any, ...], timeout: float) -> tuple[socket.socket, float]:
    family, type_, proto, _, addr = info
    sock = socket.socket(family, type_, proto)
    sock.settimeout(timeout)
    t0 = time.perf_counter()
    try:
        sock.connect(addr)
    except BaseException:
        sock.close()
        raise
    return sock, (time.perf_counter() - t0) * 1000


def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    ctx = auth.ssl_verify(ca_bundle)
    if isinstance(ctx, ssl.SSLContext):
        return ctx
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _handshake(sock: socket.socket, host: str, ca_bundle: str) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    with _tls_context(ca_bundle).wrap_socket(sock, server_hostname=host) as tls:
        cert = tls.getpeercert() or {}
    return cert, (time.perf_counter() - t0) * 1000


def _cert_names(host: str, port: int, timeout: float) -> str:
    """The names the server's certificate is for, read without verifying (to explain a mismatch)."""
    with contextlib.suppress(Exception):
        from cryptography import x509

        pem = ssl.get_server_certificate((host, port), timeout=timeout)
        cert = x509.load_pem_x509_certificate(pem.encode())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(v) for v in san.get_values_for_type(x509.DNSName)]
        names += [str(v) for v in san.get_values_for_type(x509.IPAddress)]
        return f"; the certificate is for {', '.join(names)} (issuer {cert.issuer.rfc4514_string()})"
    return ""


def _explain_tls(exc: ssl.SSLError, host: str, port: int, timeout: float) -> tuple[str, str]:
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", 0)
        msg = getattr(exc, "verify_message", str(exc))
        if code == 62 or "hostname" in str(msg).lower() or "ip address mismatch" in str(msg).lower():
            return (f"certificate hostname mismatch: not valid for {host!r}{_cert_names(host, port, timeout)}",
                    "use the host name the certificate was issued for in server_url, or reissue the certificate "
                    f"with {host} in its subjectAltName")
        if code == 10:
            return f"certificate expired ({msg})", "renew the server certificate"
        return (f"certificate not trusted: {msg}{_cert_names(host, port, timeout)}",
                "if the team uses its own CA, set ca_bundle = \"/path/to/team-ca.pem\" in the config "
                "(codeassist config shows where)")
    return f"TLS handshake failed: {exc}", "check that the port speaks HTTPS (or use http:// in server_url)"


# -- the checks ---------------------------------------------------------------------------------
def _check_config(report: Report) -> Config | None:
    try:
        cfg = load_config()
    except ConfigError as exc:
        report.checks.append(Check("config", False, str(exc), "fix the file named above (TOML syntax/values)"))
        return None
    ufile = user_config_file()
    pfile = find_project_file(__import__("pathlib").Path.cwd().resolve())
    files = [f"user {ufile}" + ("" if ufile.is_file() else " (absent, defaults used)")]
    if pfile:
        files.append(f"project {pfile}")
    report.checks.append(Check("config", True, f"server_url {cfg.server_url} (from {cfg.sources['server_url']}); "
                               f"fallback {cfg.fallback}; " + "; ".join(files)))
    return cfg


def _check_token(report: Report, url: str) -> None:
    stored = auth.get_token(url)
    if stored is None:
        report.checks.append(Check("token", True, f"no API key stored for {auth.server_key(url)} "
                                   "(fine if the server needs none)", f"codeassist login {url}", warn=True))
    else:
        report.checks.append(Check("token", True, f"API key present ({len(stored.token)} chars) in {stored.source}"))


async def _check_network(report: Report, cfg: Config, url: str) -> bool:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    timeout = max(2.0, cfg.connect_timeout)
    try:
        infos, dns_ms = await asyncio.to_thread(_resolve, host, port)
    except socket.gaierror as exc:
        report.checks.append(Check("dns", False, f"cannot resolve {host!r}: {exc.strerror}",
                                   "check the host name in server_url, your VPN, or /etc/hosts"))
        return False
    addrs = sorted({str(i[4][0]) for i in infos})
    report.checks.append(Check("dns", True, f"{host} is an address, no lookup" if _is_ip(host)
                               else f"{host} -> {', '.join(addrs)} in {dns_ms:.1f} ms"))
    try:
        sock, connect_ms = await asyncio.to_thread(_connect, infos[0], timeout)
    except TimeoutError:
        report.checks.append(Check("tcp", False, f"connecting to {host}:{port} timed out after {timeout:.0f}s",
                                   "a firewall or VPN drops the traffic; or reach the host over SSH: "
                                   "codeassist tunnel user@gpu-host"))
        return False
    except OSError as exc:
        report.checks.append(Check("tcp", False, f"cannot connect to {host}:{port}: {exc.strerror or exc}",
                                   "start the model server / gateway on that host (server-kit), check the port, "
                                   "or use the tunnel: codeassist tunnel user@gpu-host"))
        return False
    report.checks.append(Check("tcp", True, f"connected to {host}:{port} in {connect_ms:.1f} ms"))
    if parts.scheme != "https":
        sock.close()
        loopback = (_is_ip(host) and ipaddress.ip_address(host).is_loopback) or host == "localhost"
        report.checks.append(Check("tls", True, "plain HTTP" + ("" if loopback else " over the network: the key "
                                   "travels unencrypted"), "" if loopback else "use https:// or the SSH tunnel",
                                   warn=not loopback))
        return True
    try:
        cert, tls_ms = await asyncio.to_thread(_handshake, sock, host, cfg.ca_bundle)
    except ssl.SSLError as exc:
        detail, fix = await asyncio.to_thread(_explain_tls, exc, host, port, timeout)
        report.checks.append(Check("tls", False, detail, fix))
        return False
    except OSError as exc:
        report.checks.append(Check("tls", False, f"TLS handshake failed: {exc}", "check that the port speaks HTTPS"))
        return False
    finally:
        sock.close()
    expires = ssl.cert_time_to_seconds(cert["notAfter"]) if cert.get("notAfter") else None
    days = (expires - time.time()) / 86400 if expires else None
    issuer = ", ".join("=".join(x) for rdn in cert.get("issuer", ()) for x in rdn)
    report.checks.append(Check(
        "tls", True, f"certificate valid for {host}, issued by {issuer or '?'}"
        + (f", expires in {days:.0f} days" if days is not None else "") + f"; handshake {tls_ms:.1f} ms",
        "renew the certificate soon" if days is not None and days < 14 else "",
        warn=days is not None and days < 14))
    return True


async def _check_auth(report: Report, cfg: Config, url: str) -> auth.ModelsProbe | None:
    import httpx

    try:
        probe = await auth.probe_models(url, cfg.ca_bundle)
    except httpx.HTTPError as exc:
        report.checks.append(Check("auth", False, f"GET /models failed: {exc!r}", "see the checks above"))
        return None
    if probe.status in (401, 403):
        detail = ("the server refused the stored API key" if probe.sent_key
                  else "the server requires an API key and none is stored")
        report.checks.append(Check("auth", False, f"{detail} (HTTP {probe.status})",
                                   f"codeassist login {url}  (ask the server admin for a key if yours was revoked)"))
        return None
    if probe.status != 200:
        report.checks.append(Check("auth", False, f"GET /models answered HTTP {probe.status}",
                                   "is server_url the OpenAI-compatible base (ending in /v1)?"))
        return None
    report.checks.append(Check("auth", True, ("API key accepted" if probe.sent_key else "no key needed")
                               + f" (/models in {probe.elapsed_ms:.0f} ms)"))
    return probe


def _check_model(report: Report, cfg: Config, probe: auth.ModelsProbe) -> str | None:
    from codeassist.context.templates import detect_family

    if not probe.models:
        report.checks.append(Check("model", False, "the server serves no model", "start the model server"))
        return None
    model = cfg.model or probe.models[0]
    if cfg.model and cfg.model not in probe.models:
        report.checks.append(Check("model", False, f"model {cfg.model!r} not served (served: {probe.models})",
                                   f"set model to one of {probe.models} or leave it empty"))
        return None
    family = cfg.family if cfg.family != "auto" else detect_family(model)
    plain = family == "plain"
    report.checks.append(Check("model", True, f"{model}: FIM family {family}"
                               + (" (no fill-in-the-middle: completions see only the prefix)" if plain else ""),
                               "serve a FIM-trained code model (Qwen2.5-Coder, StarCoder2, ...)" if plain else "",
                               warn=plain))
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
    where = f"daemon uses endpoint {st.get('endpoint') or 'none'} ({st.get('state')})"
    if not tun.get("spec"):
        report.checks.append(Check("tunnel", True, f"no tunnel; {where}"))
    elif tun["state"] == "up":
        report.checks.append(Check("tunnel", True, f"{tun['spec']['target']} up on {tun['local_url']} "
                                   f"(restarts {tun['restarts']}); {where}"))
    else:
        report.checks.append(Check("tunnel", False, f"{tun['spec']['target']} is {tun['state']}: "
                                   f"{tun.get('last_error') or 'no error yet'}; {where}",
                                   f"try `ssh -o BatchMode=yes {tun['spec']['target']} true`: load your key with "
                                   "ssh-add, accept the host key once, check the remote port"))


def _check_clock(report: Report, probe: auth.ModelsProbe) -> None:
    if not probe.date:
        report.checks.append(Check("clock", True, "not checked: the server sends no Date header"))
        return
    try:
        server = email.utils.parsedate_to_datetime(probe.date).timestamp()
    except (TypeError, ValueError):
        report.checks.append(Check("clock", True, f"not checked: unreadable Date header {probe.date!r}"))
        return
    skew = time.time() - server
    ok, warn = abs(skew) < SKEW_FAIL_S, abs(skew) >= SKEW_WARN_S
    report.checks.append(Check("clock", ok, f"local clock {'ahead of' if skew >= 0 else 'behind'} the server by "
                               f"{abs(skew):.0f}s", "enable NTP (timedatectl set-ntp true)" if warn else "",
                               warn=warn and ok))


# -- latency ------------------------------------------------------------------------------------
async def _network_samples(cfg: Config, url: str, n: int) -> dict[str, list[float]]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    out: dict[str, list[float]] = {"dns": [], "connect": [], "tls": []}
    for _ in range(n):
        infos, dns_ms = await asyncio.to_thread(_resolve, host, port)
        sock, connect_ms = await asyncio.to_thread(_connect, infos[0], 5.0)
        out["dns"].append(dns_ms)
        out["connect"].append(connect_ms)
        if parts.scheme == "https":
            _, tls_ms = await asyncio.to_thread(_handshake, sock, host, cfg.ca_bundle)
            out["tls"].append(tls_ms)
        else:
            sock.close()
    return out


async def _daemon_samples(n: int) -> dict[str, list[float]]:
    from codeassist.client.daemon_client import connect

    out: dict[str, list[float]] = {"ttft": [], "total": [], "context": [], "debounce": [], "daemon_overhead": [],
                                   "errors": [], "cached": []}
    conn = await connect(start=True)
    try:
        for i in range(n):
            uri = f"file:///codeassist-doctor/{uuid.uuid4().hex}/probe.py"
            text = PROBE_TEXT.format(tag=f"{i}_{uuid.uuid4().hex[:8]}")  # new text near the cursor: no cache hit
            await conn.request("doc/open", {"uri": uri, "text": text, "language": "python"})
            t0 = time.perf_counter()
            result = await asyncio.wait_for(conn.request("complete", {"uri": uri, "offset": len(text)}), 60)
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
    t = HttpTransport(url, token=stored.token if stored else None, connect_timeout=cfg.connect_timeout,
                      first_token_timeout=cfg.first_token_timeout, total_timeout=cfg.total_timeout,
                      verify=auth.ssl_verify(cfg.ca_bundle))  # type: ignore[arg-type]
    out: dict[str, list[float]] = {"ttft": [], "total": [], "errors": []}
    try:
        for i in range(n):
            params = CompletionParams(prompt=PROBE_TEXT.format(tag=f"{i}_{uuid.uuid4().hex[:8]}"), model=model,
                                      max_tokens=16,
                                      stop=("\n",))
            try:
                async for _ in t.stream(params):
                    pass
            except TransportError:
                out["errors"].append(1.0)
                continue
            if "ttft_ms" in t.last_timing:
                out["ttft"].append(t.last_timing["ttft_ms"])
                out["total"].append(t.last_timing["total_ms"])
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
            hints.append(f"TTFT dominated by the network (round trip ≈ {rtt:.0f} ms of {ttft:.0f} ms): use the "
                         "tunnel to the nearer host or a gateway closer to you")
        else:
            hints.append(f"server time to first token high ({ttft - rtt:.0f} ms beyond the {rtt:.0f} ms round trip): "
                         "queueing or prefill on the server; see `server-kit plan` (smaller model, more replicas, "
                         "prefix caching)")
    if tls > 50:
        hints.append(f"TLS handshake {tls:.0f} ms: the daemon keeps connections alive, so this hits only the first "
                     "request; a persistent daemon (not killed between edits) avoids it")
    overhead = lat.get("daemon_overhead", {}).get("p50_ms", 0.0)
    if overhead > 20:
        ctx = lat.get("context", {}).get("p50_ms", 0.0)
        hints.append(f"daemon overhead {overhead:.0f} ms (context build {ctx:.0f} ms): lower `budget` or check the "
                     "daemon log for queueing")
    return hints


async def _latency(report: Report, cfg: Config, url: str, model: str, n: int, use_daemon: bool) -> None:
    try:
        net = await _network_samples(cfg, url, n)
        comp = await (_daemon_samples(n) if use_daemon else _direct_samples(cfg, url, model, n))
    except Exception as exc:
        report.checks.append(Check("latency", False, f"measuring failed: {exc!r}", "see the checks above"))
        return
    lat: dict[str, Any] = {k: _summary(v) for k, v in {**net, **comp}.items() if v and k not in ("errors", "cached")}
    lat["samples"], lat["errors"], lat["via"] = n, len(comp.get("errors", [])), "daemon" if use_daemon else "direct"
    lat["cached"] = len(comp.get("cached", []))
    lat["targets"] = {"ttft_p50_ms": TTFT_P50_TARGET_MS, "ttft_p99_ms": TTFT_P99_TARGET_MS}
    report.latency = lat
    report.hints = _latency_hints(lat)
    if "ttft" not in lat:
        report.checks.append(Check("latency", False, f"none of {n} completions produced a token",
                                   "see the daemon log (codeassist status shows where)"))
        return
    p50, p99 = lat["ttft"]["p50_ms"], lat["ttft"]["p99_ms"]
    met = p50 < TTFT_P50_TARGET_MS and p99 < TTFT_P99_TARGET_MS
    if lat["errors"]:
        report.hints.append(f"{lat['errors']} of {n} completions failed (see the daemon log): usually timeouts "
                            "on an overloaded server; raise first_token_timeout only if the server is known slow")
    report.checks.append(Check("latency", True, f"TTFT p50 {p50:.0f} ms / p99 {p99:.0f} ms over {lat['ttft']['n']} "
                               f"completions (targets < {TTFT_P50_TARGET_MS:.0f} / < {TTFT_P99_TARGET_MS:.0f} ms)"
                               + ("" if met else ": above target")
                               + (f"; {lat['errors']} of {n} failed" if lat["errors"] else ""),
                               "; ".join(report.hints), warn=not met or bool(lat["errors"])))


async def run_doctor(samples: int = 10, use_daemon: bool = True, url: str | None = None) -> Report:
    report = Report()
    cfg = _check_config(report)
    if cfg is None:
        return report
    url = (url or cfg.server_url).rstrip("/")
    _check_token(report, url)
    network_ok = await _check_network(report, cfg, url)
    probe = await _check_auth(report, cfg, url) if network_ok else None
    model = _check_model(report, cfg, probe) if probe else None
    await _check_tunnel(report, cfg)
    if probe:
        _check_clock(report, probe)
    if model and samples > 0:
        await _latency(report, cfg, url, model, samples, use_daemon and url == cfg.server_url)
    return report


def format_report(report: Report) -> str:
    lines: list[str] = []
    for c in report.checks:
        mark = "FAIL" if not c.ok else ("warn" if c.warn else " ok ")
        lines.append(f"[{mark}] {c.name:<8} {c.detail}")
        if c.fix and (not c.ok or c.warn):
            lines.append(f"         fix: {c.fix}")
    lat = report.latency
    if lat:
        lines.append(f"\nlatency over {lat['samples']} requests ({lat['via']}, {lat['errors']} errors, "
                     f"{lat.get('cached', 0)} answered from cache):")
        for key in ("dns", "connect", "tls", "ttft", "total", "debounce", "context", "daemon_overhead"):
            if key in lat:
                lines.append(f"  {key:<16} p50 {lat[key]['p50_ms']:8.1f} ms   p99 {lat[key]['p99_ms']:8.1f} ms")
        lines.append(f"  targets: TTFT p50 < {TTFT_P50_TARGET_MS:.0f} ms, p99 < {TTFT_P99_TARGET_MS:.0f} ms")
    for hint in report.hints:
        lines.append(f"hint: {hint}")
    lines.append("\n" + ("all checks passed" if report.ok else "something is broken: see FAIL above"))
    return "\n".join(lines)
