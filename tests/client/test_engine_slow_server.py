"""On a slow server (a CPU: the engine has measured its prefill rate) work on the wire is precious: a request
whose prompt is still a prefix of the document is not replaced at a pause nor dropped soon after the editor
cancels; one that diverged still is. Real HTTP to the scripted stand-in (exact timings)."""

from __future__ import annotations

import asyncio

import pytest
from codeassist.client.clock import FakeClock
from codeassist.client.documents import Document
from codeassist.client.engine import CompletionEngine

from tests.client.test_engine import type_text, until

CPU = {"server_prompt_n": 2000.0, "server_prompt_ms": 5000.0, "server_cache_n": 0.0}  # 400 tokens/s


def measured_slow(engine: CompletionEngine) -> None:
    engine.speeds.of(engine.transport).observe(CPU, 2000)  # as the pipeline does with an answer's timings
    assert engine.speeds.of(engine.transport).slow


@pytest.fixture
def slow(make_engine) -> CompletionEngine:
    engine = make_engine(200)
    measured_slow(engine)
    return engine


CODE = "".join(f"value_{n} = compute(value_{n - 1}, step={n})\n" for n in range(1, 60))  # ~500 tokens


async def silent_request_then(engine: CompletionEngine, standin, key: str) -> tuple[Document, int]:
    """The server has read the prompt once (every answer as slow as a CPU); a diverging key sends a second
    request (it will answer "bye"), and ``key`` is typed while that one has said nothing yet."""
    standin.behaviour.ttft_s = 0.6
    doc = Document(uri="file:///a.py", text=CODE + "greeting = ")
    off = len(doc.text)
    await engine.complete(doc, off)
    assert engine.speeds.of(engine.transport).slow
    standin.behaviour.tokens = ["bye"]
    off = type_text(engine, doc, off, "x")  # diverges from "hello world": a new request for this position
    second = asyncio.create_task(engine.complete(doc, off))
    await until(lambda: len(standin.stats.requests) == 2)
    off = type_text(engine, doc, off, key)
    await second
    return doc, off


async def typed_at_a_rhythm(engine: CompletionEngine, clock: FakeClock) -> tuple[Document, int]:
    """Six keys 120 ms apart on the engine's clock, with an adaptive debounce between 0 and 400 ms."""
    engine.debouncer.max_ms = 400
    doc = Document(uri="file:///a.py", text="x = ")
    off = 4
    for ch in "abcdef":
        await clock.advance(0.12)
        off = type_text(engine, doc, off, ch)
    return doc, off


async def test_at_a_pause_a_silent_request_still_prefilling_is_kept(slow, standin) -> None:
    """The counterpart of test_at_a_pause_a_silent_joined_request_is_replaced (a fast server)."""
    standin.behaviour.ttft_s = 0.6  # prefilling ~500 new tokens at 400/s: says nothing during the pause
    doc = Document(uri="file:///a.py", text=CODE + "greeting = ")
    off = len(doc.text)
    first = asyncio.create_task(slow.complete(doc, off))
    await until(lambda: len(standin.stats.requests) == 1)
    off = type_text(slow, doc, off, "h")
    await first
    result = await slow.complete(doc, off)  # joins; the pause comes after 200 ms; it waits on
    assert (result.text, result.source) == ("ello world", "cache")  # its answer, walked back past the "h"
    assert len(standin.stats.requests) == 1 and standin.stats.disconnected == 0
    assert slow.stats.counts["replaced"] == 0


async def test_at_a_pause_a_request_past_its_prefill_is_replaced(slow, standin) -> None:
    """Its prompt was in the server's cache: what it does now is decode an answer for a stale position."""
    doc, off = await silent_request_then(slow, standin, "y")
    third = asyncio.create_task(slow.complete(doc, off))  # ...joined, then the pause: it is past its prefill
    await until(lambda: len(standin.stats.requests) == 3)
    await until(lambda: standin.stats.disconnected == 1)
    assert slow.stats.counts["replaced"] == 1
    third.cancel()


async def test_a_diverging_keystroke_still_cancels_on_a_slow_server(slow, standin) -> None:
    standin.behaviour.ttft_s = 5
    doc = Document(uri="file:///a.py", text="x = \n")
    task = asyncio.create_task(slow.complete(doc, 4))
    await until(lambda: len(standin.stats.requests) == 1)
    doc.apply(3, 4, "")  # a backspace: its prompt is no longer the document's prefix
    slow.on_change(doc)
    assert (await task).source == "cancelled"
    await until(lambda: standin.stats.disconnected == 1, timeout=0.5)


