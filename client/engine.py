"""The completion pipeline inside the daemon: document -> prompt -> model server -> clean text.

The orchestrator only wires the stages; each lives in its own module:
``debounce`` (when to ask), ``cache`` (typing-through and prompt hits), ``prefetch`` (speculation),
``linemode`` (single vs multi-line), ``postprocess`` (filters), ``stats`` (acceptance signals).

Request economy (adaptive mode): at most one interactive request per document on the wire. A keystroke
always cancels the *waiting* (debounce) of the stale request, but a request already on the wire survives
keystrokes that only type forward at its cursor (its prompt's prefix is still the document's prefix and
the suffix is unchanged): the next ``complete`` joins it, and its result — cached at its own position —
is served through the cache's walk-back when it begins with what was typed meanwhile. An upstream
request nobody waits for any more is cancelled after ``JOIN_GRACE_S`` (an editor's ``$/cancelRequest``
followed by no new request). The speculation (the next completion as if this one were accepted) is sent only
on evidence: the accept itself, or the user typing through the completion. The fixed mode cancels everything on
every keystroke, as a plain fixed-debounce client does.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from codeassist.client import linemode, postprocess
from codeassist.client.cache import CompletionCache, prompt_key
from codeassist.client.config import Config
from codeassist.client.debounce import Debouncer
from codeassist.client.documents import Document
from codeassist.client.latency import LatencyTracker
from codeassist.client.prefetch import BetOdds, Prefetcher, Speculation, Upstream
from codeassist.client.project import Route
from codeassist.client.stats import SessionStats
from codeassist.client.transport.base import CompletionParams, Transport, TransportError
from codeassist.context.templates import detect_family, template_for
from codeassist.context.window import PromptParts, simple_window

__all__ = ["UNCOUNTED", "CompletionEngine", "CompletionResult"]

log = logging.getLogger(__name__)

FILTER_PREFIX_CHARS = 4000
FILTER_SUFFIX_CHARS = 2000
SINGLE_LINE_MAX_TOKENS = 32
JOIN_GRACE_S = 0.5  # an upstream request with no waiter is cancelled after this long
PREFETCH_QUIET_MIN_MS = 50.0  # a speculation builds its prompt only once the document is this quiet...
PREFETCH_QUIET_RHYTHM = 2.5  # ...and quiet for this many of the user's inter-key gaps (a pause)
SHOWN_REMEMBERED = 512
TRUST_TYPED = 2  # a speculation goes on its own (at a pause) once the user has typed this many characters of
# the shown completion; else it waits for the accept itself: a few % of shown completions are taken whole (the
# hypothesis it bets on), so a blind speculation was nearly always a wasted request
IDLE_PARSE_MIN_MS = 80.0  # the context engine re-parses a document once it is this quiet...
IDLE_PARSE_RHYTHM = 1.5  # ...and quiet for this many of the user's inter-key gaps (builds meanwhile use the
# last tree shifted by the edits: a parse holds the GIL, so it belongs in a pause, not before a request)
# Set for a request that is measured but not counted (doctor's probes): the tasks it starts inherit it.
UNCOUNTED: contextvars.ContextVar[bool] = contextvars.ContextVar("uncounted", default=False)
# Set in a speculation's own task, so that _fetch marks it sent the moment its request really goes out.
_SPECULATION: contextvars.ContextVar[Speculation | None] = contextvars.ContextVar("speculation", default=None)


@dataclass
class CompletionResult:
    text: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    source: str = "model"  # model | cache | prefetch | none | cancelled
    multiline: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    typed: int = 0  # characters of a cached completion the user typed through before this answer

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "id": self.id,
            "source": self.source,
            "multiline": self.multiline,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "error": self.error,
        }


class CompletionEngine:
    def __init__(self, config: Config, transport: Transport, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.transport = transport
        self._model: str | None = config.model or None
        self._family: str | None = None if config.family == "auto" else config.family
        self._resolve_lock = asyncio.Lock()
        # Per document: its repo's settings and the transport its code goes through (the daemon's
        # ProjectResolver.route); by default this engine's own config and transport.
        self.route: Callable[[str], Route] = lambda uri: Route(self.config, self.transport)
        self._route_models: dict[int, str] = {}  # id(transport) -> model, for a trusted project's own server
        self.context: Any = None  # the context engine, set by the daemon
        self.smart = config.engine_mode != "fixed"
        self.latency = LatencyTracker()
        self.debouncer = Debouncer(config.debounce_min_ms, config.debounce_max_ms, self.latency, clock,
                                   fixed_ms=None if self.smart else config.debounce_fixed_ms)
        # The fixed baseline keeps an exact-position/prompt LRU (as Continue does) but no walk-back.
        self.cache = CompletionCache(config.cache_entries, config.cache_bytes, max_walk=128 if self.smart else 0)
        self.prefetcher = Prefetcher(on_end=self._speculation_ended)
        self.bets = BetOdds()  # does speculating before the accept pay off for this user and model?
        self._stats = SessionStats()
        self._uncounted_stats = SessionStats()  # where an UNCOUNTED request's counts go (and are dropped)
        self._inflight: dict[str, asyncio.Task[CompletionResult | None]] = {}  # waiting (debounce/join)
        self._upstream: dict[str, Upstream] = {}  # interactive request on the wire, per document
        self._urgent: dict[str, asyncio.Event] = {}  # set: the document's speculation stops waiting for a pause
        self._eager: dict[str, asyncio.Event] = {}  # set: the document's speculation may go at a pause
        # completion id -> (document, the speculation on it being accepted), for accepts
        self._shown: dict[str, tuple[str, Speculation | None]] = {}
        self._idle_parse: dict[str, asyncio.TimerHandle] = {}  # per document: the re-parse armed for a pause
        self._partly_taken: set[str] = set()  # documents whose shown completion was accepted only in part

    @property
    def stats(self) -> SessionStats:
        return self._uncounted_stats if UNCOUNTED.get() else self._stats

    async def resolve_model(self) -> tuple[str, str]:
        """Served model id and FIM family, asked of ``/v1/models`` once and then remembered."""
        if self._model and self._family:
            return self._model, self._family
        async with self._resolve_lock:
            if not self._model:
                models = await self.transport.models()
                if not models:
                    raise TransportError("protocol", "the server serves no model")
                self._model = models[0]
            if not self._family:
                self._family = detect_family(self._model)
            log.info("model %s, family %s", self._model, self._family)
            return self._model, self._family

    def forget_model(self) -> None:
        """The server changed: ask the new one which model it serves."""
        self._model = self.config.model or None
        self._family = None if self.config.family == "auto" else self.config.family
        self._route_models.clear()

    async def resolve_route_model(self, route: Route) -> tuple[str, str]:
        """Model and family for one request: the document's project may name its family (or, trusted, its
        model and server)."""
        if route.transport is self.transport and route.config.model == self.config.model:
            model, family = await self.resolve_model()
        else:
            model = route.config.model or self._route_models.get(id(route.transport), "")
            if not model:
                models = await route.transport.models()
                if not models:
                    raise TransportError("protocol", "the server serves no model")
                model = self._route_models[id(route.transport)] = models[0]
            family = detect_family(model)
        if route.config.family != "auto":
            family = route.config.family
        return model, family

    def build_prompt(self, doc: Document, offset: int, family: str, budget: int | None = None) -> PromptParts:
        context = getattr(self, "context", None)
        if context is not None:
            try:
                return context.build(doc.text, offset, template_for(family), uri=doc.uri, language=doc.language,
                                     budget=budget or self.config.budget)
            except Exception:
                log.exception("context engine failed; using the plain window")
        return simple_window(doc.text, offset, template_for(family))

    # -- document events ----------------------------------------------------------------------
    def on_change(self, doc: Document) -> None:
        """A keystroke: feeds the rhythm, cancels the pending/in-flight request, checks the speculation."""
        self.debouncer.keystroke(doc.uri)
        task = self._inflight.pop(doc.uri, None)
        if task is not None and not task.done():
            task.cancel()
        up = self._upstream.get(doc.uri)
        if up is not None and not (self.smart and up.consistent(doc.text)):
            self._drop_upstream(doc.uri)
        if self.prefetcher.on_change(doc.uri, doc.text):
            self.stats.bump("prefetch_cancelled")
        self._arm_idle_parse(doc.uri)

    def _arm_idle_parse(self, uri: str) -> None:
        if getattr(self.context, "refresh", None) is None:
            return
        if (handle := self._idle_parse.pop(uri, None)) is not None:
            handle.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        quiet = max(IDLE_PARSE_MIN_MS, IDLE_PARSE_RHYTHM * (self.debouncer.rhythm_ms(uri) or 0.0))
        self._idle_parse[uri] = loop.call_later(quiet / 1000, self._parse_now, uri)

    def _parse_now(self, uri: str) -> None:
        self._idle_parse.pop(uri, None)
        try:
            self.context.refresh(uri)
        except Exception:
            log.exception("idle re-parse failed")

    def on_close(self, uri: str) -> None:
        if (handle := self._idle_parse.pop(uri, None)) is not None:
            handle.cancel()
        self._partly_taken.discard(uri)
        if (task := self._inflight.pop(uri, None)) is not None:
            task.cancel()
        self._drop_upstream(uri)
        self.prefetcher.cancel(uri)
        self.debouncer.forget(uri)

    def _drop_upstream(self, uri: str) -> None:
        if (up := self._upstream.pop(uri, None)) is not None:
            if up.grace is not None:
                up.grace.cancel()
            up.task.cancel()

    def accept(self, completion_id: str | None, chars: int | None) -> str:
        """Count the accept; a full accept makes the document's speculation (that very hypothesis) go now."""
        kind = self.stats.record_accept(completion_id, chars)
        shown = self._shown.pop(completion_id, None) if completion_id else None
        if shown is None:
            return kind
        uri, spec = shown
        if kind == "accepted":
            # an accept that arrives after a newer suggestion was shown must not score or rush that one's bet
            if spec is not None and self.prefetcher.get(uri) is spec:
                spec.hit = True
                self._hurry(uri)
        else:
            self._shown[completion_id or ""] = shown  # more of it may be accepted later
            self._partly_taken.add(uri)
        return kind

    def _hurry(self, uri: str) -> None:
        if (event := self._urgent.get(uri)) is not None:
            event.set()

    # -- completion -----------------------------------------------------------------------------
    async def complete(self, doc: Document, offset: int, priority: str = "interactive") -> CompletionResult:
        t0 = time.perf_counter()
        self.stats.bump("requests")
        if (prev := self._inflight.pop(doc.uri, None)) is not None:
            prev.cancel()
        result = self._from_cache(doc.text, offset)
        if result is None and self.smart and (spec := self.prefetcher.joinable(doc.uri, doc.text, offset)):
            self._hurry(doc.uri)  # someone waits for it now: no more waiting for a pause
            self.stats.bump("joined")
            text = doc.text
            await asyncio.wait({spec})  # joining the speculation: no second request
            if doc.text != text:  # a keystroke came meanwhile: this position is stale
                self.stats.bump("cancelled")
                return CompletionResult(text="", source="cancelled", timings={"total_ms": _ms(t0)})
            result = self._from_cache(text, offset)
        if result is None:
            task = asyncio.create_task(self._obtain(doc, offset, priority))
            self._inflight[doc.uri] = task
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
                if self._inflight.get(doc.uri) is task:
                    del self._inflight[doc.uri]
        result.timings["total_ms"] = _ms(t0)
        if result.text:
            self.stats.record_shown(result.id, len(result.text), result.source, result.timings["total_ms"])
            if result.source == "model":
                self._partly_taken.discard(doc.uri)  # a new suggestion
            spec = None
            if self.smart and not UNCOUNTED.get():  # a probe's answer is not shown to anyone: no speculation
                spec = self._speculate(doc, offset, result.text, eager=self._trusted(doc.uri, result))
            self._shown[result.id] = (doc.uri, spec)
            while len(self._shown) > SHOWN_REMEMBERED:
                self._shown.pop(next(iter(self._shown)))
        elif result.error:
            self.stats.bump("errors")
        else:
            self.stats.bump("empty")
        return result

    def _trusted(self, uri: str, result: CompletionResult) -> bool:
        """Evidence that the user is taking this completion: typing through it. Not an accept of part of it:
        whoever takes a word or a line rather than the whole has seen that the rest does not fit."""
        return result.typed >= TRUST_TYPED and uri not in self._partly_taken

    async def _obtain(self, doc: Document, offset: int, priority: str) -> CompletionResult:
        """Join the request on the wire when it can answer this position, else debounce and send one.

        Runs as the document's waiting task: a keystroke cancels it (and nothing else). A joined request
        that was sent for an earlier position is waited for while the user types; once the user pauses (this
        position's debounce elapses) it is kept only if what it has streamed agrees with what was typed —
        otherwise a request for this position replaces it."""
        text = doc.text
        t0 = time.perf_counter()
        delay = self.debouncer.delay_ms(doc.uri, text[offset - 1 : offset])
        up = self._upstream.get(doc.uri)
        if up is not None and self.smart and up.joinable(text, offset):
            self.stats.bump("joined")
            ahead = up.base != text[:offset]
            result = await self._wait_upstream(doc.uri, up, delay / 1000 if ahead and not up.has_output else None)
            if result is None and up.has_output and up.consistent(text):
                result = await self._wait_upstream(doc.uri, up, None)  # it started agreeing: worth the wait
            if result is not None:
                if not ahead:
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
            await asyncio.sleep(left / 1000)
        timings = {"debounce_ms": _ms(t0)}
        self.stats.latency["debounce"].add(timings["debounce_ms"])
        if (pause := self.debouncer.pause_delay_ms(doc.uri)) is not None:
            # fired - max(request in, pause start): what the debounce added once the pause had begun
            self.stats.latency["pause_delay"].add(min(pause, timings["debounce_ms"]))
        self._drop_upstream(doc.uri)  # not joinable: at most one interactive request per document
        streamed: list[str] = []
        up = Upstream(asyncio.create_task(self._request(doc, offset, priority, timings, streamed)), text[:offset],
                      text[offset:], streamed)
        self._upstream[doc.uri] = up
        return await self._wait_upstream(doc.uri, up, None)  # type: ignore[return-value]  # no timeout: a result

    async def _wait_upstream(self, uri: str, up: Upstream, timeout: float | None) -> CompletionResult | None:
        """Its result, or None after ``timeout`` seconds (the request stays on the wire)."""
        if up.grace is not None:
            up.grace.cancel()
            up.grace = None
        up.waiters += 1
        try:
            return await asyncio.wait_for(asyncio.shield(up.task), timeout)
        except TimeoutError:
            return None
        finally:
            up.waiters -= 1
            if self._upstream.get(uri) is up:
                if up.task.done():
                    del self._upstream[uri]
                elif up.waiters == 0:
                    if self.smart:  # a consistent keystroke's request may still join it
                        up.grace = asyncio.get_running_loop().call_later(JOIN_GRACE_S, self._expire, uri, up)
                    else:
                        self._drop_upstream(uri)

    def _expire(self, uri: str, up: Upstream) -> None:
        if self._upstream.get(uri) is up and up.waiters == 0:
            self._drop_upstream(uri)

    def _from_cache(self, text: str, offset: int) -> CompletionResult | None:
        hit = self.cache.typed_through(text, offset)
        if hit is None:
            return None
        if hit.typed:
            self.stats.bump("typed_through")
        return CompletionResult(text=hit.text, source="prefetch" if hit.source == "prefetch" else "cache",
                                multiline="\n" in hit.text, typed=hit.typed)

    async def _request(self, doc: Document, offset: int, priority: str, timings: dict[str, float],
                       streamed: list[str] | None = None) -> CompletionResult:
        doc = Document(uri=doc.uri, text=doc.text, language=doc.language, version=doc.version)  # a snapshot
        try:
            completion, multiline, source = await self._generate(doc, offset, priority, timings, streamed)
        except TransportError as exc:
            log.warning("completion failed: %s", exc)
            return CompletionResult(text="", source="none", error=f"{exc.kind}: {exc}", timings=timings)
        except asyncio.CancelledError:
            self.stats.bump("upstream_cancelled")
            raise
        return CompletionResult(text=completion, source=source if completion else "none", multiline=multiline,
                                timings=timings)

    async def _generate(self, doc: Document, offset: int, priority: str, timings: dict[str, float],
                        streamed: list[str] | None = None) -> tuple[str, bool, str]:
        """Prompt -> (prompt cache | model) -> filters -> cache. Shared by requests and speculations."""
        t0 = time.perf_counter()
        text = doc.text
        route = self.route(doc.uri)
        cfg = route.config
        model, family = await self.resolve_route_model(route)
        mode = linemode.decide(text, offset, doc.language)
        parts = self.build_prompt(doc, offset, family, cfg.budget)
        template = template_for(family)
        key = prompt_key(model, f"{'m' if mode.multiline else 's'}{cfg.max_tokens}", parts.prompt)
        cached = self.cache.get(key)
        timings["context_ms"] = _ms(t0)
        if cached is not None:
            self.cache.put_position(text, offset, cached)
            return cached, mode.multiline, "cache"
        params = CompletionParams(
            prompt=parts.prompt,
            model=model,
            max_tokens=cfg.max_tokens if mode.multiline else min(cfg.max_tokens, SINGLE_LINE_MAX_TOKENS),
            temperature=cfg.temperature,
            stop=linemode.stops_for(mode, template.stop),
            priority=priority,
        )
        raw = await self._fetch(params, timings, streamed, route.transport)
        ctx = postprocess.FilterContext(prefix=text[max(0, offset - FILTER_PREFIX_CHARS) : offset],
                                        suffix=text[offset : offset + FILTER_SUFFIX_CHARS],
                                        multiline=mode.multiline, language=doc.language, scaffold=parts.header)
        completion = postprocess.run(cut_at_stops(raw, params.stop), ctx)
        if completion:
            source = "prefetch" if priority == "prefetch" else "model"
            self.cache.put(key, completion, source)
            self.cache.put_position(text, offset, completion, source)
        return completion, mode.multiline, "model"

    async def _fetch(self, params: CompletionParams, timings: dict[str, float],
                     streamed: list[str] | None = None, transport: Transport | None = None) -> str:
        t_send = time.perf_counter()
        if (spec := _SPECULATION.get()) is not None:
            spec.sent = True
        self.stats.bump("upstream_requests")
        if params.priority == "prefetch":
            self.stats.bump("prefetch_requests")
        self.on_wire(params)
        pieces: list[str] = [] if streamed is None else streamed  # what has arrived so far, for on_change
        async for chunk in (transport or self.transport).stream(params):
            if "ttft_ms" not in timings:
                timings["ttft_ms"] = _ms(t_send)
            pieces.append(chunk.text)
        timings["model_ms"] = _ms(t_send)
        self.latency.add(timings["model_ms"])
        self.stats.latency["model"].add(timings["model_ms"])
        return "".join(pieces)

    def on_wire(self, params: CompletionParams) -> None:
        """Hook called just before a request goes to the transport (benchmarks time it)."""

    def _speculate(self, doc: Document, offset: int, guess: str, eager: bool = True) -> Speculation | None:
        """The speculation on ``guess`` being accepted here (new or already running); None when not needed."""
        text = doc.text
        new_text = text[:offset] + guess + text[offset:]
        new_offset = offset + len(guess)
        if self.cache.typed_through(new_text, new_offset) is not None:
            return None
        hypo = Document(uri=doc.uri, text=new_text, language=doc.language, version=doc.version)
        urgent, allowed = asyncio.Event(), asyncio.Event()
        if self.prefetcher.start(doc.uri, text, offset, guess, self._prefetch(hypo, new_offset, urgent, allowed)):
            self._urgent[doc.uri], self._eager[doc.uri] = urgent, allowed
        if eager:
            self._place_bet(doc.uri)
        return self.prefetcher.get(doc.uri)  # start() keeps a running speculation on the same hypothesis

    def _place_bet(self, uri: str) -> None:
        """The user is typing through the guess: the speculation may go at the next pause — if such bets
        have been paying off in this session; else it is held for the accept (and still scored)."""
        spec = self.prefetcher.get(uri)
        if spec is None or spec.trusted:
            return
        spec.trusted = True
        if spec.sent or spec.task.done():
            return
        if not self.bets.worth_sending():
            self.stats.bump("prefetch_held")
        elif (event := self._eager.get(uri)) is not None:
            event.set()

    def _speculation_ended(self, spec: Speculation) -> None:
        if spec.trusted:
            self.bets.add(spec.hit)
        if spec.sent:
            self.stats.bump("prefetch_used" if spec.hit else "prefetch_wasted")

    async def _prefetch(self, hypo: Document, offset: int, urgent: asyncio.Event, allowed: asyncio.Event) -> None:
        # The prompt build is synchronous work on the event loop (the context engine is not thread-safe:
        # its parse trees and caches are mutated by builds and edits), so a speculation waits until the
        # document is quiet — a pause in the user's rhythm — and never delays the next keystroke's answer;
        # an accept of the guess, or a request joining it, makes it go at once. Without evidence that the user is
        # taking this completion (``allowed`` unset: not typed through), only that makes it go; it costs nothing
        # while it waits.
        try:
            if not allowed.is_set():
                waits = {asyncio.ensure_future(urgent.wait()), asyncio.ensure_future(allowed.wait())}
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
            while not urgent.is_set():
                since = self.debouncer.since_ms(hypo.uri)
                quiet = max(PREFETCH_QUIET_MIN_MS,
                            PREFETCH_QUIET_RHYTHM * (self.debouncer.rhythm_ms(hypo.uri) or 0.0))
                if since is None or since >= quiet:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(urgent.wait(), (quiet - since) / 1000)
        finally:
            if self._urgent.get(hypo.uri) is urgent:
                del self._urgent[hypo.uri]
            if self._eager.get(hypo.uri) is allowed:
                del self._eager[hypo.uri]
        spec = self.prefetcher.get(hypo.uri)
        if spec is not None and spec.task is asyncio.current_task():
            _SPECULATION.set(spec)  # this task's own context (not when the prompt cache answers: nothing is sent)
        try:
            await self._generate(hypo, offset, "prefetch", {})
        except TransportError as exc:
            log.debug("prefetch failed: %s", exc)

    async def aclose(self) -> None:
        for uri in {*self._inflight, *self._upstream, *self._idle_parse}:
            self.on_close(uri)
        await self.prefetcher.aclose()


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def cut_at_stops(raw: str, stops: tuple[str, ...]) -> str:
    """The server honours ``stop`` too; this keeps a server that ignores it from leaking sentinels."""
    for s in stops:
        cut = raw.find(s)
        if cut >= 0:
            raw = raw[:cut]
    return raw
