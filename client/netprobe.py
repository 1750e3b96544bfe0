"""Timed network steps for `codeassist doctor`: DNS, TCP connect, TLS handshake, and why TLS failed."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import time
from typing import Any

from codeassist.client import auth

__all__ = ["cert_names", "connect", "explain_tls", "handshake", "is_ip", "resolve"]


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def resolve(host: str, port: int) -> tuple[list[tuple[Any, ...]], float]:
    t0 = time.perf_counter()
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return infos, (time.perf_counter() - t0) * 1000


def connect(info: tuple[Any, ...], timeout: float) -> tuple[socket.socket, float]:
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


def handshake(sock: socket.socket, host: str, ca_bundle: str) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    with _tls_context(ca_bundle).wrap_socket(sock, server_hostname=host) as tls:
        cert = tls.getpeercert() or {}
    return cert, (time.perf_counter() - t0) * 1000


def cert_names(host: str, port: int, timeout: float) -> str:
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


def explain_tls(exc: ssl.SSLError, host: str, port: int, timeout: float) -> tuple[str, str]:
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", 0)
        msg = getattr(exc, "verify_message", str(exc))
        if code == 62 or "hostname" in str(msg).lower() or "ip address mismatch" in str(msg).lower():
            return (
                f"certificate hostname mismatch: not valid for {host!r}{cert_names(host, port, timeout)}",
                "use the host name the certificate was issued for in server_url, or reissue the certificate "
                f"with {host} in its subjectAltName",
            )
        if code == 10:
            return f"certificate expired ({msg})", "renew the server certificate"
        return (
            f"certificate not trusted: {msg}{cert_names(host, port, timeout)}",
            'if the team uses its own CA, set ca_bundle = "/path/to/team-ca.pem" in the config '
            "(codeassist config shows where)",
        )
    return f"TLS handshake failed: {exc}", "check that the port speaks HTTPS (or use http:// in server_url)"
