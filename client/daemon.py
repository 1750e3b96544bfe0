"""The per-user daemon: one per user, shared by every editor through a unix socket.

It owns the document mirror, the completion engine (and with it the cache, the index and the pooled
HTTP connection), so several editors share all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import logging.handlers
import os
import signal
import sys
import time
from typing import Any

from codeassist.client import paths
from codeassist.client.config import Config, load_config, user_config_file
from codeassist.client.daemon_rpc import Connection, RpcServer
from codeassist.client.documents import DocumentStore, uri_to_path
from codeassist.client.endpoints import FallbackTransport
from codeassist.client.engine import UNCOUNTED, CompletionEngine
from codeassist.client.project import ProjectResolver, routing_key
from codeassist.client.protocol import MAX_LINE
from codeassist.client.telemetry import Telemetry
from codeassist.client.tunnel import TunnelSpec, TunnelSupervisor
from codeassist.client.version import VERSION
from codeassist.context.engine import ContextEngine

__all__ = ["Daemon", "main"]

log = logging.getLogger(__name__)


class Daemon(RpcServer):
    def __init__(self, config: Config, engine: CompletionEngine | None = None) -> None:
        super().__init__()
        self.config = config
        self.documents = DocumentStore()
        # Endpoints in fallback order (gateway, SSH tunnel, ...): one Transport that picks the working one.
        self.tunnel = TunnelSupervisor(on_change=lambda state: self.transport.tunnel_changed(state))
        self.transport = FallbackTransport(
            config,
            tunnel_url=lambda: self.tunnel.local_url if self.tunnel.state != "stopped" else None,
            tunnel_up=lambda: self.tunnel.state == "up",
            notify=self._connectivity_event,
            tunnel_pending=lambda: self.tunnel.state == "connecting" and self.tunnel.status()["restarts"] == 0,
        )
        self.context = ContextEngine(budget=config.budget, exclude=config.exclude)
        self.engine = engine or CompletionEngine(config, self.transport, context=self.context)
        if self.engine.context is None:  # an engine made elsewhere (tests, benchmarks) shares the daemon's
            self.engine.context = self.context
        # Each document's own repo settings (never the settings of whoever started the daemon).
        self.projects = ProjectResolver(
            user_config=lambda: self.config,
            default_transport=lambda: self.engine.transport,
            roots=lambda: self.roots,
            make_transport=lambda cfg: FallbackTransport(cfg),
            warn=lambda message: self.broadcast("window/showMessage", {"type": 2, "message": message}),
        )
        self.engine.route = self.projects.route
        self._config_stamp = _user_config_stamp()
        self.started = time.monotonic()
        self._stop = asyncio.Event()
        self.handlers = {
            "hello": self._hello,
            "status": self._status,
            "stop": self._stop_request,
            "doc/open": self._doc_open,
            "doc/change": self._doc_change,
            "doc/close": self._doc_close,
            "complete": self._complete,
            "accept": self._accept,
            "stats": self._stats,
            "workspace/roots": self._roots,
            "tunnel/start": self._tunnel_start,
            "tunnel/stop": self._tunnel_stop,
            "tunnel/status": self._tunnel_status,
            "connectivity/status": self._connectivity_status,
            "auth/reload": self._auth_reload,
            "config/reload": self._config_reload,
        }
        self.roots: list[str] = []
        self.telemetry = Telemetry(self)  # counts to a gateway that collects them (client/telemetry.py)

    # -- handlers --------------------------------------------------------------------------------
    async def _hello(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        return {"version": VERSION, "pid": os.getpid(), "client": conn.id}

    async def _status(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "version": VERSION,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "clients": len(self.connections) - 1,  # not counting the connection asking
            "documents": len(self.documents.all()),
            "server_url": self.config.server_url,
            "server_in_use": self.transport.status().get("url"),
            "model": self.engine.models.last[0] if self.engine.models.last else None,
            "family": self.engine.models.last[1] if self.engine.models.last else None,
            "idle_timeout_s": self.config.idle_timeout,
            "telemetry": (
                f"on: aggregate counts only, never code ({self.telemetry.reports} reports sent)"
                if self.config.telemetry
                else "off (telemetry = false)"
            ),
            "socket": str(paths.socket_path()),
            "log": str(paths.log_dir() / "daemon.log"),
            "counters": self._counters(),
            "server": self._server_speed(),
            "connectivity": self.transport.status(),
        }

    async def _stop_request(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        asyncio.get_running_loop().call_later(0.05, self._stop.set)
        return {"stopping": True}

    async def _doc_open(self, conn: Connection, params: dict[str, Any]) -> None:
        doc = self.documents.open(
            params["uri"], params["text"], params.get("language", ""), params.get("version", 0), conn.id
        )
        assert doc.parsed is not None
        self.context.attach(doc.uri, doc.parsed)  # the same object: one copy of the text, one tree

    async def _doc_change(self, conn: Connection, params: dict[str, Any]) -> None:
        doc = self.documents.get(params["uri"])
        if doc is None:
            raise ValueError(f"document not open: {params['uri']}")
        for start, end, text in params["edits"]:
            doc.apply(int(start), int(end), str(text))
        self.context.note_edits(params["uri"], params["edits"])
        doc.version = params.get("version", doc.version)
        self.engine.on_change(doc)  # rhythm, cancel the pending request, check the speculation

    async def _doc_close(self, conn: Connection, params: dict[str, Any]) -> None:
        if self.documents.close(params["uri"], conn.id):
            self._closed(params["uri"])

    def connection_lost(self, conn: Connection) -> None:
        for uri in self.documents.drop_owner(conn.id):
            self._closed(uri)

    def _closed(self, uri: str) -> None:
        """The document's last editor closed it (or went away)."""
        self.context.close_document(uri)
        self.engine.on_close(uri)  # cancel its waiting/in-flight/speculative requests

    async def _complete(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        # doctor's probes are measured, not counted: for this handler's own task and the tasks it starts
        UNCOUNTED.set(params.get("stats", True) is False)
        await self._follow_user_config()
        doc = self.documents.get(params["uri"])
        if doc is None:
            raise ValueError(f"document not open: {params['uri']}")
        offset = int(params["offset"])
        if not 0 <= offset <= len(doc.text):
            raise ValueError(f"offset {offset} outside the document (length {len(doc.text)})")
        result = await self.engine.complete(doc, offset, priority=params.get("priority", "interactive"))
        return result.as_dict()

    async def _accept(self, conn: Connection, params: dict[str, Any]) -> None:
        chars = params.get("chars")
        self.engine.accept(params.get("id"), int(chars) if isinstance(chars, int | float) else None)

    def _counters(self) -> dict[str, int]:
        """The status line's summary of the one counter set (the engine's SessionStats)."""
        c = self.engine.stats.counts
        return {
            "requests": c["requests"],
            "completions": c["shown"],
            "errors": c["errors"],
            "cancelled": c["cancelled"],
            "accepted": c["accepted"] + c["partially_accepted"],
        }

    async def _stats(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "uptime_s": round(time.monotonic() - self.started, 1),
            "mode": self.config.engine_mode,
            **self.engine.stats.snapshot(),
            "cache": {"entries": len(self.engine.cache), "bytes": self.engine.cache.bytes},
            "server": self._server_speed(),
        }

    def _server_speed(self) -> dict[str, Any]:
        """The server's measured cost and what the engine makes of it (the effective prompt budget, and why)."""
        speed = self.engine.speeds.last or self.engine.speeds.of(self.transport)
        return speed.summary(self.config.budget, self.config.eager)

    async def _roots(self, conn: Connection, params: dict[str, Any]) -> None:
        roots = params.get("roots", [])
        if not isinstance(roots, list) or not all(isinstance(r, str) and uri_to_path(r) for r in roots):
            raise ValueError("roots must be a list of file URIs or paths")
        for root in roots:
            if root not in self.roots:
                self.roots.append(root)
                # background cold index + watchfiles; never blocks completions. The repo's own exclude globs
                # apply even untrusted: they can only narrow what is read.
                self.context.add_root(root, exclude=self._project_excludes(root))

    def _project_excludes(self, root: str) -> list[str]:
        path = uri_to_path(root)
        if path is None:
            return []
        return [g for g in self.projects.config_for((path / "_").as_uri()).exclude if g not in self.config.exclude]

    # -- connectivity: tunnel, endpoint fallback, key reload --------------------------------------------
    def _connectivity_event(self, event: str, params: dict[str, Any]) -> None:
        if event == "down":  # once per outage; the bridge shows it in the editor
            self.broadcast("window/showMessage", {"type": 2, "message": params["message"]})
        self.broadcast("codeassist/status", {"event": event, **self.transport.status()})

    def broadcast(self, method: str, params: dict[str, Any]) -> None:
        for conn in list(self.connections.values()):
            with contextlib.suppress(Exception):
                conn.send({"method": method, "params": params})

    async def _tunnel_start(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        await self.tunnel.start(TunnelSpec.from_dict(params))
        return self.tunnel.status()

    async def _tunnel_stop(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        await self.tunnel.stop()
        return self.tunnel.status()

    async def _tunnel_status(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        return self.tunnel.status()

    async def _connectivity_status(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        return {**self.transport.status(), "tunnel": self.tunnel.status()}

    async def _auth_reload(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        await self._reload(force=True)
        await self.transport.probe()
        return self.transport.status()

    async def _config_reload(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        return await self._auth_reload(conn, params)

    async def _follow_user_config(self) -> None:
        """`codeassist login NEW_URL` (or an edit of the user config) applies to the running daemon.

        Checked on every completion request: one stat of the user config file (a few microseconds).
        """
        if _user_config_stamp() != self._config_stamp:
            await self._reload(force=False)

    async def _reload(self, force: bool) -> None:
        self._config_stamp = _user_config_stamp()
        try:
            new = load_config()
        except ValueError as exc:
            log.error("the user config is invalid; keeping the previous settings: %s", exc)
            self.broadcast("window/showMessage", {"type": 1, "message": f"codeassist: {exc}"})
            return
        for old in self.projects.forget():  # trust or user settings changed: re-read every project file
            with contextlib.suppress(Exception):
                await old.aclose()
        routed = routing_key(new) != routing_key(self.config)
        if routed:
            log.info("server settings changed: now %s (was %s)", new.server_url, self.config.server_url)
        self.config = self.transport.config = self.engine.config = new
        if routed:
            self.engine.models.forget()
            self.engine.speeds.forget()
        if routed or force:
            await self.transport.reload()

    # -- lifecycle -------------------------------------------------------------------------------
    async def _idle_watch(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(min(5.0, max(0.2, self.config.idle_timeout / 4)))
            idle = time.monotonic() - self.last_activity
            if not self.connections and idle >= self.config.idle_timeout:
                log.info("idle for %.0fs with no editor connected: exiting", idle)
                self._stop.set()

    async def serve(self) -> None:
        sock = paths.socket_path()
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()  # stale: we hold the run lock, so nobody else serves it
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(self.handle_connection, path=str(sock), limit=MAX_LINE)
        finally:
            os.umask(old_umask)
        os.chmod(sock, 0o600)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        log.info("daemon %d listening on %s (server %s)", os.getpid(), sock, self.config.server_url)
        watcher = asyncio.create_task(self._idle_watch())
        self.transport.start()
        self.telemetry.start()
        if self.config.tunnel_host:
            with contextlib.suppress(ValueError):
                await self.tunnel.start(
                    TunnelSpec(
                        self.config.tunnel_host,
                        self.config.tunnel_remote_port,
                        self.config.tunnel_local_port,
                        ssh_port=self.config.tunnel_ssh_port,
                        identity=self.config.tunnel_identity,
                        options=tuple(self.config.tunnel_ssh_options),
                    )
                )
        try:
            await self._stop.wait()
        finally:
            watcher.cancel()
            await self.telemetry.aclose()
            server.close()
            for conn in list(self.connections.values()):
                with contextlib.suppress(Exception):
                    conn.writer.close()
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()
            await self.tunnel.stop()
            await self.transport.aclose()
            for other in self.projects.forget():
                with contextlib.suppress(Exception):
                    await other.aclose()
            self.context.close()
            log.info("daemon %d stopped", os.getpid())


def setup_logging(foreground: bool = False) -> None:
    handler: logging.Handler
    if foreground:
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.handlers.RotatingFileHandler(
            paths.log_dir() / "daemon.log", maxBytes=2_000_000, backupCount=3
        )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("CODEASSIST_LOG_LEVEL", "INFO"))
    logging.getLogger("httpx").setLevel(logging.WARNING)


_USER_CONFIG: list[str] = []  # its path, found once (platformdirs is slow for a per-request check)


def _user_config_stamp() -> tuple[int, int, int] | None:
    if not _USER_CONFIG:
        _USER_CONFIG.append(str(user_config_file()))
    try:
        st = os.stat(_USER_CONFIG[0])
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def main(foreground: bool = False) -> int:
    try:
        setup_logging(foreground)
        # Held for the daemon's whole life: a second daemon cannot start while this one runs.
        fd = paths.open_private(paths.runtime_dir() / "daemon.run.lock")
    except (paths.UnsafeRuntimeDir, OSError) as exc:
        print(f"codeassist daemon: {exc}", file=sys.stderr)
        return 2
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("another daemon is running; exiting")
        return 0
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    try:
        config = load_config()
    except ValueError as exc:
        log.error("bad configuration: %s", exc)
        print(f"codeassist daemon: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(Daemon(config).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main(foreground="--foreground" in sys.argv))
