"""The API key: the only module that reads, stores or sends secrets.

Keys are stored per server (keyed by the server URL) in the system keyring. Headless machines often
have no keyring backend; then the key goes to ``<config dir>/credentials.json`` with mode 0600 and the
caller gets a one-line warning to show — never silently. ``CODEASSIST_API_KEY`` in the environment
overrides both (for CI), for the configured server only (the user's own ``server_url``), never for any
URL a caller names. Nothing here logs a key; :func:`redact` masks one for display, and :func:`may_send_key`
keeps it off plain HTTP to other hosts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from codeassist.client import paths

if TYPE_CHECKING:
    from codeassist.client.config import Config
from codeassist.client.transport.base import TransportError

__all__ = [
    "ENV_KEY",
    "LoginResult",
    "ModelsProbe",
    "StoredKey",
    "credentials_file",
    "delete_token",
    "get_token",
    "is_loopback",
    "login",
    "may_send_key",
    "probe_models",
    "redact",
    "server_key",
    "store_token",
    "verify_token",
]

log = logging.getLogger(__name__)

SERVICE = "codeassist"
ENV_KEY = "CODEASSIST_API_KEY"


@dataclass(frozen=True)
class StoredKey:
    token: str
    source: str  # environment | keyring (<backend>) | file (<path>)

    def __repr__(self) -> str:  # never print the secret by accident
        return f"StoredKey(token={redact(self.token)!r}, source={self.source!r})"


@dataclass(frozen=True)
class LoginResult:
    server: str
    models: list[str]
    stored_in: str
    warning: str | None = None


def server_key(url: str) -> str:
    """The name a key is stored under: scheme://host:port of the server (paths and case ignored)."""
    parts = urlsplit(url.strip())
    scheme = (parts.scheme or "http").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def may_send_key(url: str, allow_insecure_http: bool = False) -> bool:
    """A key goes over https, or over plain http to this machine; elsewhere only if the user opted in."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() == "https":
        return True
    return is_loopback(parts.hostname or "") or allow_insecure_http


def _own_config() -> Config | None:
    """The user's own config and environment (never a project's); None when it does not load."""
    from codeassist.client.config import ConfigError, load_config

    try:
        return load_config()
    except ConfigError:
        return None


def configured_server() -> str:
    """The server the environment key belongs to: the user's own server_url (never a project's)."""
    own = _own_config()
    return own.server_url if own is not None else os.environ.get("CODEASSIST_SERVER_URL", "")


def redact(token: str) -> str:
    return "<none>" if not token else f"…{token[-4:]} ({len(token)} chars)" if len(token) >= 12 else "****"


def credentials_file() -> Path:
    return paths.config_dir() / "credentials.json"


def _keyring_backend() -> object | None:
    """The usable keyring backend, or None when there is none (headless Linux)."""
    if os.environ.get("CODEASSIST_KEYRING", "").lower() in ("file", "none", "0", "off"):
        return None
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        return None
    # The chainer with nothing behind it behaves like the fail backend.
    if getattr(backend, "backends", None) == []:
        return None
    return backend


def _backend_name(backend: object) -> str:
    return f"{type(backend).__module__}.{type(backend).__name__}"


def _read_file() -> dict[str, str]:
    path = credentials_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, type(exc).__name__)
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_file(data: dict[str, str]) -> Path:
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, json.dumps(data, indent=1, sort_keys=True).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def store_token(url: str, token: str) -> tuple[str, str | None]:
    """Store the key for ``url``. Returns (where it went, a warning to show or None)."""
    name = server_key(url)
    backend = _keyring_backend()
    if backend is not None:
        import keyring

        try:
            keyring.set_password(SERVICE, name, token)
            return f"keyring ({_backend_name(backend)})", None
        except keyring.errors.KeyringError as exc:
            reason = f"the keyring refused it ({type(exc).__name__})"
    else:
        reason = "no keyring backend is available"
    data = _read_file()
    data[name] = token
    path = _write_file(data)
    return f"file ({path})", f"warning: {reason}; the API key is stored in {path} (mode 0600, plain text)"


def get_token(url: str) -> StoredKey | None:
    name = server_key(url)
    env = os.environ.get(ENV_KEY)
    if env and name == server_key(configured_server()):
        return StoredKey(env, "environment")
    backend = _keyring_backend()
    if backend is not None:
        import keyring

        try:
            value = keyring.get_password(SERVICE, name)
        except keyring.errors.KeyringError:
            value = None
        if value:
            return StoredKey(value, f"keyring ({_backend_name(backend)})")
    value = _read_file().get(name)
    if value:
        return StoredKey(value, f"file ({credentials_file()})")
    return None


def delete_token(url: str) -> list[str]:
    """Forget the key for ``url`` everywhere it was stored; returns where it was removed from."""
    name = server_key(url)
    removed: list[str] = []
    backend = _keyring_backend()
    if backend is not None:
        import keyring

        with contextlib.suppress(keyring.errors.KeyringError):
            if keyring.get_password(SERVICE, name):
                keyring.delete_password(SERVICE, name)
                removed.append(f"keyring ({_backend_name(backend)})")
    data = _read_file()
    if name in data:
        del data[name]
        path = _write_file(data)
        removed.append(f"file ({path})")
    return removed


def ssl_verify(ca_bundle: str = "") -> ssl.SSLContext | bool:
    """What to hand httpx as ``verify``: certifi roots plus the configured CA bundle."""
    if not ca_bundle:
        return True
    import certifi

    ctx = ssl.create_default_context(cafile=certifi.where())
    ctx.load_verify_locations(cafile=ca_bundle)
    return ctx


async def verify_token(url: str, token: str | None, ca_bundle: str = "", timeout: float = 5.0) -> list[str]:
    """Ask ``/models`` with the key; returns the served models or raises TransportError (kind auth, ...)."""
    from codeassist.client.transport.http import HttpTransport

    transport = HttpTransport(
        url, token=token, connect_timeout=timeout, total_timeout=timeout, verify=ssl_verify(ca_bundle)
    )
    try:
        return await transport.models()
    finally:
        await transport.aclose()


@dataclass(frozen=True)
class ModelsProbe:
    status: int
    models: list[str]
    sent_key: bool
    date: str | None  # the server's Date header, for the clock-skew check
    elapsed_ms: float


async def probe_models(url: str, ca_bundle: str = "", timeout: float = 5.0) -> ModelsProbe:
    """GET ``/models`` with the stored key (for doctor). Raises httpx errors for connect/TLS problems."""
    import time

    import httpx

    stored = get_token(url)
    if stored is not None and not may_send_key(url, _insecure_ok()):
        stored = None
    headers = {"Authorization": f"Bearer {stored.token}"} if stored else {}
    async with httpx.AsyncClient(verify=ssl_verify(ca_bundle), timeout=timeout) as client:
        t0 = time.perf_counter()
        resp = await client.get(url.rstrip("/") + "/models", headers=headers)
        elapsed = (time.perf_counter() - t0) * 1000
    models: list[str] = []
    if resp.status_code == 200:
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            models = [m["id"] for m in resp.json().get("data", [])]
    return ModelsProbe(resp.status_code, models, stored is not None, resp.headers.get("date"), elapsed)


def _insecure_ok() -> bool:
    own = _own_config()
    return own is not None and own.allow_insecure_http


async def login(url: str, token: str, ca_bundle: str = "") -> LoginResult:
    """Verify the key against the server, then store it. Nothing is stored when the check fails."""
    token = token.strip()
    if not token:
        raise ValueError("empty API key")
    if any(c.isspace() for c in token):
        raise ValueError("the API key contains whitespace")
    try:
        models = await verify_token(url, token, ca_bundle)
    except TransportError as exc:
        if exc.kind == "auth":
            raise TransportError(
                "auth", f"{url} refused this API key (HTTP {exc.status}); nothing stored", exc.status
            ) from None
        raise TransportError(exc.kind, f"{exc}; nothing stored", exc.status) from None
    stored_in, warning = store_token(url, token)
    log.info("API key for %s stored in %s", server_key(url), stored_in)
    return LoginResult(server=url, models=models, stored_in=stored_in, warning=warning)
