"""Speculative prefetch: one owner for the speculation's whole life (start, wait, send, score, end).

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from codeassist.client.clock import Clock, RealClock
from codeassist.client.debounce import Debouncer
from codeassist.client.documents import Document
from codeassist.client.stats import SessionStats
from codeassist.client.transport.base import TransportError

__all__ = ["BetOdds", "Prefetcher", "Speculation"]

log = logging.getLogger(__name__)

PREFETCH_QUIET_MIN_MS = 50.0  # a speculation builds its prompt only once the document is this quiet...
PREFETCH_QUIET_RHYTHM = 2.5  # ...and quiet for this many of the user's inter-key gaps (a pause)
BET_PRIOR_RATE, BET_PRIOR_N = 0.5, 4.0  # prior hit rate of a typed-through guess and its weight, in bets
BET_MIN_ODDS = 1 / 3  # send a bet before its accept while at most two are wasted per one that is used


@dataclass
class Speculation:
    base: str  # text before the cursor when the completion was shown
    guess: str  # the shown completion
    suffix: str  # text after the cursor
    task: asyncio.Task[Any] | None = None
    # set: stop waiting for a pause (the guess was accepted, or a request joins it)
    urgent: asyncio.Event = field(default_factory=asyncio.Event)
    # set: it may go at a pause (the user typed through the guess and such bets pay off)
    allowed: asyncio.Event = field(default_factory=asyncio.Event)
    trusted: bool = False  # the user's typing made the guess plausible: the bet is scored when it ends
    sent: bool = False  # its request went to the model server
    hit: bool = False  # the document reached the hypothesis

    @property
    def target_offset(self) -> int:
        return len(self.base) + len(self.guess)

    def is_target(self, text: str, offset: int) -> bool:
        return (
            offset == self.target_offset
            and len(text) == len(self.base) + len(self.guess) + len(self.suffix)
            and text.startswith(self.base)
            and text.endswith(self.suffix)
            and text[len(self.base) : offset] == self.guess
        )

    def consistent(self, text: str) -> bool:
        extra = len(text) - len(self.base) - len(self.suffix)
        if not 0 <= extra <= len(self.guess):
            return False
        return (
            text.startswith(self.base)
            and text.endswith(self.suffix)
            and self.guess.startswith(text[len(self.base) : len(self.base) + extra])
        )


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


Generate = Callable[[Document, int, "Speculation"], Awaitable[Any]]


class Prefetcher:
    """The speculations, one per document, from start to score.

    ``generate(hypo, offset, spec)`` builds and sends the request for the hypothetical document (the engine's
    pipeline); it must set ``spec.sent`` when the request really goes out (not when the prompt cache answers).
    """

    def __init__(
        self, generate: Generate, debouncer: Debouncer, stats: Callable[[], SessionStats], clock: Clock | None = None
    ) -> None:
        self._specs: dict[str, Speculation] = {}
        self._clock = clock or RealClock()
        self._generate = generate
        self._debouncer = debouncer
        self._stats = stats
        self.bets = BetOdds()  # does speculating before the accept pay off for this user and model?

    def speculate(self, doc: Document, offset: int, guess: str, eager: bool) -> Speculation | None:
        """The speculation on ``guess`` being accepted at ``offset`` (new, or the one already on that target)."""
        text = doc.text
        base, suffix = text[:offset], text[offset:]
        old = self._specs.get(doc.uri)
        if old is None or old.base + old.guess != base + guess or old.suffix != suffix:
            self.cancel(doc.uri)
            hypo = Document(uri=doc.uri, text=base + guess + suffix, language=doc.language, version=doc.version)
            spec = self._specs[doc.uri] = Speculation(base, guess, suffix)
            spec.task = asyncio.create_task(self._run(spec, hypo, offset + len(guess)))
        if eager:
            self.place_bet(doc.uri)
        return self._specs.get(doc.uri)

    def place_bet(self, uri: str) -> None:
        """The user is typing through the guess: the speculation may go at the next pause — if such bets
        have been paying off in this session; else it is held for the accept (and still scored)."""
        spec = self._specs.get(uri)
        if spec is None or spec.trusted:
            return
        spec.trusted = True
        if spec.sent or (spec.task is not None and spec.task.done()):
            return
        if not self.bets.worth_sending():
            self._stats().bump("prefetch_held")
        else:
            spec.allowed.set()

    def hurry(self, uri: str) -> None:
        """Someone needs the speculation now (its guess was accepted, or a request joins it): no more waiting."""
        if (spec := self._specs.get(uri)) is not None:
            spec.urgent.set()

    def accepted(self, uri: str, spec: Speculation | None) -> None:
        """A full accept of the completion ``spec`` bet on: it came true and goes now — unless a newer
        suggestion's speculation has replaced it (a late accept must not score or rush that one)."""
        if spec is not None and self._specs.get(uri) is spec:
            spec.hit = True
            spec.urgent.set()

    def _end(self, spec: Speculation) -> None:
        if spec.trusted:
            self.bets.add(spec.hit)
        if spec.sent:
            self._stats().bump("prefetch_used" if spec.hit else "prefetch_wasted")

    async def _run(self, spec: Speculation, hypo: Document, offset: int) -> None:
        # The prompt build is synchronous work on the event loop (the context engine is not thread-safe: its
        # parse trees and caches are mutated by builds and edits), so a speculation waits until the document is
        # quiet — a pause in the user's rhythm — and never delays the next keystroke's answer; an accept of the
        # guess, or a request joining it, makes it go at once. Without evidence that the user is taking this
        # completion (``allowed`` unset: not typed through), only that makes it go; it costs nothing meanwhile.
        if not spec.allowed.is_set():
            waits = {asyncio.ensure_future(spec.urgent.wait()), asyncio.ensure_future(spec.allowed.wait())}
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
        while not spec.urgent.is_set():
            since = self._debouncer.since_ms(hypo.uri)
            quiet = max(PREFETCH_QUIET_MIN_MS, PREFETCH_QUIET_RHYTHM * (self._debouncer.rhythm_ms(hypo.uri) or 0.0))
            if since is None or since >= quiet:
                break
            with contextlib.suppress(TimeoutError):
                await self._clock.wait_for(spec.urgent.wait(), (quiet - since) / 1000)
        try:
            await self._generate(hypo, offset, spec)
        except TransportError as exc:
            log.debug("prefetch failed: %s", exc)

    def get(self, uri: str) -> Speculation | None:
        return self._specs.get(uri)

    def in_flight(self, uri: str) -> bool:
        spec = self._specs.get(uri)
        return spec is not None and spec.task is not None and not spec.task.done()

    def joinable(self, uri: str, text: str, offset: int) -> asyncio.Task[Any] | None:
        spec = self._specs.get(uri)
        if spec is not None and spec.task is not None and not spec.task.done() and spec.is_target(text, offset):
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
        if spec.task is None or spec.task.done():
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
        if spec.task is None or spec.task.done():
            return False
        spec.task.cancel()
        return True

    async def aclose(self) -> None:
        for uri in list(self._specs):
            spec = self._specs[uri]
            self.cancel(uri)
            if spec.task is not None:
                with contextlib.suppress(BaseException):
                    await spec.task
