"""Per-user API keys, stored hashed.

A key reads ``ca-<key id>.<secret>``. The store (a JSON file, mode 0600) keeps only
HMAC-SHA256(pepper, secret) per key id, so a leaked store does not give working keys; the pepper lives
outside the store (``CODEASSIST_GATEWAY_PEPPER`` or its own 0600 file). Lookup is by key id, then
the hashes are compared with :func:`hmac.compare_digest`. The gateway reloads the file when it changes,
so ``keys revoke`` takes effect without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from codeassist.serverkit.gateway.config import CLASSES

__all__ = ["KeyRecord", "KeyStore", "PepperedHmac", "load_pepper", "user_hash"]

PEPPER_ENV = "CODEASSIST_GATEWAY_PEPPER"


def load_pepper(path: Path) -> bytes:
    """The server pepper: from the environment, else from ``path`` (created 0600 on first use)."""
    env = os.environ.get(PEPPER_ENV)
    if env:
        return env.encode()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def _digest(pepper: bytes, secret: str) -> str:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


class PepperedHmac:
    """HMAC-SHA256 under one key with the key's inner and outer pads hashed once (RFC 2104), so a request pays
    two hash-state copies instead of OpenSSL's per-call key setup and digest lookup, which cost tens of µs
    per request when that code is cold. Same value as ``hmac.new(key, msg, hashlib.sha256).hexdigest()``."""

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hexdigest(self, msg: bytes) -> str:
        inner = self._inner.copy()
        inner.update(msg)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def user_hash(pepper: bytes, user: str) -> str:
    """A stable pseudonym for logs and /stats: the user name never appears there."""
    return hmac.new(pepper, b"user:" + user.encode(), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    user: str
    digest: str
    max_class: str = "interactive"  # the most urgent class this key may use
    created: float = field(default_factory=time.time)
    expires: float | None = None  # unix time
    revoked: bool = False
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    admin: bool = False  # may read every user's /stats and /metrics from anywhere

    def active(self, now: float) -> bool:
        return not self.revoked and (self.expires is None or now < self.expires)


class KeyStore:
    def __init__(self, path: Path, pepper: bytes, now=time.time) -> None:
        self.path, self.pepper, self.now = path, pepper, now
        self._mac = PepperedHmac(pepper)
        self._records: dict[str, KeyRecord] = {}
        self._mtime: float | None = None
        self._checked = 0.0
        self.reload()

    # -- persistence -------------------------------------------------------------------------
    def reload(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._records, self._mtime = {}, None
            return
        if st.st_mtime == self._mtime:
            return
        data = json.loads(self.path.read_text() or "{}")
        self._records = {k: KeyRecord(**v) for k, v in data.get("keys", {}).items()}
        self._mtime = st.st_mtime

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"keys": {k: asdict(r) for k, r in self._records.items()}}, f, indent=1)
        os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime

    # -- admin -------------------------------------------------------------------------------
    def add(
        self,
        user: str,
        max_class: str = "interactive",
        expires: float | None = None,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        admin: bool = False,
    ) -> tuple[str, KeyRecord]:
        """Create a key; returns the full key (shown once) and its record."""
        if max_class not in CLASSES:
            raise ValueError(f"unknown class {max_class!r}; one of {', '.join(CLASSES)}")
        self.reload()
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        rec = KeyRecord(
            key_id,
            user,
            _digest(self.pepper, secret),
            max_class,
            self.now(),
            expires,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            admin=admin,
        )
        self._records[key_id] = rec
        self._save()
        return f"ca-{key_id}.{secret}", rec

    def list(self) -> list[KeyRecord]:
        self.reload()
        return sorted(self._records.values(), key=lambda r: (r.user, r.created))

    def _select(self, ident: str) -> list[KeyRecord]:
        self.reload()
        if ident in self._records:
            return [self._records[ident]]
        return [r for r in self._records.values() if r.user == ident and not r.revoked]

    def revoke(self, ident: str) -> list[KeyRecord]:
        """Revoke a key by id, or every active key of a user."""
        hits = self._select(ident)
        for r in hits:
            self._records[r.key_id] = replace(r, revoked=True)
        if hits:
            self._save()
        return hits

    def rotate(self, ident: str) -> tuple[str, KeyRecord]:
        """Issue a new key with the same user and settings, and revoke the old one(s)."""
        hits = self._select(ident)
        if not hits:
            raise KeyError(ident)
        old = hits[0]
        for r in hits:
            self.revoke(r.key_id)
        return self.add(old.user, old.max_class, old.expires, old.requests_per_minute, old.tokens_per_minute, old.admin)

    # -- request path ------------------------------------------------------------------------
    def users(self) -> set[str]:
        """The user names that have keys (for the dashboard's ``?names=1``)."""
        self.reload()
        return {r.user for r in self._records.values()}

    def verify(self, authorization: str | None) -> KeyRecord | None:
        """The active record for an ``Authorization: Bearer`` header value, else None."""
        now = self.now()
        if now - self._checked > 1.0:  # pick up `keys revoke` from another process
            self._checked = now
            self.reload()
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization[7:].strip()
        key_id, dot, secret = token.removeprefix("ca-").partition(".")
        rec = self._records.get(key_id) if dot and token.startswith("ca-") else None
        # Compare even for an unknown id so timing does not reveal which ids exist.
        expected = rec.digest if rec else "0" * 64
        ok = hmac.compare_digest(self._mac.hexdigest(secret.encode()), expected)
        return rec if ok and rec is not None and rec.active(now) else None
