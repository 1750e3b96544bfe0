"""The completion pipeline inside the daemon: document -> prompt -> model server -> clean text.

The orchestrator only wires the stages; each lives in its own module:
``debounce`` (when to ask), ``cache`` (typing-through and prompt hits), ``prefetch`` (speculation),
``linemode`` (single vs multi-line), ``postprocess`` (filters), ``stats`` (acceptance signals).

One document's state lives in one :class:`DocSession`; its speculation in the ``Prefetcher``.

Request economy (adaptive mode): at most one interactive request per document on the wire. A keystroke
always cancels the *waiting* (debounce) of the stale request, but a request already on the wire survives
keystrokes that only type forward at its cursor (its prompt's prefix is still the document's prefix and
the suffix is unchanged): the next ``complete`` joins it, and its result — cached at its own position —
is served through the cache's walk-back when it begins with what was typed meanwhile. An upstream
request nobody waits for any more is cancelled after ``JOIN_GRACE_S`` (an editor's ``$/cancelRequest``
followed by no new request). On an eager server (a slow llama-server: ``ServerSpeed.eager``) there is no
debounce: a request goes at each key that does not join the one on the wire. The speculation (the next completion
as if this one were accepted) is sent only on evidence: the accept itself, or the user typing through the
completion. The fixed mode cancels everything on every keystroke, as a plain fixed-debounce client does.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from codeassist.client.cache import CompletionCache
from codeassist.client.clock import Clock, RealClock
from codeassist.client.config import Config
from codeassist.client.debounce import Debouncer
from codeassist.client.documents import Document
from codeassist.client.latency import LatencyTracker
from codeassist.client.models import ModelResolver
from codeassist.client.pipeline import Pipeline
from codeassist.client.postprocess import replace_range
from codeassist.client.prefetch import BetOdds, Prefetcher, Speculation
from codeassist.client.project import Route
from codeassist.client.result import CompletionResult
from codeassist.client.server_speed import SpeedBook
from codeassist.client.session import DocSession
from codeassist.client.stats import SessionStats
from codeassist.client.transport.base import Transport
from codeassist.client.upstream import Upstream
from codeassist.context.templates import template_for
from codeassist.context.window import PromptParts, simple_window

__all__ = ["UNCOUNTED", "CompletionEngine", "CompletionResult"]

log = logging.getLogger(__name__)

JOIN_GRACE_S = 0.5  # an upstream request with no waiter is cancelled after this long...
JOIN_GRACE_SLOW_S = 5.0  # ...on a slow server (a CPU) its prefill is the costly part: its answer lands in the cache
SHOWN_REMEMBERED = 512
FIRST_LINE_SETTLE_S = 0.015  # a first line is shown alone only when the rest does not follow within this
TRUST_TYPED = 2  # a speculation goes on its own (at a pause) once the user has typed this many characters of
# the shown completion; else it waits for the accept itself: a few % of shown completions are taken whole (the
# hypothesis it bets on), so a blind speculation was nearly always a wasted request
IDLE_PARSE_MIN_MS = 80.0  # the context engine re-parses a document once it is this quiet...
IDLE_PARSE_RHYTHM = 1.5  # ...and quiet for this many of the user's inter-key gaps (builds meanwhile use the
# last tree shifted by the edits: a parse holds the GIL, so it belongs in a pause, not before a request)
# Set for a request that is measured but not counted (doctor's probes): the tasks it starts inherit it.
UNCOUNTED: contextvars.ContextVar[bool] = contextvars.ContextVar("uncounted", default=False)


class ContextSource(Protocol):
    """What the engine needs of the context engine (``codeassist.context.engine.ContextEngine``)."""

    def build(
        self, text: str, offset: int, template: Any, *, uri: str, language: str, budget: int, region_lines: int = 1
    ) -> PromptParts: ...

    def refresh(self, uri: str) -> bool: ...


class CompletionEngine:
    def __init__(
        self,
        config: Config,
        transport: Transport,
        context: ContextSource | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.transport = transport
        self.context = context  # None: prompts are the plain window around the cursor
        self.clock = clock or RealClock()  # every wait of the engine (tests advance a FakeClock)
        self.models = ModelResolver()
        # Per document: its repo's settings and the transport its code goes through (the daemon's
        # ProjectResolver.route); by default this engine's own config and transport.
        self.route: Callable[[str], Route] = lambda uri: Route(self.config, self.transport)
        self.adaptive = config.engine_mode != "fixed"
        self.trust_typed = TRUST_TYPED  # characters typed through a completion before its speculation may go alone
        self.latency = LatencyTracker()
        self.debouncer = Debouncer(
            config.debounce_min_ms,
            config.debounce_max_ms,
            self.latency,
            self.clock.now,
            fixed_ms=None if self.adaptive else config.debounce_fixed_ms,
        )
        # The fixed baseline keeps an exact-position/prompt LRU (as Continue does) but no walk-back.
        self.cache = CompletionCache(config.cache_entries, config.cache_bytes, max_walk=128 if self.adaptive else 0)
        self.speeds = SpeedBook()  # what each server costs: the prompt budget and what is worth cancelling
        self.pipeline = Pipeline(
            lambda uri: self.route(uri),  # the daemon sets route after construction
            self.models,
            lambda doc, offset, family, budget, region: self.build_prompt(doc, offset, family, budget, region),
            self.cache,
            lambda: self.stats,
            self.latency,
            self.speeds,
        )
        self.prefetcher = Prefetcher(self._speculative_generate, self.debouncer, lambda: self.stats, self.clock)
        self._stats = SessionStats()
        self._uncounted_stats = SessionStats()  # where an UNCOUNTED request's counts go (and are dropped)
        self._sessions: dict[str, DocSession] = {}
        # completion id -> (document, the speculation on it being accepted), for accepts
        self._shown: dict[str, tuple[str, Speculation | None]] = {}

    @property
    def stats(self) -> SessionStats:
        return self._uncounted_stats if UNCOUNTED.get() else self._stats

    @property
    def bets(self) -> BetOdds:
        return self.prefetcher.bets

    def session(self, uri: str) -> DocSession | None:
        """The document's state (None when the engine holds nothing for it)."""
        return self._sessions.get(uri)

    def _session(self, uri: str) -> DocSession:
        if (ds := self._sessions.get(uri)) is None:
            ds = self._sessions[uri] = DocSession(uri)
        return ds

    def build_prompt(
        self, doc: Document, offset: int, family: str, budget: int | None = None, region_lines: int = 1
    ) -> PromptParts:
        if self.context is not None:
            try:
                return self.context.build(
                    doc.text,
                    offset,
                    template_for(family),
                    uri=doc.uri,
                    language=doc.language,
                    budget=budget or self.config.budget,
                    region_lines=region_lines,
                )
            except Exception:
                log.exception("context engine failed; using the plain window")
        return simple_window(doc.text, offset, template_for(family))

    # -- document events ----------------------------------------------------------------------
    def on_change(self, doc: Document) -> None:
        """A keystroke: feeds the rhythm, cancels the pending/in-flight request, checks the speculation."""
        self.debouncer.keystroke(doc.uri)
        ds = self._session(doc.uri)
        if ds.waiting is not None and not ds.waiting.done():
            ds.waiting.cancel()
        ds.waiting = None
        if ds.upstream is not None and not (self.adaptive and ds.upstream.consistent(doc.text)):
            ds.drop_upstream()
        if self.prefetcher.on_change(doc.uri, doc.text):
            self.stats.bump("prefetch_cancelled")
        self._arm_idle_parse(ds)

    def _arm_idle_parse(self, ds: DocSession) -> None:
        if self.context is None:
            return
        if ds.idle_parse is not None:
            ds.idle_parse.cancel()
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): nothing can run the timer
            return
        quiet = max(IDLE_PARSE_MIN_MS, IDLE_PARSE_RHYTHM * (self.debouncer.rhythm_ms(ds.uri) or 0.0))
        ds.idle_parse = self.clock.call_later(quiet / 1000, self._parse_now, ds)

    def _parse_now(self, ds: DocSession) -> None:
        ds.idle_parse = None
        try:
            if self.context is not None:
                self.context.refresh(ds.uri)
        except Exception:
            log.exception("idle re-parse failed")

    def on_close(self, uri: str) -> None:
        if (ds := self._sessions.pop(uri, None)) is not None:
            ds.close()
        self.prefetcher.cancel(uri)
        self.debouncer.forget(uri)

    def accept(self, completion_id: str | None, chars: int | None) -> str:
        """Count the accept; a full accept makes the document's speculation (that very hypothesis) go now."""
        kind = self.stats.record_accept(completion_id, chars)
        shown = self._shown.pop(completion_id, None) if completion_id else None
        if shown is None:
            return kind
        uri, spec = shown
        if kind == "accepted":
            self.prefetcher.accepted(uri, spec)
        else:
            self._shown[completion_id or ""] = shown  # more of it may be accepted later
            self._session(uri).partly_taken = True
        return kind

    # -- completion -----------------------------------------------------------------------------
    async def complete(self, doc: Document, offset: int, priority: str = "interactive") -> CompletionResult:
        t0 = time.perf_counter()
        self.stats.bump("requests")
        ds = self._session(doc.uri)
        if (prev := ds.waiting) is not None:
            ds.waiting = None
            prev.cancel()
        result = self._from_cache(doc.text, offset)
        if result is None and self.adaptive and (spec := self.prefetcher.joinable(doc.uri, doc.text, offset)):
            self.prefetcher.hurry(doc.uri)  # someone waits for it now: no more waiting for a pause
            self.stats.bump("joined")
            text = doc.text
            await asyncio.wait({spec})  # joining the speculation: no second request
            if doc.text != text:  # a keystroke came meanwhile: this position is stale
                self.stats.bump("cancelled")
                return CompletionResult(text="", source="cancelled", timings={"total_ms": _ms(t0)})
            result = self._from_cache(text, offset)
        if result is None:
            task = asyncio.create_task(self._obtain(doc, ds, offset, priority))
            ds.waiting = task
            try:
                result = await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                self.stats.bump("cancelled")
                if current is not None and current.cancelling():
                    task.cancel()
                    raise
                return CompletionResult(text="", source="cancelled", timings={"total_ms": _ms(t0)})
            finally:
                if ds.waiting is task:
                    ds.waiting = None
        result.timings["total_ms"] = _ms(t0)
        if result.text:
            self.stats.record_shown(result.id, len(result.text), result.source, result.timings["total_ms"])
            if result.source == "model":
                ds.partly_taken = False  # a new suggestion
            spec = None
            # No speculation for a probe's answer (not shown to anyone), a first line (the rest is on its way), or
            # on a slow server: two requests at once on a CPU each take twice as long (and miss its prompt cache)
            if self.adaptive and not UNCOUNTED.get() and not result.partial and not self._slow(doc.uri):
                spec = self._speculate(doc, offset, result.text, eager=self._trusted(ds, result))
            self._shown[result.id] = (doc.uri, spec)
            while len(self._shown) > SHOWN_REMEMBERED:
                self._shown.pop(next(iter(self._shown)))
        elif result.error:
            self.stats.bump("errors")
        else:
            self.stats.bump("empty")
        return result

    def _trusted(self, ds: DocSession, result: CompletionResult) -> bool:
        """Evidence that the user is taking this completion: typing through it. Not an accept of part of it:
        whoever takes a word or a line rather than the whole has seen that the rest does not fit."""
        return result.typed >= self.trust_typed and not ds.partly_taken

    async def _obtain(self, doc: Document, ds: DocSession, offset: int, priority: str) -> CompletionResult:
        """Join the request on the wire when it can answer this position, else debounce and send one.

        Runs as the document's waiting task: a keystroke cancels it (and nothing else). A joined request
        that was sent for an earlier position is waited for while the user types; once the user pauses (this
        position's debounce elapses) it is kept only if what it has streamed agrees with what was typed —
        otherwise a request for this position replaces it (on an eager server, once its first token is in)."""
        text = doc.text
        t0 = time.perf_counter()
        speed = self.speeds.of(self.route(doc.uri).transport)
        eager = speed.eager and self.config.eager
        delay = self.debouncer.delay_ms(doc.uri, text[offset - 1 : offset], speed.wait_cap_ms(eager))
        up = ds.upstream
        if up is not None and self.adaptive and up.joinable(text, offset):
            self.stats.bump("joined")
            ahead = up.base != text[:offset]

            served: list[CompletionResult] = []

            def lines_so_far() -> CompletionResult | None:
                # its complete lines are cached as they stream: typed through to here, is a line left?
                if (hit := self._from_cache(text, offset)) is not None:
                    hit.partial = not up.task.done()  # no speculation on an answer still being written
                    served.append(hit)
                return hit

            # Judged at the pause by what it streamed; on an eager server it went one key ago: its first token says
            silent = ahead and not up.has_output and not eager
            result = await self._wait_upstream(ds, up, delay / 1000 if silent else None, serve=lines_so_far)
            if result is None and up.consistent(text) and (up.has_output or up.prefilling()):
                # It started agreeing, or the server is still reading its prompt, which is the start of this
                # position's too: worth the wait (a new request now would read it again from the start).
                result = await self._wait_upstream(ds, up, None, serve=lines_so_far)
            if result is not None:
                if not ahead or (served and result is served[-1]):  # its answer here, or its lines so far
                    return result
                hit = self._from_cache(text, offset)  # re-keyed through the walk-back, or diverged
                if hit is not None:
                    hit.timings.update(result.timings)
                    return hit
                t0 = time.perf_counter()  # the wait for the answer was no debounce
            else:
                self.stats.bump("replaced")
                delay = 0.0  # the pause has come: it was the debounce
        if (left := delay - _ms(t0)) > 0:
            await self.clock.sleep(left / 1000)
        timings = {"debounce_ms": _ms(t0)}
        self.stats.latency["debounce"].add(timings["debounce_ms"])
        if (pause := self.debouncer.pause_delay_ms(doc.uri)) is not None:
            # fired - max(request in, pause start): what the debounce added once the pause had begun
            self.stats.latency["pause_delay"].add(min(pause, timings["debounce_ms"]))
        ds.drop_upstream()  # not joinable: at most one interactive request per document
        streamed: list[str] = []
        first_line: asyncio.Future[CompletionResult] = asyncio.get_running_loop().create_future()
        progress = asyncio.Event()
        up = Upstream(
            asyncio.create_task(
                self.pipeline.request(doc, offset, first_line, timings, streamed, priority, progress=progress)
            ),
            text[:offset],
            text[offset:],
            streamed,
            first_line=first_line,
            timings=timings,
            progress=progress,
        )
        ds.upstream = up
        result = await self._wait_upstream(ds, up, None, first_line=True)
        assert result is not None  # no timeout: a result
        return result

    async def _wait_upstream(
        self,
        ds: DocSession,
        up: Upstream,
        timeout: float | None,
        first_line: bool = False,
        serve: Callable[[], CompletionResult | None] | None = None,
    ) -> CompletionResult | None:
        """Its result, or None after ``timeout`` seconds (the request stays on the wire). ``first_line``: the
        requester's own wait, answered by a multi-line answer's first line as soon as that is complete (the
        rest lands in the cache; a later request joins the request for it). ``serve``: a joiner's answer from
        the lines streamed so far, tried each time more are complete."""
        if up.grace is not None:
            up.grace.cancel()
            up.grace = None
        up.waiters += 1
        try:
            if first_line and up.first_line is not None:
                return await self.clock.wait_for(self._first_of(up.task, up.first_line), timeout)
            if serve is not None:
                return await self.clock.wait_for(up.served_or_done(serve, FIRST_LINE_SETTLE_S), timeout)
            return await self.clock.wait_for(asyncio.shield(up.task), timeout)
        except TimeoutError:
            return None
        finally:
            up.waiters -= 1
            if ds.upstream is up:
                if up.task.done():
                    ds.upstream = None
                elif up.waiters == 0:
                    if self.adaptive:  # a consistent keystroke's request may still join it
                        grace = JOIN_GRACE_SLOW_S if self._slow(ds.uri) else JOIN_GRACE_S
                        up.grace = self.clock.call_later(grace, self._expire, ds, up)
                    else:
                        ds.drop_upstream()

    async def _first_of(
        self, task: asyncio.Task[CompletionResult], early: asyncio.Future[CompletionResult]
    ) -> CompletionResult:
        """The task's result, or the first line if that comes first and the rest does not follow at once (an
        answer whose first line ends with its last token is shown whole); neither is cancelled by this wait."""
        done, _ = await asyncio.wait({task, early}, return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            with contextlib.suppress(TimeoutError):
                return await self.clock.wait_for(asyncio.shield(task), FIRST_LINE_SETTLE_S)
        return task.result() if task.done() else early.result()

    def _slow(self, uri: str) -> bool:
        """The document's server is slow (prefill measured below ``FAST_TPS``): work on the wire is precious."""
        return self.speeds.of(self.route(uri).transport).slow

    @staticmethod
    def _expire(ds: DocSession, up: Upstream) -> None:
        if ds.upstream is up and up.waiters == 0:
            ds.drop_upstream()

    def _from_cache(self, text: str, offset: int) -> CompletionResult | None:
        hit = self.cache.typed_through(text, offset)
        if hit is None:
            return None
        if hit.typed:
            self.stats.bump("typed_through")
        return CompletionResult(
            text=hit.text,
            source="prefetch" if hit.source == "prefetch" else "cache",
            multiline="\n" in hit.text,
            typed=hit.typed,
            replace_suffix_chars=replace_range.for_document(hit.text, text, offset),
        )

    def _speculate(self, doc: Document, offset: int, guess: str, eager: bool) -> Speculation | None:
        """The speculation on ``guess`` being accepted here; None when the cache already holds the answer."""
        new_text = doc.text[:offset] + guess + doc.text[offset:]
        if self.cache.typed_through(new_text, offset + len(guess)) is not None:
            return None
        return self.prefetcher.speculate(doc, offset, guess, eager)

    async def _speculative_generate(self, hypo: Document, offset: int, spec: Speculation) -> None:
        await self.pipeline.generate(hypo, offset, "prefetch", {}, None, spec)

    async def aclose(self) -> None:
        for uri in list(self._sessions):
            self.on_close(uri)
        await self.prefetcher.aclose()


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000
