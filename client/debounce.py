"""Adaptive debounce: how long to wait after a keystroke before asking the model.

The delay follows the user's rhythm and the server's latency (Tabby's idea, simplified):

* typing fast (short gaps between keystrokes) → wait a bit longer than the usual gap, because another
  keystroke is probably coming and would cancel the request anyway;
* a slow server → wait longer (a wasted request costs more); a fast one → fire sooner;
* right after a token boundary (space, punctuation, newline) people pause → use the lower bound;
* gaps longer than ``pause_ms`` are pauses, not rhythm, and do not feed the average.

Everything is computed from an injected clock so tests can script keystroke times exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from codeassist.client.latency import LatencyTracker

__all__ = ["Debouncer"]

BOUNDARY_CHARS = frozenset(" \t\n.,;:()[]{}=<>+-*/'\"")


@dataclass
class _Rhythm:
    last: float | None = None
    gap_ms: float | None = None  # exponential moving average of inter-key gaps


class Debouncer:
    def __init__(
        self,
        min_ms: float,
        max_ms: float,
        latency: LatencyTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
        pause_ms: float = 1500.0,
        alpha: float = 0.3,
        rhythm_factor: float = 1.3,
        latency_factor: float = 0.15,
        fixed_ms: float | None = None,
    ) -> None:
        if min_ms < 0 or max_ms < min_ms:
            raise ValueError(f"debounce bounds must satisfy 0 <= min <= max, got {min_ms}..{max_ms}")
        self.min_ms, self.max_ms = min_ms, max_ms
        self.latency = latency or LatencyTracker()
        self.clock = clock
        self.pause_ms, self.alpha = pause_ms, alpha
        self.rhythm_factor, self.latency_factor = rhythm_factor, latency_factor
        self.fixed_ms = fixed_ms
        self._docs: dict[str, _Rhythm] = {}

    def keystroke(self, uri: str) -> None:
        now = self.clock()
        r = self._docs.setdefault(uri, _Rhythm())
        if r.last is not None:
            gap = (now - r.last) * 1000
            if gap < self.pause_ms:
                r.gap_ms = gap if r.gap_ms is None else self.alpha * gap + (1 - self.alpha) * r.gap_ms
        r.last = now

    def forget(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def delay_ms(self, uri: str, char_before: str = "") -> float:
        """How long to wait now, in ms, within ``[min_ms, max_ms]`` (or exactly ``fixed_ms``)."""
        if self.fixed_ms is not None:
            return self.fixed_ms
        r = self._docs.get(uri)
        if r is None or r.gap_ms is None or char_before in BOUNDARY_CHARS:
            base = 0.0
        else:
            # Time already passed since the last keystroke counts towards the wait.
            since = (self.clock() - r.last) * 1000 if r.last is not None else 0.0
            base = max(0.0, self.rhythm_factor * r.gap_ms - since)
        lat = self.latency.p50
        if lat is not None and base > 0:
            base += self.latency_factor * lat
        return min(self.max_ms, max(self.min_ms, base))