async def test_editor_cancel_keeps_a_slow_servers_request_for_the_next_keystroke(make_engine, standin) -> None:
    clock = FakeClock()
    engine = make_engine(0, clock)
    measured_slow(engine)
    standin.behaviour.ttft_s = 30
    doc = Document(uri="file:///a.py", text="x = ")
    task = asyncio.create_task(engine.complete(doc, 4))
    await until(lambda: len(standin.stats.requests) == 1)
    type_text(engine, doc, 4, "1")  # consistent; the editor cancels its request and asks nothing more
    await task
    await clock.advance(2.0)  # a fast server's request would be gone after 0.5 s
    await asyncio.sleep(0.05)
    assert standin.stats.disconnected == 0
    await clock.advance(4.0)  # nobody came back for it
    await until(lambda: standin.stats.disconnected == 1)


async def test_no_speculation_on_a_slow_server(slow, standin) -> None:
    """Two requests at once on a CPU each take twice as long: the typed-through guess is not speculated on."""
    doc = Document(uri="file:///a.py", text="greeting = ")
    off = len(doc.text)
    first = await slow.complete(doc, off)
    assert first.text == "hello world"
    off = type_text(slow, doc, off, "hel")
    through = await slow.complete(doc, off)
    assert (through.text, through.source, through.typed) == ("lo world", "cache", 3)
    assert slow.prefetcher.get(doc.uri) is None and len(standin.stats.requests) == 1


def measured_eager(engine: CompletionEngine) -> None:
    """Slow, llama-server (its answers' ``timings``), on this machine (its ``/props`` gave a slot count)."""
    speed = engine.speeds.of(engine.transport)
    speed.observe(CPU | {"server_llama": 1.0}, 2000)
    assert not speed.eager  # llama-server somewhere (behind a gateway, a tunnel): its slots are everyone's
    speed.slots = 4
    assert speed.eager


async def test_an_eager_server_gets_the_request_after_the_last_key_without_a_debounce(make_engine, standin) -> None:
    clock = FakeClock()
    engine = make_engine(0, clock)
    measured_slow(engine)
    doc, off = await typed_at_a_rhythm(engine, clock)
    waiting = asyncio.create_task(engine.complete(doc, off))
    await asyncio.sleep(0.1)
    assert standin.stats.requests == []  # a slow server that is not llama-server: ~1.5 gaps for the next key
    off = type_text(engine, doc, off, "g")
    assert (await waiting).source == "cancelled"
    measured_eager(engine)
    task = asyncio.create_task(engine.complete(doc, off))
    await until(lambda: len(standin.stats.requests) == 1)  # the clock has not moved: no wait at all
    assert (await task).text == "hello world"


async def test_on_an_eager_server_a_joined_request_is_judged_by_its_first_token(make_engine, standin) -> None:
    """The counterpart of test_at_a_pause_a_request_past_its_prefill_is_replaced: sent one key ago, it is not
    replaced at the pause for having said nothing yet (that replaced every request at every key)."""
    eager = make_engine(200)
    measured_eager(eager)
    doc, off = await silent_request_then(eager, standin, "b")
    third = await eager.complete(doc, off)  # ...joined; past the pause it is still silent, and waited for
    assert (third.text, third.source) == ("ye", "cache")  # its answer, walked back past the "b"
    assert len(standin.stats.requests) == 2 and standin.stats.disconnected == 0
    assert eager.stats.counts["replaced"] == 0


async def test_eager_false_keeps_the_debounce_on_a_slow_llama_server(make_engine, standin) -> None:
    clock = FakeClock()
    engine = make_engine(0, clock, eager=False)
    measured_eager(engine)
    doc, off = await typed_at_a_rhythm(engine, clock)
    task = asyncio.create_task(engine.complete(doc, off))
    await asyncio.sleep(0.1)
    assert standin.stats.requests == []  # the user's config said no: ~1.5 gaps for the next key
    await clock.advance(0.4)
    await until(lambda: len(standin.stats.requests) == 1)
    assert (await task).text == "hello world"


async def test_on_llama_server_each_document_keeps_its_slot_from_the_first_request(make_engine, standin) -> None:
    """Its prompt is cached in one slot; a request that went elsewhere read it all again (see request_fields)."""
    standin.behaviour.server, standin.behaviour.slots = "llama.cpp", 4
    engine = make_engine(0)
    a, b = Document(uri="file:///a.py", text="x = "), Document(uri="file:///b.py", text="y = ")
    for doc in (a, b, a, b):
        await engine.complete(doc, len(doc.text))
        doc.apply(len(doc.text), len(doc.text), "q")  # a new position: a new request
        engine.on_change(doc)
    assert [r.get("id_slot") for r in standin.stats.requests] == [0, 1, 0, 1]


async def test_no_slot_pinning_where_the_server_is_not_llama_server(make_engine, standin) -> None:
    engine = make_engine(0)
    doc = Document(uri="file:///a.py", text="x = ")
    await engine.complete(doc, 4)
    assert "id_slot" not in standin.stats.requests[0] and engine.speeds.of(engine.transport).slots == 0
