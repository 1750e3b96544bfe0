"""Several upstream replicas: least outstanding requests, prefix affinity, failure ejection.

Affinity: requests with the same key (user + file) go to the replica that wins a rendezvous hash, so
they land where that prefix is already in the KV cache — unless that replica has more than ``slack``
requests outstanding beyond the least loaded one, then the least loaded wins. A replica that fails
``eject_after`` times in a row is taken out for a back-off period (doubling up to ``eject_max_s``),
then tried again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Replica", "ReplicaPool"]


@dataclass(eq=False)
class Replica:
    url: str  # ends with /v1
    outstanding: int = 0
    failures: int = 0
    ejected_until: float = 0.0
    ejections: int = 0
    served: int = 0

    def available(self, now: float) -> bool:
        return now >= self.ejected_until


class ReplicaPool:
    def __init__(
        self,
        urls: tuple[str, ...],
        slack: int = 4,
        eject_after: int = 2,
        eject_base_s: float = 5.0,
        eject_max_s: float = 120.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("at least one upstream is needed")
        self.replicas = [Replica(u.rstrip("/")) for u in urls]
        self.slack, self.eject_after = slack, eject_after
        self.eject_base_s, self.eject_max_s, self.now = eject_base_s, eject_max_s, now

    @staticmethod
    def _score(key: str, url: str) -> bytes:
        return hashlib.blake2b(f"{key}|{url}".encode(), digest_size=8).digest()

    def pick(self, affinity: str | None = None, exclude: tuple[Replica, ...] = ()) -> Replica | None:
        now = self.now()
        live = [r for r in self.replicas if r.available(now) and r not in exclude]
        if not live:
            # All ejected: try the one whose back-off ends first rather than refusing outright.
            rest = [r for r in self.replicas if r not in exclude]
            return min(rest, key=lambda r: r.ejected_until) if rest else None
        least = min(live, key=lambda r: r.outstanding)
        if affinity is None or len(live) == 1:
            return least
        home = max(live, key=lambda r: self._score(affinity, r.url))
        return home if home.outstanding <= least.outstanding + self.slack else least

    def succeeded(self, r: Replica) -> None:
        r.failures = 0
        r.ejections = 0
        r.served += 1

    def failed(self, r: Replica) -> None:
        r.failures += 1
        if r.failures >= self.eject_after:
            backoff = min(self.eject_max_s, self.eject_base_s * (2**r.ejections))
            r.ejected_until = self.now() + backoff
            r.ejections += 1
            r.failures = 0
