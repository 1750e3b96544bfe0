"""Rolling latency windows: the server's observed latency feeds the debounce, and ``stats`` reports them."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

__all__ = ["LatencyTracker", "percentile"]


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100); ``None`` for no values."""
    data = sorted(values)
    if not data:
        return None
    rank = max(1, math.ceil(p / 100 * len(data)))
    return data[min(rank, len(data)) - 1]


class LatencyTracker:
    """The last ``window`` samples in milliseconds."""

    def __init__(self, window: int = 200) -> None:
        self._samples: deque[float] = deque(maxlen=window)
        self.count = 0

    def add(self, ms: float) -> None:
        self._samples.append(ms)
        self.count += 1

    def percentile(self, p: float) -> float | None:
        return percentile(self._samples, p)

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    def summary(self) -> dict[str, float | int | None]:
        r = self.percentile

        def rnd(v: float | None) -> float | None:
            return None if v is None else round(v, 2)

        return {"count": self.count, "p50_ms": rnd(r(50)), "p90_ms": rnd(r(90)), "p99_ms": rnd(r(99))}
