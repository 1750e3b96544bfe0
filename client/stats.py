"""Per-session acceptance signals and latencies — counts and milliseconds only, never code text."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from codeassist.client.latency import LatencyTracker

__all__ = ["COUNTERS", "SessionStats"]

COUNTERS = (
    "requests",  # complete requests from editors
    "shown",  # non-empty completions returned
    "accepted",  # fully accepted (item command)
    "partially_accepted",
    "accepted_chars",
    "typed_through",  # keystrokes answered from a completion the user was typing
    "cache_hits",
    "prefetch_hits",
    "cancelled",  # superseded by a keystroke or cancelled by the editor
    "joined",  # requests answered by joining the interactive request already on the wire
    "replaced",  # joined requests replaced at a pause (they had not yet agreed with what was typed)
    "upstream_requests",  # requests sent to the model server (prefetch included)
    "prefetch_requests",
    "prefetch_cancelled",
    "prefetch_used",  # speculations sent whose hypothesis came true (accepted or typed to its end)
    "prefetch_wasted",  # speculations sent whose hypothesis did not
    "prefetch_held",  # typed-through guesses not speculated on before the accept: such bets were not paying
    "upstream_cancelled",  # requests to the model server closed before their end
    "errors",
    "empty",
)


class SessionStats:
    def __init__(self, remember: int = 512) -> None:
        self.counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.latency: dict[str, LatencyTracker] = {
            "shown": LatencyTracker(2000),  # request in -> result out, shown completions only
            "cache": LatencyTracker(2000),
            "model": LatencyTracker(2000),  # time on the model server, request -> last token
            "debounce": LatencyTracker(2000),  # request in -> sent (fired requests only)
            # sent - max(request in, last key + one rhythm gap): the delay the debounce added at a pause
            "pause_delay": LatencyTracker(2000),
        }
        self._shown: OrderedDict[str, int] = OrderedDict()
        self._remember = remember

    def bump(self, name: str, by: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + by

    def record_shown(self, completion_id: str, length: int, source: str, total_ms: float) -> None:
        self.bump("shown")
        if source in ("cache", "prefetch"):
            self.bump("cache_hits" if source == "cache" else "prefetch_hits")
            self.latency["cache"].add(total_ms)
        self.latency["shown"].add(total_ms)
        self._shown[completion_id] = length
        while len(self._shown) > self._remember:
            self._shown.popitem(last=False)

    def record_accept(self, completion_id: str | None, chars: int | None) -> str:
        """``accepted`` or ``partial``; an unknown id still counts as a full accept."""
        length = self._shown.pop(completion_id, None) if completion_id else None
        if chars is not None and length is not None and 0 <= chars < length:
            self.bump("partially_accepted")
            self.bump("accepted_chars", chars)
            if completion_id:
                self._shown[completion_id] = length  # more of it may be accepted later
            return "partial"
        self.bump("accepted")
        self.bump("accepted_chars", length if chars is None and length is not None else int(chars or 0))
        return "accepted"

    def snapshot(self) -> dict[str, Any]:
        c = self.counts
        shown = c["shown"] or 0
        return {
            "counts": dict(c),
            "acceptance_rate": round((c["accepted"] + c["partially_accepted"]) / shown, 4) if shown else None,
            "latency_ms": {name: t.summary() for name, t in self.latency.items()},
        }
