"""What `server-kit bench` watches while it runs: a progress line, and whether the server is clearly saturated.

Why stop at all: the load is open-loop, so a server slower than the offered rate queues without bound; every
further request only waits longer, and the run's wall time runs far past ``--duration`` while the results say
nothing new (the CPU model at 3 req/s of 700-token prompts: 8 of 48 answered, "15 s" took 45 s). So the bench
stops sending once one of these holds, and says which:

* errors: more than half of the requests that ended in the last few seconds failed;
* latency: the recent median end-to-end time is over 5× that of the first requests (and over a second);
* backlog: requests in flight keep growing (about one more a second, for seconds), past what the fastest
  first request's latency explains at this rate;
* stuck: requests are in flight and none has ended for 10 s.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from codeassist.client.latency import percentile

__all__ = ["Progress", "Watch"]

WINDOW_S = 3.0  # recent = ended within this many seconds
LATENCY_FACTOR = 5.0
LATENCY_FLOOR_MS = 1000.0
BASELINE_N = 5  # the first requests that set "normal"
GROWTH_CHECKS = 3  # backlog: grew at this many checks in a row
STUCK_S = 10.0


@dataclass
class Watch:
    rate: float
    ended: list[tuple[float, float | None, bool]] = field(default_factory=list)  # (when, E2E ms, ok)
    _baseline_ms: float | None = None
    _fastest_ms: float | None = None
    _inflight_history: list[int] = field(default_factory=list)

    def record(self, now: float, e2e_ms: float | None, ok: bool) -> None:
        self.ended.append((now, e2e_ms, ok))
        if self._baseline_ms is None:
            firsts = [e for _, e, good in self.ended if good and e is not None][:BASELINE_N]
            if len(firsts) == BASELINE_N:
                self._baseline_ms = percentile(firsts, 50)
                self._fastest_ms = min(firsts)  # the service time with the least queueing

    def saturated(self, now: float, elapsed: float, inflight: int, oldest_wait_s: float) -> str | None:
        """The reason the server is clearly saturated, or None. Called about once a second."""
        recent = [(e, ok) for t, e, ok in self.ended if now - t <= WINDOW_S]
        failed = sum(not ok for _, ok in recent)
        if len(recent) >= 5 and failed > len(recent) / 2:
            return f"{failed} of the {len(recent)} requests that ended in the last {WINDOW_S:g} s failed"
        base = self._baseline_ms
        ok_ms = [e for e, ok in recent if ok and e is not None]
        if base is not None and len(ok_ms) >= 3:
            p50 = percentile(ok_ms, 50) or 0.0
            if p50 > max(LATENCY_FACTOR * base, LATENCY_FLOOR_MS):
                return (
                    f"median end-to-end time grew to {p50:.0f} ms, {p50 / base:.0f}× the first requests' {base:.0f} ms"
                )
        self._inflight_history.append(inflight)
        grow = self._inflight_history[-(GROWTH_CHECKS + 1) :]
        # Little's law with the fastest first request's time (the first ones may already have queued), ≥ 1 s
        explained = self.rate * max(self._fastest_ms or 0.0, 1000.0) / 1000.0
        if (
            base is not None  # before the first requests end, "normal" is unknown (the stuck rule covers it)
            and len(grow) == GROWTH_CHECKS + 1
            and grow[-1] - grow[0] >= GROWTH_CHECKS  # about one more a second (Poisson arrivals jitter)
            and grow[-1] == max(grow)
            and inflight > max(12.0, 3 * explained)
        ):
            return (
                f"{inflight} requests in flight and growing (at {self.rate:g} req/s the fastest first request's "
                f"latency explains about {explained:.0f})"
            )
        last_end = max((t for t, _, _ in self.ended), default=now - elapsed)
        if inflight and now - last_end > STUCK_S and oldest_wait_s > STUCK_S:
            return f"{inflight} requests in flight and none ended for {now - last_end:.0f} s"
        return None


class Progress:
    """One line on stderr: rewritten in place on a terminal, a new line every few seconds in a log."""

    def __init__(self, enabled: bool, duration_s: float, planned: int) -> None:
        self.enabled, self.duration_s, self.planned = enabled, duration_s, planned
        self.tty = sys.stderr.isatty()
        self._last_print = 0.0
        self._last_note = ""

    def update(self, elapsed: float, sent: int, done: int, errors: int, p50_ms: float | None, note: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.tty and now - self._last_print < 5.0 and note == self._last_note:
            return
        self._last_print, self._last_note = now, note
        p50 = f"{p50_ms:.0f} ms" if p50_ms is not None else "-"
        line = (
            f"{elapsed:5.1f}/{self.duration_s:g} s  sent {sent}/{self.planned}  done {done}  "
            f"in flight {sent - done}  errors {errors}  E2E p50 {p50}{'  ' + note if note else ''}"
        )
        print(("\r" + line.ljust(100)) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr, flush=True)
