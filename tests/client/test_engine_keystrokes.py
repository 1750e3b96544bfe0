"""What a keystroke costs the daemon: the cache's walk-back skipped when no entry can match, and the context
engine's re-parse moved to a pause in the typing."""

from __future__ import annotations

import pytest
from codeassist.client import engine as engine_mod
from codeassist.client.cache import CompletionCache, prompt_key
from codeassist.client.clock import FakeClock
from codeassist.client.config import load_config
from codeassist.client.documents import Document
from codeassist.client.engine import CompletionEngine
from codeassist.client.transport.fake import FakeTransport


def test_cache_suffix_count_follows_puts_and_evictions() -> None:
    cache = CompletionCache(max_entries=4)
    text = "def f(x):\n    return \n" * 3
    offsets = [i for i, ch in enumerate(text) if ch == "\n"]
    for off in offsets:
        cache.put_position(text, off, "pass")
        cache.put(prompt_key("m", "s", str(off)), "c")  # prompt entries hold no suffix
    sizes = cache.sizes()
    assert sizes.entries == 4 and sizes.positions == sizes.indexed == sizes.counted == 2, sizes
    assert cache.typed_through(text, offsets[0]) is None  # evicted: the count says so without a walk
    last = offsets[-1]
    hit = cache.typed_through(text, last)
    assert hit is not None and hit.text == "pass"
    typed = text[:last] + "pa" + text[last:]
    hit = cache.typed_through(typed, last + 2)
    assert hit is not None and (hit.text, hit.typed) == ("ss", 2)
    cache.put_position(text, last, "return")  # replacing an entry keeps one count for it
    sizes = cache.sizes()
    assert sizes.positions == sizes.indexed == sizes.counted == 2, sizes
    cache.clear()
    assert cache.sizes() == (0, 0, 0, 0, 0) and cache.typed_through(text, last) is None


class Context:
    def __init__(self) -> None:
        self.refreshed: list[str] = []

    def refresh(self, uri: str) -> bool:
        self.refreshed.append(uri)
        return True


async def test_reparse_waits_for_a_pause_in_the_typing(monkeypatch) -> None:
    monkeypatch.setattr(engine_mod, "IDLE_PARSE_MIN_MS", 60.0)
    ctx, clock = Context(), FakeClock()
    eng = CompletionEngine(load_config(env={}), FakeTransport(models=["m"]), context=ctx, clock=clock)  # type: ignore[arg-type]
    doc = Document(uri="file:///a.py", text="x = 1\n", language="python")
    for _ in range(6):  # typing faster than the quiet time: no parse yet
        eng.on_change(doc)
        await clock.advance(0.02)
    assert ctx.refreshed == []
    await clock.advance(0.25)
    assert ctx.refreshed == ["file:///a.py"]  # one parse, in the pause
    eng.on_change(doc)
    eng.on_close(doc.uri)  # a closed document is not parsed
    await clock.advance(0.25)
    assert ctx.refreshed == ["file:///a.py"]
    await eng.aclose()


def test_debounce_learns_where_this_user_pauses() -> None:
    from codeassist.client.debounce import Debouncer

    t = [1000.0]
    deb = Debouncer(0, 1000, clock=lambda: t[0])

    def key(gap_ms: float) -> None:
        t[0] += gap_ms / 1000
        deb.keystroke("u")

    for _ in range(3):
        key(100)
    assert deb.delay_ms("u", " ") == pytest.approx(140) and deb.delay_ms("u", "a") == pytest.approx(150)
    for i in range(40):  # after "(" this user pauses half the time; after a space or mid-word, rarely
        for ch, pause in (("(", i % 2 == 0), (" ", i % 7 == 0), ("a", False), ("\n", True)):
            deb.delay_ms("u", ch)
            key(1200 if pause else 100)
    assert deb.rhythm_ms("u") == pytest.approx(100)
    assert deb.delay_ms("u", "(") == pytest.approx(140)  # a long gap there is likely a pause: fire as before
    assert deb.delay_ms("u", " ") == pytest.approx(220)  # likely a slow key: wait longer before a request
    assert deb.delay_ms("u", "a") == pytest.approx(220)
    assert deb.delay_ms("u", "\n") == pytest.approx(110)  # always a pause there: no reason to wait
    t[0] += 0.1
    assert deb.delay_ms("u", " ") == pytest.approx(120)  # time since the last key still counts
