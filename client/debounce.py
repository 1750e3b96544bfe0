"""Adaptive debounce: how long to wait after a keystroke before asking the model.

The delay follows the user's rhythm and the server's latency (Tabby's idea, simplified):

* the rhythm is an exponential moving average of the gaps between keystrokes; gaps longer than
  ``pause_ms`` or ``PAUSE_RATIO`` times the rhythm are pauses, not rhythm, and do not feed it;
* a *pause* is detected when the time since the last key exceeds the rhythm: mid-word the request
  waits ``rhythm_factor`` gaps (another key is probably coming, and it would supersede the request);
  right after a token boundary (space, punctuation, newline), where people do pause, it waits
  ``boundary_factor`` (1.4) gaps — so it fires ~0.4 gap after the pause begins, not at once after every
  space (firing at one gap sent ~3x more requests that typing then made useless);
* a slow server stretches the mid-word wait (a wasted request costs more): ``latency_factor`` of its
  p50, capped at ``latency_cap_ms``;
* time already passed since the last keystroke counts towards the wait;
* a fast, uncongested server caps the wait at its own time to answer (the engine passes ``cap_ms``): there a
  request that the next key makes useless costs less than making the user wait at every pause; an eager one
  (a slow llama-server, whose request on the wire survives the keys that agree with it) passes 0;
* where this user rarely pauses (learned per character class: after a space, mid-word...), a gap of 1.4-1.5
  rhythms is much more often just a slow keystroke than a pause, and a request fired then is cancelled by the
  next key: there the wait grows to ``patient_factor`` gaps. The odds come from the session's own keystrokes
  (was the gap after a request at this kind of character a pause?), starting from priors that keep the plain
  behaviour until the data says otherwise. Where a long gap is almost surely a pause (a line start, for most
  people) it fires after ``sure_factor`` gaps instead: a wait there only delays the suggestion.

:meth:`Debouncer.pause_delay_ms` gives the figure the ≤ 50 ms-at-a-pause target is about: how long after
the pause became detectable (last key + one rhythm gap) — or after the request came in, if later — a
request actually fired (the engine records it as the ``pause_delay`` latency).

Everything is computed from an injected clock so tests can script keystroke times exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from codeassist.client.latency import LatencyTracker

__all__ = ["Debouncer"]

PAUSE_RATIO = 4.0
BOUNDARY_CHARS = frozenset(" \t\n.,;:()[]{}=<>+-*/'\"")
PAUSE_GAPS = 2.5  # a gap this many rhythms long was a pause (what the class odds learn from)
TYPING_TAIL = 0.17  # share of plain typing gaps longer than ~1.4 rhythms (log-normal gaps, sigma ~0.35)
MIN_PAUSE_ODDS = 0.65  # below this chance that a long-ish gap is a real pause, wait ``patient_factor`` gaps
SURE_PAUSE_ODDS = 0.95  # above it, ``sure_factor`` gaps
PRIOR_N = 6.0  # weight of the prior pause rate, in keystrokes
PRIOR_BOUNDARY, PRIOR_WORD = 0.5, 0.3  # prior pause rates: both fire as before until data says otherwise


def char_class(ch: str) -> str:
    """Keystroke classes whose pause rates are learned apart: each boundary character, word, other."""
    if ch == "\r":
        return "\n"
    if ch in BOUNDARY_CHARS:
        return ch
    return "w" if ch.isalnum() or ch == "_" else "o"


@dataclass
class _Rhythm:
    last: float | None = None
    gap_ms: float | None = None  # exponential moving average of inter-key gaps
    asked: str | None = None  # class of the character before the last request, until the next key says


class Debouncer:
    def __init__(
        self,
        min_ms: float,
        max_ms: float,
        latency: LatencyTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
        pause_ms: float = 1500.0,
        alpha: float = 0.3,
        rhythm_factor: float = 1.5,
        boundary_factor: float = 1.4,
        latency_factor: float = 0.1,
        latency_cap_ms: float = 150.0,
        fixed_ms: float | None = None,
        patient_factor: float = 2.2,
        sure_factor: float = 1.1,
    ) -> None:
        if min_ms < 0 or max_ms < min_ms:
            raise ValueError(f"debounce bounds must satisfy 0 <= min <= max, got {min_ms}..{max_ms}")
        self.min_ms, self.max_ms = min_ms, max_ms
        self.latency = latency or LatencyTracker()
        self.clock = clock
        self.pause_ms, self.alpha = pause_ms, alpha
        self.rhythm_factor, self.boundary_factor = rhythm_factor, boundary_factor
        self.latency_factor, self.latency_cap_ms = latency_factor, latency_cap_ms
        self.fixed_ms = fixed_ms
        self.patient_factor, self.sure_factor = patient_factor, sure_factor
        self._docs: dict[str, _Rhythm] = {}
        self._pauses: dict[str, list[float]] = {}  # class -> [pauses seen, requests seen] (the session's habit)

    def keystroke(self, uri: str) -> None:
        now = self.clock()
        r = self._docs.setdefault(uri, _Rhythm())
        if r.last is not None:
            gap = (now - r.last) * 1000
            if r.asked is not None and r.gap_ms is not None:
                seen = self._pauses.setdefault(r.asked, [0.0, 0.0])
                seen[0] += gap >= PAUSE_GAPS * r.gap_ms
                seen[1] += 1
            r.asked = None
            # a gap far above the rhythm is a pause, not a change of pace
            if gap < self.pause_ms and (r.gap_ms is None or gap < PAUSE_RATIO * r.gap_ms):
                r.gap_ms = gap if r.gap_ms is None else self.alpha * gap + (1 - self.alpha) * r.gap_ms
        r.last = now

    def forget(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def since_ms(self, uri: str) -> float | None:
        """Milliseconds since the last keystroke in ``uri`` (None before the first)."""
        r = self._docs.get(uri)
        return None if r is None or r.last is None else (self.clock() - r.last) * 1000

    def rhythm_ms(self, uri: str) -> float | None:
        r = self._docs.get(uri)
        return None if r is None else r.gap_ms

    def pause_odds(self, cls: str) -> float:
        """Chance that a gap already ~1.4 rhythms long after a ``cls`` keystroke is a pause (Bayes over the
        learned pause rate of the class and the share of plain typing gaps that long)."""
        pauses, n = self._pauses.get(cls, (0.0, 0.0))
        prior = PRIOR_WORD if cls in ("w", "o") else PRIOR_BOUNDARY
        rate = (pauses + prior * PRIOR_N) / (n + PRIOR_N)
        return rate / (rate + (1 - rate) * TYPING_TAIL)

    def pause_delay_ms(self, uri: str) -> float | None:
        """How far past the start of the pause (last key + one rhythm gap) we are now; None without a rhythm."""
        since, gap = self.since_ms(uri), self.rhythm_ms(uri)
        if since is None or gap is None:
            return None
        return max(0.0, since - gap)

    def delay_ms(self, uri: str, char_before: str = "", cap_ms: float | None = None) -> float:
        """How long to wait now, in ms, within ``[min_ms, max_ms]`` (or exactly ``fixed_ms``); at most ``cap_ms``
        (a fast server's time to answer: there a wait costs more than a superseded request)."""
        if self.fixed_ms is not None:
            return self.fixed_ms
        r = self._docs.get(uri)
        if r is None or r.gap_ms is None:
            return self.min_ms
        boundary = char_before in BOUNDARY_CHARS
        cls = char_class(char_before)
        r.asked = cls
        factor = self.boundary_factor if boundary else self.rhythm_factor
        odds = self.pause_odds(cls)
        if odds < MIN_PAUSE_ODDS:
            factor = max(factor, self.patient_factor)
        elif odds >= SURE_PAUSE_ODDS:
            factor = min(factor, self.sure_factor)
        since = (self.clock() - r.last) * 1000 if r.last is not None else 0.0
        base = max(0.0, factor * r.gap_ms - since)
        lat = self.latency.p50
        if lat is not None and base > 0 and not boundary:
            base += min(self.latency_cap_ms, self.latency_factor * lat)
        if cap_ms is not None:
            base = min(base, cap_ms)
        return min(self.max_ms, max(self.min_ms, base))
