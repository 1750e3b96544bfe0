"""Per-document settings: the daemon serves many repositories, so each request takes its own repo's.

For a document, the project file is looked up from the document's directory up to its workspace root
(never above it, never from the daemon's cwd) and read as untrusted input (``config.read_project_file``):
an untrusted repo may shape prompts, a trusted one may also route its own completions. A project that
routes elsewhere gets its own ``FallbackTransport``; everything else shares the user's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeassist.client.config import Config, ConfigError, project_file_between, read_project_file, with_project
from codeassist.client.documents import uri_to_path
from codeassist.client.transport.base import Transport

__all__ = ["ProjectResolver", "Route", "routing_key"]

log = logging.getLogger(__name__)


def _stamp(pfile: str | None) -> tuple[Any, ...] | None:
    if pfile is None:
        return None
    try:
        st = os.lstat(pfile)
    except OSError:
        return None
    return pfile, st.st_mtime_ns, st.st_size, st.st_ino, st.st_uid, st.st_mode


@dataclass(frozen=True)
class Route:
    """What one request uses: its effective config and the transport its code goes through."""

    config: Config
    transport: Transport


def routing_key(cfg: Config) -> tuple[Any, ...]:
    return (
        cfg.server_url,
        cfg.model,
        tuple(cfg.fallback),
        tuple(sorted(cfg.endpoints.items())),
        cfg.ca_bundle,
        cfg.connect_timeout,
        cfg.first_token_timeout,
        cfg.total_timeout,
    )


class ProjectResolver:
    def __init__(
        self,
        user_config: Callable[[], Config],
        default_transport: Callable[[], Transport],
        roots: Callable[[], list[str]],
        make_transport: Callable[[Config], Transport],
        warn: Callable[[str], None],
    ) -> None:
        self._user_config = user_config
        self._default_transport = default_transport
        self._roots = roots
        self._make_transport = make_transport
        self._warn = warn
        self._by_dir: dict[tuple[str, str | None], tuple[tuple[Any, ...] | None, Config, Config]] = {}
        self._transports: dict[tuple[Any, ...], Transport] = {}
        self._warned: set[str] = set()
        self._where: dict[str, tuple[int, str, str | None]] = {}  # uri -> (roots seen, its dir, its root)

    def root_of(self, path: str) -> str | None:
        """The innermost workspace root holding ``path`` (roots arrive as file URIs or paths)."""
        best: str | None = None
        for r in self._roots():
            root = str(uri_to_path(r) or "")
            root = root.rstrip("/") or "/"
            if (path == root or path.startswith(root + "/") or root == "/") and (best is None or len(root) > len(best)):
                best = root
        return best

    def config_for(self, uri: str) -> Config:
        """The document's effective config; re-read whenever its project file changes (a few lstat calls
        per request: an edit or a pulled commit applies to the very next completion)."""
        user = self._user_config()
        where = self._where.get(uri)
        if where is None or where[0] != len(self._roots()):
            path = uri_to_path(uri)
            if path is None:
                return user
            where = self._where[uri] = (len(self._roots()), os.path.dirname(str(path)), self.root_of(str(path)))
            if len(self._where) > 4096:
                self._where.clear()
        _, directory, root = where
        pfile = project_file_between(directory, root or directory)
        stamp = _stamp(pfile)
        key = (directory, root)
        hit = self._by_dir.get(key)
        if hit is not None and hit[0] == stamp and hit[1] is user:
            return hit[2]
        try:
            cfg = user if pfile is None else with_project(user, read_project_file(Path(pfile)))
        except ConfigError as exc:
            self._warn_once(f"codeassist: {exc}; using your own settings for {directory}")
            cfg = user
        for warning in cfg.warnings:
            self._warn_once(warning)
        if len(self._by_dir) > 1024:
            self._by_dir.clear()
        self._by_dir[key] = (stamp, user, cfg)
        return cfg

    def route(self, uri: str) -> Route:
        cfg = self.config_for(uri)
        user = self._user_config()
        if cfg is user:
            return Route(cfg, self._default_transport())
        key = routing_key(cfg)
        if key == routing_key(user):
            return Route(cfg, self._default_transport())
        transport = self._transports.get(key)
        if transport is None:
            log.info("a trusted project routes to %s", cfg.server_url)
            transport = self._transports[key] = self._make_transport(cfg)
        return Route(cfg, transport)

    def forget(self) -> list[Transport]:
        """Drop what was read (the user config or trust changed); returns the transports to close."""
        self._by_dir.clear()
        self._warned.clear()
        old, self._transports = list(self._transports.values()), {}
        return old

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)
            self._warn(message)
