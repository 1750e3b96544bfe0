"""The interactive request on the wire for one document, and when a later keystroke may join it.

A request survives keystrokes that only type forward at its cursor (its prompt's prefix is still the
document's prefix, the suffix unchanged, and what the model streamed so far agrees with what was typed):
the next request joins it instead of sending another (see the engine's ``_obtain``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from codeassist.client.clock import Timer

__all__ = ["JOIN_MAX_TYPED", "Upstream"]

JOIN_MAX_TYPED = 128  # typed-ahead characters a joined request can still answer (the cache's walk-back)


@dataclass
class Upstream:
    """An interactive request on the wire for ``base`` + cursor + ``suffix``."""

    task: asyncio.Task[Any]
    base: str
    suffix: str
    streamed: list[str] = field(default_factory=list)  # the model's output so far
    waiters: int = 0
    grace: Timer | None = None  # drops it when nobody has joined it for a while
    # A multi-line answer's first line, as soon as it is complete (the requester shows it; the rest streams on)
    first_line: asyncio.Future[Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)  # the request's own (the pipeline fills them)
    # set each time more complete lines of the answer are in the cache (cleared by whoever waits on it)
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def prefilling(self) -> bool:
        """The server is expected to be still reading its prompt (measured rate, uncached part): that work is
        useful to whatever prompt shares its start, unlike the decoding of an answer nobody waits for."""
        return time.perf_counter() < self.timings.get("prefill_until", 0.0)

    def consistent(self, text: str) -> bool:
        """The document is the request's text with only characters typed at its cursor, and what the model
        has streamed so far does not contradict them (leading blanks aside: filters re-indent)."""
        n = len(text) - len(self.base) - len(self.suffix)
        if not (0 <= n <= JOIN_MAX_TYPED and text.startswith(self.base) and text.endswith(self.suffix)):
            return False
        typed = text[len(self.base) : len(self.base) + n].lstrip(" \t")
        out = "".join(self.streamed).lstrip(" \t")
        return out.startswith(typed) or typed.startswith(out)

    @property
    def has_output(self) -> bool:
        return any(self.streamed)

    def joinable(self, text: str, offset: int) -> bool:
        return not self.task.done() and offset == len(text) - len(self.suffix) and self.consistent(text)

    async def served_or_done(self, serve: Callable[[], Any], settle_s: float) -> Any:
        """The request's result, or what ``serve`` makes of its lines so far once that has text (tried each time
        more lines are complete; when the answer ends within ``settle_s`` of them, what it makes of the whole);
        neither wait cancels the request."""
        while not self.task.done():
            self.progress.clear()
            if (hit := serve()) is not None and hit.text:
                await asyncio.wait({self.task}, timeout=settle_s)
                return serve() if self.task.done() else hit
            progressed = asyncio.ensure_future(self.progress.wait())
            try:
                await asyncio.wait({self.task, progressed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                progressed.cancel()
        return self.task.result()
