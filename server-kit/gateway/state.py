"""Everything the gateway holds between requests, built once from a :class:`GatewayConfig`."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

from codeassist.serverkit.gateway.audit import AuditLog
from codeassist.serverkit.gateway.config import CLASSES, GatewayConfig
from codeassist.serverkit.gateway.keys import KeyStore, user_hash
from codeassist.serverkit.gateway.metrics import Registry, UpstreamMetrics
from codeassist.serverkit.gateway.queue import Scheduler
from codeassist.serverkit.gateway.ratelimit import RateLimiter
from codeassist.serverkit.gateway.replicas import ReplicaPool
from codeassist.serverkit.gateway.upstream import UpstreamClient
from codeassist.serverkit.gateway.usage_store import UsageStore

__all__ = ["UPSTREAM_KEY_ENV", "GatewayState", "UserStats"]

UPSTREAM_KEY_ENV = "CODEASSIST_UPSTREAM_KEY"  # vLLM's own --api-key, if it has one


@dataclass
class UserStats:
    requests: int = 0
    completed: int = 0
    rejected: int = 0
    errors: int = 0
    disconnected: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms_sum: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)


class GatewayState:
    def __init__(self, cfg: GatewayConfig, upstream: UpstreamClient | None = None) -> None:
        self.cfg = cfg
        self.keys = KeyStore(cfg.keys_file, cfg.pepper) if cfg.keys_file else None
        self.limiter = RateLimiter(cfg.requests_per_minute, cfg.request_burst, cfg.tokens_per_minute)
        self.scheduler = Scheduler(
            len(CLASSES), cfg.max_inflight, cfg.max_queue, cfg.max_queue_per_user, cfg.drr_quantum, cfg.queue_timeout_s
        )
        self.pool = ReplicaPool(
            cfg.upstreams, cfg.affinity_slack, cfg.eject_after_failures, cfg.eject_base_s, cfg.eject_max_s
        )
        if upstream is None:
            headers = {**cfg.extra_headers}
            if os.environ.get(UPSTREAM_KEY_ENV):
                headers["authorization"] = f"Bearer {os.environ[UPSTREAM_KEY_ENV]}"
            upstream = UpstreamClient(
                headers,
                connect_timeout_s=cfg.connect_timeout_s,
                read_timeout_s=cfg.read_timeout_s,
                max_idle_per_host=cfg.max_inflight + 16,
                write_timeout_s=cfg.client_write_timeout_s,
            )
        self.client = upstream  # pooled keep-alive HTTP/1.1 (httptools), see upstream.py
        self.audit = AuditLog(cfg.audit_file, cfg.audit_max_bytes, cfg.audit_backups)
        self.users: dict[str, UserStats] = defaultdict(UserStats)
        self._user_ids: dict[str, str] = {}
        path = cfg.usage_path
        self.usage = UsageStore(path, keep_days=cfg.usage_keep_days) if path is not None else None
        self.registry = self._registry()
        self.upstream_metrics = UpstreamMetrics(self.client, cfg.upstream_roots, cfg.upstream_metrics_ttl_s)

    def _registry(self) -> Registry:
        reg = Registry()
        reg.counter("codeassist_gateway_requests_total", "Requests by class and status", ("class", "status"))
        reg.counter("codeassist_gateway_rejections_total", "Requests refused before the upstream", ("reason",))
        reg.counter("codeassist_gateway_upstream_errors_total", "Upstream failures", ("replica", "kind"))
        reg.counter("codeassist_gateway_completion_tokens_total", "Streamed completion events", ())
        reg.histogram("codeassist_gateway_request_seconds", "End-to-end latency at the gateway", ("class",))
        reg.histogram("codeassist_gateway_ttft_seconds", "Time to first upstream byte", ("class",))
        reg.histogram("codeassist_gateway_queue_wait_seconds", "Time waiting for an upstream slot", ("class",))
        s = self.scheduler
        reg.gauge(
            "codeassist_gateway_queue_depth",
            "Requests waiting for a slot, by class",
            lambda: [(f'{{class="{c}"}}', s.depth(i)) for i, c in enumerate(CLASSES)],
        )
        reg.gauge("codeassist_gateway_inflight", "Requests with the upstreams", lambda: [("", s.inflight)])
        reg.gauge(
            "codeassist_gateway_replica_outstanding",
            "Outstanding requests per replica",
            lambda: [(f'{{replica="{r.url}"}}', r.outstanding) for r in self.pool.replicas],
        )
        reg.gauge(
            "codeassist_gateway_replica_up",
            "1 unless the replica is ejected",
            lambda: [(f'{{replica="{r.url}"}}', int(r.available(self.pool.now()))) for r in self.pool.replicas],
        )
        if self.usage is not None:
            self._team_metrics(reg, self.usage)
        return reg

    @staticmethod
    def _team_metrics(reg: Registry, usage: UsageStore) -> None:
        """The team's acceptance totals (reported by the daemons since this gateway started) and today's users."""
        helps = {
            "shown": "Completions shown in editors, as the developers' daemons report",
            "accepted": "Completions accepted in full",
            "partially_accepted": "Completions accepted in part",
            "accepted_chars": "Characters of completions accepted",
            "typed_through": "Keystrokes answered by a completion the user was typing",
            "cancelled": "Completion requests superseded or cancelled in the editor",
        }
        for name, help_ in helps.items():
            reg.counter(f"codeassist_team_{name}_total", help_)
        reg.counter("codeassist_team_checks_total", "Daemons asking whether this gateway collects their counters")
        reg.counter("codeassist_team_reports_total", "Counter reports taken from the daemons")
        reg.gauge("codeassist_team_active_users", "Users with requests or reports today (UTC)", usage.active_today)

    def user_id(self, user: str) -> str:
        """The user's pseudonym for logs and /stats (an HMAC, so computed once per user)."""
        uid = self._user_ids.get(user)
        if uid is None:
            if len(self._user_ids) > 100_000:
                self._user_ids.clear()
            uid = self._user_ids[user] = user_hash(self.cfg.pepper, user)
        return uid

    def reject(self, reason: str, user: str | None = None) -> None:
        self.registry.inc("codeassist_gateway_rejections_total", reason)
        if user is not None:
            self.users[user].rejected += 1

    async def aclose(self) -> None:
        await self.client.aclose()
        self.audit.close()
        if self.usage is not None:
            self.usage.close()
