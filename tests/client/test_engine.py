"""The engine over the real HTTP transport against the scripted stand-in: cancellation reaches the
server, typing-through sends nothing, prefetch runs at low priority and dies on divergence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from codeassist.client.clock import FakeClock
from codeassist.client.documents import Document
from codeassist.client.engine import CompletionEngine
from codeassist.client.result import CompletionResult


async def until(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.fixture
def engine(make_engine) -> CompletionEngine:
    return make_engine()


@pytest.fixture
def timed(make_engine) -> tuple[CompletionEngine, FakeClock]:
    """An engine whose waits (debounce, pauses, timers) run on a clock the test advances."""
    clock = FakeClock()
    return make_engine(clock=clock), clock


def sent(engine: CompletionEngine) -> int:
    """Requests the engine handed to the transport (counted before any byte goes out)."""
    return engine.stats.counts["upstream_requests"]


async def on_the_wire(engine: CompletionEngine, standin, doc: Document) -> asyncio.Task[CompletionResult]:
    """A request at the end of ``doc``, once the stand-in has received it."""
    sent = len(standin.stats.requests)
    task = asyncio.create_task(engine.complete(doc, len(doc.text)))
    await until(lambda: len(standin.stats.requests) == sent + 1)
    return task


def type_text(engine: CompletionEngine, doc: Document, offset: int, s: str) -> int:
    for ch in s:
        doc.apply(offset, offset, ch)
        offset += 1
        engine.on_change(doc)
    return offset


async def test_divergent_keystroke_cancels_in_flight_and_closes_upstream(engine, standin) -> None:
    standin.behaviour.ttft_s = 5
    doc = Document(uri="file:///a.py", text="x = \n")
    task = asyncio.create_task(engine.complete(doc, 4))
    await until(lambda: len(standin.stats.requests) == 1)
    doc.apply(3, 4, "")  # a backspace: the request's prompt is no longer the document's prefix
    engine.on_change(doc)
    result = await task
    assert result.source == "cancelled" and result.text == ""
    await until(lambda: standin.stats.disconnected == 1, timeout=0.3)  # at once, not after the join grace
    assert engine.stats.counts["cancelled"] == 1 and engine.stats.counts["upstream_cancelled"] == 1


async def test_typing_forward_joins_the_request_on_the_wire(make_engine, standin) -> None:
    engine = make_engine(600)  # the user is typing: no pause for 600 ms after a key
    standin.behaviour.ttft_s = 0.4
    doc = Document(uri="file:///a.py", text="greeting = \nprint(greeting)\n")
    off = len("greeting = ")
    first = asyncio.create_task(engine.complete(doc, off))
    await until(lambda: len(standin.stats.requests) == 1)
    off = type_text(engine, doc, off, "h")  # consistent with the request: it stays on the wire
    assert (await first).source == "cancelled"  # the stale position's answer is dropped, not the request
    second = asyncio.create_task(engine.complete(doc, off))
    await asyncio.sleep(0.05)
    off = type_text(engine, doc, off, "e")
    assert (await second).source == "cancelled"
    result = await engine.complete(doc, off)
    assert (result.text, result.source) == ("llo world", "cache")  # re-keyed by position: typed-through
    interactive = [r for r in standin.stats.requests if r["priority"] == standin.stats.requests[0]["priority"]]
    assert len(interactive) == 1 and standin.stats.disconnected == 0
    assert engine.stats.counts["joined"] == 2


async def test_at_a_pause_a_silent_joined_request_is_replaced(make_engine, standin) -> None:
    engine = make_engine(200)
    standin.behaviour.ttft_s = 5  # says nothing for a long time
    doc = Document(uri="file:///a.py", text="greeting = ")
    first = await on_the_wire(engine, standin, doc)
    off = type_text(engine, doc, len(doc.text), "h")
    await first
    second = asyncio.create_task(engine.complete(doc, off))  # joins, then the pause comes (200 ms)
    await until(lambda: len(standin.stats.requests) == 2)
    assert standin.stats.requests[1]["prompt"].endswith("greeting = h")
    await until(lambda: standin.stats.disconnected == 1)
    assert engine.stats.counts["replaced"] == 1
    second.cancel()


async def test_at_a_pause_a_joined_request_that_agrees_so_far_is_kept(make_engine, standin) -> None:
    engine = make_engine(200)
    standin.behaviour.gap_s = 0.6  # "hello" at once, " world" 600 ms later
    doc = Document(uri="file:///a.py", text="greeting = ")
    first = await on_the_wire(engine, standin, doc)
    off = type_text(engine, doc, len(doc.text), "he")
    await first
    result = await engine.complete(doc, off)  # the pause comes, but the stream agrees with "he"
    assert (result.text, result.source) == ("llo world", "cache")
    assert len(standin.stats.requests) == 1 and engine.stats.counts["replaced"] == 0


async def test_joined_request_that_diverges_sends_a_new_one(engine, standin) -> None:
    standin.behaviour.ttft_s = 0.3
    doc = Document(uri="file:///a.py", text="greeting = ")
    first = await on_the_wire(engine, standin, doc)
    off = type_text(engine, doc, len(doc.text), "x")  # the model will say "hello world": not what the user typed
    await first
    standin.behaviour.tokens = ["yz"]
    result = await engine.complete(doc, off)
    assert result.text == "yz" and result.source == "model"
    assert standin.stats.requests[-1]["prompt"].endswith("greeting = x")


async def test_fixed_mode_cancels_on_every_keystroke(make_engine, standin) -> None:
    eng = make_engine(debounce_fixed_ms=0, engine_mode="fixed")
    standin.behaviour.ttft_s = 5
    doc = Document(uri="file:///a.py", text="x = ")
    task = asyncio.create_task(eng.complete(doc, 4))
    await until(lambda: len(standin.stats.requests) == 1)
    type_text(eng, doc, 4, "1")
    assert (await task).source == "cancelled"
    await until(lambda: standin.stats.disconnected == 1, timeout=0.3)


async def test_editor_cancel_without_a_new_request_closes_upstream_after_grace(engine, standin) -> None:
    standin.behaviour.ttft_s = 5
    doc = Document(uri="file:///a.py", text="x = ")
    task = asyncio.create_task(engine.complete(doc, 4))
    await until(lambda: len(standin.stats.requests) == 1)
    type_text(engine, doc, 4, "1")  # consistent: kept for a request that may join it...
    await task
    await asyncio.sleep(0.2)
    assert standin.stats.disconnected == 0
    await until(lambda: standin.stats.disconnected == 1, timeout=2)  # ...but nobody did


async def test_editor_cancel_closes_upstream(engine, standin) -> None:
    standin.behaviour.ttft_s = 5
    doc = Document(uri="file:///a.py", text="x = ")
    task = asyncio.create_task(engine.complete(doc, 4))
    await until(lambda: len(standin.stats.requests) == 1)
    task.cancel()  # what the daemon does on `cancel` (LSP $/cancelRequest)
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: standin.stats.disconnected == 1)


async def test_keystroke_during_debounce_sends_nothing(make_engine, standin) -> None:
    eng = make_engine(300)
    doc = Document(uri="file:///a.py", text="x = ")
    task = asyncio.create_task(eng.complete(doc, 4))
    await asyncio.sleep(0.1)
    type_text(eng, doc, 4, "1")
    assert (await task).source == "cancelled"
    t0 = time.perf_counter()
    result = await eng.complete(doc, 5)
    assert result.text == "hello world"
    assert (time.perf_counter() - t0) * 1000 >= 300 and result.timings["debounce_ms"] >= 300
    assert len(standin.stats.requests) == 1  # the debounced-away request never went out


def trust(engine: CompletionEngine, uri: str) -> None:
    """As if the user were typing through every shown completion: speculations may go at a pause."""
    engine.trust_typed = 0


async def test_typing_through_served_from_cache_without_request(engine, standin) -> None:
    doc = Document(uri="file:///a.py", text="greeting = \nprint(greeting)\n")
    off = len("greeting = ")
    first = await engine.complete(doc, off)
    assert (first.text, first.source) == ("hello world", "model")
    await asyncio.sleep(0.3)
    sent = len(standin.stats.requests)
    assert sent == 1  # nothing taken yet in this document: the speculation waits for an accept, unsent
    off = type_text(engine, doc, off, "hel")
    t0 = time.perf_counter()
    hit = await engine.complete(doc, off)
    assert (hit.text, hit.source) == ("lo world", "cache")
    assert (time.perf_counter() - t0) * 1000 < 50
    assert len(standin.stats.requests) == sent
    assert engine.stats.counts["typed_through"] == 1


async def test_prefetch_low_priority_cancelled_on_divergence(engine, standin) -> None:
    doc = Document(uri="file:///a.py", text="greeting = ")
    off = len(doc.text)
    trust(engine, doc.uri)
    first = await engine.complete(doc, off)
    assert first.text == "hello world"
    standin.behaviour.ttft_s = 5  # the speculative request will hang until cancelled
    await until(lambda: len(standin.stats.requests) == 2)
    spec_req, spec_headers = standin.stats.requests[1], standin.stats.headers[1]
    assert spec_headers["x-priority"] == "prefetch" and spec_req["priority"] > standin.stats.requests[0]["priority"]
    assert spec_req["prompt"].endswith("greeting = hello world")  # as if the completion were accepted
    off = type_text(engine, doc, off, "hel")  # consistent with the hypothesis: it lives on
    await asyncio.sleep(0.2)
    assert standin.stats.disconnected == 0 and engine.prefetcher.in_flight(doc.uri)
    type_text(engine, doc, off, "p")  # diverges
    await until(lambda: standin.stats.disconnected == 1)
    assert not engine.prefetcher.in_flight(doc.uri)
    assert engine.stats.counts["prefetch_cancelled"] == 1


async def test_accepting_joins_the_prefetch_and_one_speculation_per_document(engine, standin) -> None:
    doc = Document(uri="file:///a.py", text="greeting = ")
    off = len(doc.text)
    trust(engine, doc.uri)
    await engine.complete(doc, off)
    standin.behaviour.ttft_s = 0.3
    standin.behaviour.tokens = [" again", "\n"]
    await until(lambda: len(standin.stats.requests) == 2)
    off = type_text(engine, doc, off, "hello world")  # accept
    result = await engine.complete(doc, off)
    assert (result.text, result.source) == (" again", "prefetch")
    interactive = [r for r in standin.stats.requests if r["priority"] == standin.stats.requests[0]["priority"]]
    assert len(interactive) == 1  # accepting and continuing cost no interactive request


async def test_at_most_one_speculation_per_document(engine, standin) -> None:
    doc = Document(uri="file:///a.py", text="a = \nb = \n")
    trust(engine, doc.uri)
    await engine.complete(doc, 4)
    standin.behaviour.ttft_s = 5
    await until(lambda: len(standin.stats.requests) == 2 and engine.prefetcher.in_flight(doc.uri))
    engine.cache.put_position(doc.text, 10, "2")  # known there already (shown earlier, say)
    assert (await engine.complete(doc, 10)).text == "2"  # the cursor moved: a completion shown elsewhere
    await until(lambda: standin.stats.disconnected == 1)  # the first speculation was cancelled...
    await until(lambda: len(standin.stats.requests) == 3)  # ...and replaced by one for the new position
    await asyncio.sleep(0.1)
    prefetches = [r for r in standin.stats.requests if r["priority"] == standin.stats.requests[1]["priority"]]
    assert len(prefetches) - standin.stats.disconnected == 1
    assert engine.prefetcher.in_flight(doc.uri)


async def test_line_mode_sets_stops_and_max_tokens(engine, standin) -> None:
    await engine.complete(Document(uri="file:///b.py", text="x = foo(, 2)\n", language="python"), 8)
    single = standin.stats.requests[0]
    assert "\n" in single["stop"] and single["max_tokens"] <= 32
    await engine.complete(Document(uri="file:///c.py", text="def f(x):\n    ", language="python"), 14)
    multi = next(r for r in standin.stats.requests if r["prompt"].endswith("def f(x):\n    "))
    assert "\n" not in multi["stop"] and multi["max_tokens"] == engine.config.max_tokens


async def test_at_a_finished_line_the_next_line_comes_and_the_stream_closes_after_it(engine, standin) -> None:
    # nothing after the cursor: no newline stop, the answer may start on the next line (Copilot shows it there)
    standin.behaviour.tokens = ["\n", "    return x", "\n", "    print(x)\n", "    print(y)\n"]
    standin.behaviour.gap_s = 0.3
    doc = Document(uri="file:///n.py", text="def f(x):\n    x = x * 2", language="python")
    t0 = time.perf_counter()
    result = await engine.complete(doc, len(doc.text))
    assert result.text == "\n    return x" and time.perf_counter() - t0 < 1.2  # not after the whole answer
    assert "\n" not in standin.stats.requests[0]["stop"]
    await until(lambda: standin.stats.disconnected == 1)  # the rest of the answer is not waited for


async def test_at_a_line_end_the_rest_of_the_line_shows_first_and_the_next_line_waits_in_the_cache(
    engine, standin
) -> None:
    standin.behaviour.tokens = ["(x)", "\n", "    return y", "\n", "    print(x)\n"]
    standin.behaviour.gap_s = 0.3
    doc = Document(uri="file:///n.py", text="def f(x):\n    y = g", language="python")
    t0 = time.perf_counter()
    first = await engine.complete(doc, len(doc.text))
    assert first.text == "(x)" and first.partial and time.perf_counter() - t0 < 0.6  # shown when its line is done
    off = type_text(engine, doc, len(doc.text), "(x)")  # the user types through it: the next line is cached
    rest = await engine.complete(doc, off)
    assert rest.text == "\n    return y" and rest.source == "cache"
    assert len(standin.stats.requests) == 1
    await until(lambda: standin.stats.disconnected == 1)  # closed after the next line, not at the answer's end


async def test_closing_the_document_cancels_its_request(engine, standin) -> None:
    from types import SimpleNamespace

    from codeassist.client.daemon import Daemon

    daemon = Daemon(engine.config, engine=engine)
    conn = SimpleNamespace(id=1)
    standin.behaviour.ttft_s = 5
    handle = daemon.handlers  # what the socket dispatches to
    await handle["doc/open"](conn, {"uri": "file:///z.py", "text": "x = ", "language": "python"})  # type: ignore[arg-type]
    task = asyncio.create_task(handle["complete"](conn, {"uri": "file:///z.py", "offset": 4}))  # type: ignore[arg-type]
    await until(lambda: len(standin.stats.requests) == 1)
    await handle["doc/close"](conn, {"uri": "file:///z.py"})  # type: ignore[arg-type]
    assert (await task)["source"] == "cancelled"
    await until(lambda: standin.stats.disconnected == 1, timeout=0.3)
    daemon.context.close()


async def test_untaken_suggestion_speculates_only_once_typed_through(timed, standin) -> None:
    engine, clock = timed
    doc = Document(uri="file:///a.py", text="greeting = ")
    off = len(doc.text)
    assert (await engine.complete(doc, off)).text == "hello world"
    await clock.advance(0.4)  # a pause, but nothing was ever taken here: no speculative request
    assert sent(engine) == 1
    off = type_text(engine, doc, off, "h")
    assert (await engine.complete(doc, off)).typed == 1
    await clock.advance(0.4)
    assert sent(engine) == 1  # one typed character is no evidence
    off = type_text(engine, doc, off, "e")
    hit = await engine.complete(doc, off)
    assert (hit.text, hit.typed) == ("llo world", 2)
    await clock.advance(1.5)  # typing through it: the speculation goes at a pause (2.5 of this user's 0.4 s gaps)
    await until(lambda: len(standin.stats.requests) == 2)
    assert standin.stats.headers[1]["x-priority"] == "prefetch"
    assert standin.stats.requests[1]["prompt"].endswith("greeting = hello world")


async def test_no_speculation_on_the_rest_of_a_partly_accepted_completion(timed, standin) -> None:
    engine, clock = timed
    doc = Document(uri="file:///a.py", text="greeting = ")
    off = len(doc.text)
    shown = await engine.complete(doc, off)
    assert shown.text == "hello world"
    doc.apply(off, off, "hello")  # accept-word: the editor inserts "hello" and reports 5 characters taken
    engine.on_change(doc)
    assert engine.accept(shown.id, 5) == "partial"
    off += 5
    rest = await engine.complete(doc, off)
    assert (rest.text, rest.typed, rest.source) == (" world", 5, "cache")
    await clock.advance(0.4)  # a pause: still no bet on " world" being taken as well
    assert sent(engine) == 1
    assert engine.accept(rest.id, None) == "accepted"  # ...until it is
    await until(lambda: len(standin.stats.requests) == 2)
    assert standin.stats.headers[1]["x-priority"] == "prefetch"


async def test_speculation_waits_for_a_pause_before_building(timed, standin) -> None:
    engine, clock = timed
    if True:
        doc = Document(uri="file:///a.py", text="greeting = ")
        off = len(doc.text)
        for ch in "ab":  # a rhythm of 40 ms between keys (on the engine's clock)
            await clock.advance(0.04)
            off = type_text(engine, doc, off, ch)
        standin.behaviour.tokens = ["cdefghijklmnop"]
        first = await engine.complete(doc, off)
        assert first.text == "cdefghijklmnop"
        built: list[int] = []
        real = engine.build_prompt
        engine.build_prompt = lambda d, o, f, b=None, r=1: (built.append(o), real(d, o, f, b, r))[1]  # type: ignore[method-assign]
        for ch in "cdefgh":  # typing through the suggestion: consistent, so the speculation lives on...
            await clock.advance(0.04)
            off = type_text(engine, doc, off, ch)
            assert (await engine.complete(doc, off)).source == "cache"
        await clock.advance(0.08)  # 80 ms after the last key: less than 2.5 gaps
        assert built == [] and sent(engine) == 1  # ...but it builds nothing while keys come
        await clock.advance(0.03)  # 110 ms: a pause
        await until(lambda: len(standin.stats.requests) == 2)
        assert standin.stats.headers[1]["x-priority"] == "prefetch" and len(built) == 1


async def test_accept_sends_the_speculation_without_waiting_for_a_pause(engine, standin) -> None:
    doc = Document(uri="file:///a.py", text="greeting = ")
    off = len(doc.text)
    for ch in "ab":  # a slow rhythm (300 ms): the speculation would wait 2.5 gaps for a pause
        await asyncio.sleep(0.3)
        off = type_text(engine, doc, off, ch)
    shown = await engine.complete(doc, off)
    assert shown.text == "hello world" and len(standin.stats.requests) == 1
    doc.apply(off, off, shown.text)  # Tab: the editor inserts it and runs the item's accept command
    engine.on_change(doc)
    assert engine.accept(shown.id, None) == "accepted"
    t0 = time.perf_counter()
    await until(lambda: len(standin.stats.requests) == 2, timeout=0.5)
    assert standin.stats.headers[1]["x-priority"] == "prefetch" and time.perf_counter() - t0 < 0.4


async def test_keystroke_contradicting_the_streamed_output_cancels_at_once(engine, standin) -> None:
    standin.behaviour.gap_s = 2  # "hello" at once, then a long wait before " world"
    doc = Document(uri="file:///a.py", text="greeting = ")
    off = len(doc.text)
    task = asyncio.create_task(engine.complete(doc, off))

    def streamed() -> str:
        ds = engine.session(doc.uri)
        return "".join(ds.upstream.streamed) if ds is not None and ds.upstream is not None else ""

    await until(lambda: streamed() == "hello")
    off = type_text(engine, doc, off, "he")  # agrees with the stream: kept
    await task
    joined = asyncio.create_task(engine.complete(doc, off))
    await asyncio.sleep(0.1)
    assert standin.stats.disconnected == 0 and not joined.done()
    type_text(engine, doc, off, "x")  # "hex..." can no longer be what the model writes
    assert (await joined).source == "cancelled"
    await until(lambda: standin.stats.disconnected == 1, timeout=0.3)


async def test_speculation_is_held_once_bets_stop_paying_and_still_goes_on_accept(timed, standin) -> None:
    """Typed-through guesses that keep being abandoned: after three wasted speculative requests the next
    bet waits for the accept (and the odds keep learning from the held ones)."""
    engine, clock = timed
    trust(engine, "")
    doc = Document(uri="file:///a.py", text="")
    off = 0
    for n in range(3):
        off = type_text(engine, doc, off, f"\nv{n} = ")
        await engine.complete(doc, off)  # "hello world" shown; the user is taken to type through it
        await clock.advance(0.4)
        await until(lambda n=n: len(standin.stats.requests) == 2 * (n + 1))  # the bet went at the pause
        off = type_text(engine, doc, off, "x")  # ...and was abandoned
    await asyncio.sleep(0.1)
    assert engine.stats.counts["prefetch_wasted"] == 3 and not engine.bets.worth_sending()
    off = type_text(engine, doc, off, "\nw = ")
    shown = await engine.complete(doc, off)
    await clock.advance(0.4)  # a pause: the bet is held
    assert sent(engine) == 7 and engine.stats.counts["prefetch_held"] == 1
    doc.apply(off, off, shown.text)
    engine.on_change(doc)
    engine.accept(shown.id, None)  # the guess came true: the held speculation goes now
    await until(lambda: len(standin.stats.requests) == 8)
    assert standin.stats.headers[7]["x-priority"] == "prefetch"
    type_text(engine, doc, off + len(shown.text), "\n")  # past the hypothesis: its bet is scored a hit
    assert engine.bets.hits == 1 and engine.bets.bets == 4
    assert engine.stats.counts["prefetch_used"] == 1


async def test_late_accept_of_an_older_suggestion_leaves_the_newer_speculation_alone(timed, standin) -> None:
    engine, clock = timed
    doc = Document(uri="file:///a.py", text="a = \nb = \n")
    older = await engine.complete(doc, 4)
    newer = await engine.complete(doc, 10)  # the cursor moved on: a suggestion there, its own speculation
    assert older.text and newer.text and len(standin.stats.requests) == 2
    spec = engine.prefetcher.get(doc.uri)
    assert spec is not None and spec.target_offset == 10 + len(newer.text)
    assert engine.accept(older.id, None) == "accepted"  # arrives late, for the first suggestion
    await clock.advance(0.3)
    assert not spec.hit and sent(engine) == 2  # neither scored nor rushed out


async def test_speculation_answered_by_the_prompt_cache_is_not_counted_as_sent(engine, standin) -> None:
    doc = Document(uri="file:///a.py", text="x = ")
    shown = await engine.complete(doc, 4)
    hypo = Document(uri="file:///b.py", text="x = " + shown.text)
    await engine.complete(hypo, len(hypo.text))  # the hypothesis's prompt is now in the prompt cache
    sent_before = len(standin.stats.requests)
    doc.apply(4, 4, shown.text)
    engine.on_change(doc)
    engine.accept(shown.id, None)  # the speculation goes at once... and is answered by the prompt cache
    await until(lambda: not engine.prefetcher.in_flight(doc.uri))
    type_text(engine, doc, len(doc.text), "\n")  # past the hypothesis: the speculation ends
    assert len(standin.stats.requests) == sent_before
    assert engine.stats.counts["prefetch_used"] == 0 and engine.stats.counts["prefetch_wasted"] == 0


async def test_typing_the_whole_guess_scores_the_bet_a_hit_without_an_accept(engine, standin) -> None:
    trust(engine, "")
    doc = Document(uri="file:///a.py", text="greeting = ")
    off = len(doc.text)
    shown = await engine.complete(doc, off)
    off = type_text(engine, doc, off, shown.text)  # typed to its end, no accept, no request at the target
    type_text(engine, doc, off, "\n")  # past it: the speculation ends and is scored
    assert (engine.bets.hits, engine.bets.bets) == (1, 1)


# -- a multi-line answer shown as soon as its first line is complete; the rest streams into the cache --
async def test_first_line_is_shown_before_the_rest_arrives(engine, standin) -> None:
    standin.behaviour.tokens = ["    total = 0\n", "    return total\n"]
    standin.behaviour.gap_s = 0.8  # the second line comes 0.8 s after the first
    doc = Document(uri="file:///a.py", text="def f():\n", language="python")
    off = len(doc.text)
    t0 = time.perf_counter()
    first = await engine.complete(doc, off)
    assert time.perf_counter() - t0 < 0.7  # not after the whole answer
    assert first.partial and first.multiline and first.text.strip() == "total = 0"
    assert engine.stats.counts["shown"] == 1
    # The user takes the line; the editor asks again at once: the rest comes from the same request.
    off = type_text(engine, doc, off, first.text)
    rest = await engine.complete(doc, off)
    assert rest.text.strip() == "return total" and not rest.partial
    assert len(standin.stats.requests) == 1 and standin.stats.disconnected == 0


async def test_an_answer_cancelled_after_its_first_line_still_teaches_the_servers_speed(engine, standin) -> None:
    # `codeassist doctor` closes its probe's document once the first line is shown: that cancels the stream
    standin.behaviour.tokens = ["    total = 0\n", "    return total\n"]
    standin.behaviour.gap_s = 0.8
    doc = Document(uri="file:///a.py", text="def f():\n" * 40, language="python")  # ~100 tokens: a sample
    first = await engine.complete(doc, len(doc.text))
    assert first.partial
    engine.on_close(doc.uri)
    await until(lambda: standin.stats.disconnected == 1)
    speed = engine.speeds.of(engine.transport)
    assert speed.ttft_ms is not None and speed.prefill_tps is not None  # what the first token said


async def test_a_keystroke_that_joined_the_request_gets_each_line_as_it_completes(engine, standin) -> None:
    standin.behaviour.tokens = ["    a = 1\n", "    b = 2\n", "    c = 3\n"]
    standin.behaviour.gap_s = 0.5  # a line every 0.5 s
    doc = Document(uri="file:///a.py", text="def f():\n", language="python")
    first = await engine.complete(doc, len(doc.text))
    assert first.partial and first.text.strip() == "a = 1"
    off = type_text(engine, doc, len(doc.text), first.text + "\n")  # typed past what was shown
    t0 = time.perf_counter()
    second = await engine.complete(doc, off)  # joins the request on the wire
    # served as soon as the next line is complete, not when the whole answer is
    assert second.text.strip() == "b = 2" and time.perf_counter() - t0 < 0.8
    assert second.partial and len(standin.stats.requests) == 1


async def test_a_one_line_answer_is_not_split(engine, standin) -> None:
    standin.behaviour.tokens = ["    return 1"]
    doc = Document(uri="file:///a.py", text="def f():\n", language="python")
    result = await engine.complete(doc, len(doc.text))
    assert result.text.strip() == "return 1" and not result.partial
    await until(lambda: len(standin.stats.requests) == 1)
