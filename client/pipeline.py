"""One request's way through, shared by requests and speculations: the document's route and model, its
prompt (answered by the prompt cache when it can be), the transport, the filters, and the cache.

What comes before (debounce, joining the request on the wire, the typing-through cache) is the engine's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from codeassist.client import linemode, postprocess
from codeassist.client.cache import CompletionCache, prompt_key
from codeassist.client.documents import Document
from codeassist.client.latency import LatencyTracker
from codeassist.client.models import ModelResolver
from codeassist.client.postprocess import replace_range
from codeassist.client.prefetch import Speculation
from codeassist.client.project import Route
from codeassist.client.result import CompletionResult
from codeassist.client.server_speed import ServerSpeed, SpeedBook
from codeassist.client.stats import SessionStats
from codeassist.client.transport.base import CompletionParams, Transport, TransportError
from codeassist.context.templates import template_for
from codeassist.context.window import PromptParts

__all__ = ["FILTER_PREFIX_CHARS", "FILTER_SUFFIX_CHARS", "SINGLE_LINE_MAX_TOKENS", "Pipeline"]

log = logging.getLogger(__name__)

FILTER_PREFIX_CHARS = 4000
FILTER_SUFFIX_CHARS = 2000
SINGLE_LINE_MAX_TOKENS = 32


class Pipeline:
    def __init__(
        self,
        route: Callable[[str], Route],
        models: ModelResolver,
        build_prompt: Callable[[Document, int, str, int, int], PromptParts],
        cache: CompletionCache,
        stats: Callable[[], SessionStats],
        latency: LatencyTracker,
        speeds: SpeedBook,
    ) -> None:
        self._route = route
        self._models = models
        self._build_prompt = build_prompt
        self._cache = cache
        self._stats = stats
        self._latency = latency
        self._speeds = speeds

    async def request(
        self,
        doc: Document,
        offset: int,
        first_line: asyncio.Future[CompletionResult],
        timings: dict[str, float],
        streamed: list[str],
        priority: str = "interactive",
        progress: asyncio.Event | None = None,
    ) -> CompletionResult:
        """An interactive request's result (a failure is an empty result with its error); ``first_line`` gets a
        multi-line answer's first line as soon as it is complete; ``progress`` is set each time more complete
        lines of it are in the cache (a keystroke that joined the request can be served from there)."""
        doc = Document(uri=doc.uri, text=doc.text, language=doc.language, version=doc.version)  # a snapshot

        def early(line: str) -> None:
            if progress is not None:
                progress.set()
            if not first_line.done():
                first_line.set_result(
                    CompletionResult(
                        text=line,
                        multiline=True,  # the first line of a longer answer
                        partial=True,
                        timings=dict(timings),
                        replace_suffix_chars=replace_range.for_document(line, doc.text, offset),
                    )
                )

        try:
            completion, multiline, source = await self.generate(
                doc, offset, priority, timings, streamed, first_line=early
            )
        except TransportError as exc:
            log.warning("completion failed: %s", exc)
            return CompletionResult(text="", source="none", error=f"{exc.kind}: {exc}", timings=timings)
        except asyncio.CancelledError:
            self._stats().bump("upstream_cancelled")
            raise
        return CompletionResult(
            text=completion,
            source=source if completion else "none",
            multiline=multiline,
            timings=timings,
            replace_suffix_chars=replace_range.for_document(completion, doc.text, offset),
        )

    async def generate(
        self,
        doc: Document,
        offset: int,
        priority: str,
        timings: dict[str, float],
        streamed: list[str] | None = None,
        spec: Speculation | None = None,
        first_line: Callable[[str], None] | None = None,
    ) -> tuple[str, bool, str]:
        """Prompt -> (prompt cache | model) -> filters -> cache. Shared by requests and speculations.

        ``first_line``: called with a multi-line answer's complete lines (filtered, and cached at this position) each
        time a line is complete, while the rest streams on: whoever waits can show them at once."""
        t0 = time.perf_counter()
        text = doc.text
        route = self._route(doc.uri)
        cfg = route.config
        model, family = await self._models.resolve(route)
        speed = self._speeds.of(route.transport)
        if speed.slots is None:  # asked once per server (again if stale): llama-server on this machine?
            speed.slots = await route.transport.slots()
            speed.llama = speed.llama or bool(speed.slots)
        mode = linemode.decide(text, offset, doc.language)
        budget, _ = speed.budget(cfg.budget)
        parts = self._build_prompt(doc, offset, family, budget, speed.region_lines())
        template = template_for(family)
        max_tokens = (
            cfg.max_tokens if mode.multiline else speed.single_line_tokens(min(cfg.max_tokens, SINGLE_LINE_MAX_TOKENS))
        )
        key = prompt_key(model, f"{'m' if mode.multiline else 's'}{max_tokens}", parts.prompt)
        cached = self._cache.get(key)
        timings["context_ms"] = _ms(t0)
        if cached is not None:
            self._cache.put_position(text, offset, cached)
            return cached, mode.multiline, "cache"
        params = CompletionParams(
            prompt=parts.prompt,
            model=model,
            max_tokens=max_tokens,
            temperature=cfg.temperature,
            stop=linemode.stops_for(mode, template.stop),
            priority=priority,
            extra=speed.request_fields(mode.multiline, doc.uri),
        )
        ctx = postprocess.FilterContext(
            prefix=text[max(0, offset - FILTER_PREFIX_CHARS) : offset],
            suffix=text[offset : offset + FILTER_SUFFIX_CHARS],
            multiline=mode.multiline,
            language=doc.language,
            scaffold=parts.header,
        )
        source = "prefetch" if priority == "prefetch" else "model"
        early: Callable[[str], None] | None = None
        if first_line is not None and (mode.multiline or mode.next_line):
            callback = first_line

            def early(raw: str) -> None:
                lines = postprocess.run(linemode.cut_at_stops(raw, params.stop), ctx)
                if lines:
                    timings.setdefault("first_line_ms", _ms(t0))
                    self._cache.put_position(text, offset, lines, source)
                    callback(lines)

        raw = await self._fetch(
            params, timings, streamed, route.transport, spec, speed, parts.tokens, early, one_line=mode.next_line
        )
        completion = postprocess.run(linemode.cut_at_stops(raw, params.stop), ctx)
        if completion:
            self._cache.put(key, completion, source)
            self._cache.put_position(text, offset, completion, source)
        return completion, mode.multiline, "model"

    async def _fetch(
        self,
        params: CompletionParams,
        timings: dict[str, float],
        streamed: list[str] | None,
        transport: Transport,
        spec: Speculation | None,
        speed: ServerSpeed,
        prompt_tokens: int,
        early: Callable[[str], None] | None = None,
        one_line: bool = False,
    ) -> str:
        t_send = time.perf_counter()
        # Until then the server is still reading the prompt (work a later prompt sharing its start reuses)
        uncached = speed.uncached(params.prompt, prompt_tokens)
        timings["prefill_until"] = t_send + speed.expect_prefill_ms(uncached) / 1000
        log.debug(
            "%s request sent: ~%d prompt tokens, ~%.0f not shared with the last ones sent",
            params.priority,
            prompt_tokens,
            uncached,
        )
        if spec is not None:
            spec.sent = True  # its request really goes out (the prompt cache did not answer it)
        self._stats().bump("upstream_requests")
        if params.priority == "prefetch":
            self._stats().bump("prefetch_requests")
        pieces: list[str] = [] if streamed is None else streamed  # what has arrived so far, for on_change
        wire: dict[str, float] = {}  # the transport's own timings, and what the server says of its work
        try:
            async with contextlib.aclosing(transport.stream(params, wire)) as chunks:  # a break closes it at once
                async for chunk in chunks:
                    if "ttft_ms" not in timings:
                        timings["ttft_ms"] = _ms(t_send)
                    pieces.append(chunk.text)
                    if "\n" not in chunk.text:
                        continue
                    raw = "".join(pieces)
                    if one_line and _next_line_done(raw):
                        break  # the next line is complete: closing the stream ends the server's work on it
                    if early is not None and (lines := _complete_lines(raw)) is not None:
                        timings["model_ms"] = _ms(t_send)  # what the shown lines took (the whole answer's, below)
                        early(lines)
        except TransportError as exc:
            if exc.kind == "first_token_timeout":
                speed.timed_out(prompt_tokens, _ms(t_send) / 1000)
            if exc.kind in ("first_token_timeout", "connect"):
                speed.reset_slots()  # a server restarted (maybe with fewer slots), or another one answers next
            raise
        except asyncio.CancelledError:
            # What the server showed of its speed before a key (or the document's close) cancelled it still counts:
            # an answer shown at its first line is often cancelled before its end
            if "ttft_ms" in timings:
                speed.observe(timings | _server_said(wire), prompt_tokens, uncached)
            raise
        finally:
            if wire.get("slots_stale"):
                speed.reset_slots()
        timings["model_ms"] = _ms(t_send)
        timings.update(_server_said(wire))
        speed.observe(timings, prompt_tokens, uncached)
        log.debug(
            "%s request: ~%d prompt tokens (server: %s new, %s cached), first token %.0f ms, all %.0f ms",
            params.priority,
            prompt_tokens,
            timings.get("server_prompt_n", "?"),
            timings.get("server_cache_n", "?"),
            timings.get("ttft_ms", -1.0),
            timings["model_ms"],
        )
        self._latency.add(timings["model_ms"])
        self._stats().latency["model"].add(timings["model_ms"])
        return "".join(pieces)


def _server_said(wire: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in wire.items() if k.startswith("server_")}


def _complete_lines(raw: str) -> str | None:
    """The answer's complete lines once its first is (code, then a newline after it), else None."""
    start = len(raw) - len(raw.lstrip())
    end = raw.rfind("\n")
    return raw[:end] if start < end else None


def _next_line_done(raw: str) -> bool:
    """An answer at a line end is complete with the line after its first newline: the rest of the cursor's line
    (often nothing), then the next line. Typing through the rest then finds the next line in the cache."""
    nl = raw.find("\n")
    if nl < 0:
        return False
    body = raw[nl + 1 :]
    start = len(body) - len(body.lstrip())
    return start < len(body) and "\n" in body[start:]


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000
