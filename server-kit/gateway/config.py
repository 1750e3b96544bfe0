"""Gateway settings: one frozen dataclass with named defaults, filled from the CLI or by tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CLASSES", "CLASS_FLOOR", "GatewayConfig"]

from codeassist.client.priority import CLASSES
from codeassist.client.priority import VALUE as CLASS_FLOOR  # the vLLM `priority` value (lower runs first)


@dataclass(frozen=True)
class GatewayConfig:
    upstreams: tuple[str, ...] = ("http://127.0.0.1:8000/v1",)
    keys_file: Path | None = None  # None: no auth (only for tests of other parts)
    pepper: bytes = b""  # server secret mixed into key and user hashes
    # Scheduling: requests in flight to the upstreams together (≈ vLLM --max-num-seqs per replica).
    max_inflight: int = 64
    max_queue: int = 512  # waiting requests, all users -> 503 when full
    max_queue_per_user: int = 32  # waiting requests of one user -> 429 when full
    queue_timeout_s: float = 10.0  # waited this long -> 503 Retry-After, never a hang
    drr_quantum: int = 1024  # tokens credited per round to each waiting user
    # Per-user token buckets (defaults; a key may override them).
    requests_per_minute: float = 600.0
    request_burst: float = 60.0
    tokens_per_minute: float = 1_000_000.0
    # Limits and timeouts.
    max_body_bytes: int = 256 * 1024
    max_tokens_limit: int = 32768  # max_tokens / max_completion_tokens above this -> 400
    default_max_tokens: int = 1024  # chat requests without max_tokens get this (completions: 16, the API's)
    request_timeout_s: float = 15.0  # a request head + body not in this long after it began -> 408, closed
    max_connections: int = 4096  # open client connections (at the cap the oldest idle one is closed)
    connect_timeout_s: float = 2.0
    first_token_timeout_s: float = 30.0  # no status + first chunk by then -> 504
    read_timeout_s: float = 60.0  # silence mid-stream -> SSE error event
    client_write_timeout_s: float | None = None  # a client taking no response bytes this long is cut off
    #                                              (None: read_timeout_s; 0: never)
    # Replicas.
    affinity_slack: int = 4  # stay on the affine replica while within this many of the least loaded
    eject_after_failures: int = 2
    eject_base_s: float = 5.0
    eject_max_s: float = 120.0
    # Observability.
    audit_file: Path | None = None
    audit_max_bytes: int = 20 * 1024 * 1024
    audit_backups: int = 5
    upstream_metrics_ttl_s: float = 2.0
    extra_headers: dict[str, str] = field(default_factory=dict)
    # The team's usage time series (SQLite): None puts it beside the keys file (the state dir); no keys file
    # and no path: not kept. Developers' daemons report acceptance counters when collect_telemetry is on.
    usage_db: Path | None = None
    usage_keep_days: float = 35.0  # 5-minute rows (the daily rollup is kept 400 days)
    collect_telemetry: bool = True
    telemetry_interval_s: float = 300.0  # what the gateway asks the daemons for
    # The dashboard's cost per accepted line: the GPUs behind this gateway (None: the cards nvidia-smi lists on
    # this host, else one H100) and their $/GPU-hour (None: plan's on-demand price for that card).
    cost_gpu: str | None = None  # a key of plan's prices: "H100", "L40S", ...
    cost_gpus: int | None = None
    cost_usd_per_hour: float | None = None

    @property
    def usage_path(self) -> Path | None:
        if self.usage_db is not None:
            return self.usage_db
        return self.keys_file.parent / "usage.sqlite3" if self.keys_file is not None else None

    @property
    def upstream_roots(self) -> tuple[str, ...]:
        """Upstream base URLs without the trailing ``/v1`` (for ``/health`` and ``/metrics``)."""
        return tuple(u.rstrip("/").removesuffix("/v1") for u in self.upstreams)
