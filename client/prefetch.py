"""Requests in flight per document: the interactive one (:class:`Upstream`) and the speculation.

Speculative prefetch: after a completion is shown, ask for the next one as if it were accepted.
At most one speculation per document. It stays alive while the document is consistent with the
hypothesis (the original text, plus a prefix of the guess typed or accepted, plus the original
suffix); the first divergent keystroke cancels it, which closes its HTTP stream.

Whether a bet is worth a request before the accept is learned (:class:`BetOdds`): every speculation the
user's typing made plausible (typed through, see the engine) is scored when it ends — did the document
reach the hypothesis (the guess accepted, or typed to its end)? — whether or not it was sent, so the odds
keep learning while bets are held back. A held bet still goes the moment its guess is accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JOIN_MAX_TYPED", "BetOdds", "Prefetcher", "Speculation", "Upstream"]

log = logging.getLogger(__name__)

JOIN_MAX_TYPED = 128  # typed-ahead characters a joined request can still answer (the cache's walk-back)
BET_PRIOR_RATE, BET_PRIOR_N = 0.5, 4.0  # prior hit rate of a typed-through guess and its weight, in bets
BET_MIN_ODDS = 1 / 3  # send a bet before its accept while at most two are wasted per one that is used


@dataclass
class Upstream:
    """An interactive request on the wire for ``base`` + cursor + ``suffix``."""

    task: asyncio.Task[Any]
    base: str
    suffix: str
    streamed: list[str] = field(default_factory=list)  # the model's output so far
    waiters: int = 0
    grace: asyncio.TimerHandle | None = None

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


@dataclass
class Speculation:
    base: str  # text before the cursor when the completion was shown
    guess: str  # the shown completion
    suffix: str  # text after the cursor
    task: asyncio.Task[Any]
    trusted: bool = False  # the user's typing made the guess plausible: the bet is scored when it ends
    sent: bool = False  # its request went to the model server
    hit: bool = False  # the document reached the hypothesis

    @property
    def target_offset(self) -> int:
        return len(self.base) + len(self.guess)

    def is_target(self, text: str, offset: int) -> bool:
        return offset == self.target_offset and len(text) == len(self.base) + len(self.guess) + len(self.suffix) \
            and text.startswith(self.base) and text.endswith(self.suffix) and text[len(self.base):offset] == self.guess

    def consistent(self, text: str) -> bool:
        extra = len(text) - len(self.base) - len(self.suffix)
        if not 0 <= extra <= len(self.guess):
            return False
        return text.startswith(self.base) and text.endswith(self.suffix) and \
            self.guess.startswith(text[len(self.base) : len(self.base) + extra])


class BetOdds:
    """The session's hit rate of trusted speculations, from a prior that lets the first bets go."""

    def __init__(self) -> None:
        self.hits = 0
        self.bets = 0

    def add(self, hit: bool) -> None:
        self.hits += hit
        self.bets += 1

    @property
    def odds(self) -> float:
        return (self.hits + BET_PRIOR_RATE * BET_PRIOR_N) / (self.bets + BET_PRIOR_N)

    def worth_sending(self) -> bool:
        return self.odds >= BET_MIN_ODDS


class Prefetcher:
    def __init__(self, on_end: Callable[[Speculation], None] | None = None) -> None:
        self._specs: dict[str, Speculation] = {}
        self.started = 0
        self.cancelled = 0
        self._on_end = on_end  # told of every speculation that leaves (to score the bet)

    def _end(self, spec: Speculation) -> None:
        if self._on_end is not None:
            self._on_end(spec)

    def get(self, uri: str) -> Speculation | None:
        return self._specs.get(uri)

    def start(self, uri: str, text: str, offset: int, guess: str, work: Coroutine[Any, Any, Any]) -> bool:
        """Start ``work`` as the speculation for ``uri``; False (``work`` closed) if this target is already there."""
        base, suffix = text[:offset], text[offset:]
        old = self._specs.get(uri)
        if old is not None and old.base + old.guess == base + guess and old.suffix == suffix:
            work.close()
            return False
        self.cancel(uri)
        task = asyncio.create_task(work)
        self._specs[uri] = Speculation(base, guess, suffix, task)
        self.started += 1
        return True

    def in_flight(self, uri: str) -> bool:
        spec = self._specs.get(uri)
        return spec is not None and not spec.task.done()

    def joinable(self, uri: str, text: str, offset: int) -> asyncio.Task[Any] | None:
        spec = self._specs.get(uri)
        if spec is not None and not spec.task.done() and spec.is_target(text, offset):
            return spec.task
        return None

    def on_change(self, uri: str, text: str) -> bool:
        """Cancel the speculation if the edit diverged from it; True when one was cancelled."""
        spec = self._specs.get(uri)
        if spec is None:
            return False
        consistent = spec.consistent(text)
        if consistent and len(text) == spec.target_offset + len(spec.suffix):
            spec.hit = True  # the whole guess is in: its bet came true (typed to its end, or accepted)
        if spec.task.done():
            if not consistent:
                del self._specs[uri]
                self._end(spec)
            return False
        if consistent:
            return False
        return self.cancel(uri)

    def cancel(self, uri: str) -> bool:
        spec = self._specs.pop(uri, None)
        if spec is None:
            return False
        self._end(spec)
        if spec.task.done():
            return False
        spec.task.cancel()
        self.cancelled += 1
        return True

    async def aclose(self) -> None:
        for uri in list(self._specs):
            spec = self._specs[uri]
            self.cancel(uri)
            with contextlib.suppress(BaseException):
                await spec.task
