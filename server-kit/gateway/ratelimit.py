"""Per-user token buckets (requests and tokens) with an injected clock."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimiter", "TokenBucket"]


@dataclass
class TokenBucket:
    rate: float  # units per second
    capacity: float
    level: float
    stamp: float

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` units are available (0 = now)."""
        self._refill(now)
        cost = min(cost, self.capacity)  # a request bigger than the bucket waits for a full one
        return 0.0 if self.level >= cost else (cost - self.level) / self.rate

    def take(self, cost: float) -> None:
        self.level -= min(max(0.0, cost), self.capacity)  # never a refill


class RateLimiter:
    """``check(user, tokens)`` -> seconds to wait (0: admitted and charged)."""

    def __init__(
        self,
        requests_per_minute: float,
        request_burst: float,
        tokens_per_minute: float,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm, self.burst, self.tpm, self.now = requests_per_minute, request_burst, tokens_per_minute, now
        self._buckets: dict[str, tuple[TokenBucket, TokenBucket]] = {}

    def _get(self, user: str, rpm: float | None, tpm: float | None, t: float) -> tuple[TokenBucket, TokenBucket]:
        b = self._buckets.get(user)
        if b is None:
            r_rate, t_rate = (rpm or self.rpm) / 60.0, (tpm or self.tpm) / 60.0
            burst = max(1.0, self.burst if rpm is None else max(1.0, rpm / 10))
            b = (TokenBucket(r_rate, burst, burst, t), TokenBucket(t_rate, t_rate * 60, t_rate * 60, t))
            self._buckets[user] = b
        return b

    def check(self, user: str, tokens: float, rpm: float | None = None, tpm: float | None = None) -> float:
        now = self.now()
        reqs, toks = self._get(user, rpm, tpm, now)  # (created full at ``now``: not a hair below, for a big cost)
        wait = max(reqs.wait_for(1, now), toks.wait_for(tokens, now))
        if wait > 0:
            return wait
        reqs.take(1)
        toks.take(tokens)
        return 0.0

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))
