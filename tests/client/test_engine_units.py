"""Pure stages: debounce bounds (injected clock), cache bounds and typing-through, line mode, stats."""

from __future__ import annotations

import json

import pytest
from codeassist.client.cache import CompletionCache, position_key, prompt_key
from codeassist.client.debounce import Debouncer
from codeassist.client.latency import LatencyTracker, percentile
from codeassist.client.linemode import decide, stops_for
from codeassist.client.prefetch import Speculation
from codeassist.client.stats import SessionStats
from hypothesis import given, settings
from hypothesis import strategies as st


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, ms: float) -> None:
        self.t += ms / 1000


def typed(deb: Debouncer, clock: Clock, gaps_ms: list[float], uri: str = "u") -> None:
    for gap in gaps_ms:
        clock.advance(gap)
        deb.keystroke(uri)


@settings(max_examples=200, deadline=None)
@given(
    lo=st.floats(0, 200),
    span=st.floats(0, 800),
    gaps=st.lists(st.floats(1, 3000), min_size=0, max_size=30),
    lat=st.lists(st.floats(1, 5000), max_size=10),
    ch=st.sampled_from(["a", "x", " ", "(", "\n", ""]),
)
def test_debounce_bounds_respected(lo: float, span: float, gaps: list[float], lat: list[float], ch: str) -> None:
    clock = Clock()
    tracker = LatencyTracker()
    for v in lat:
        tracker.add(v)
    deb = Debouncer(lo, lo + span, tracker, clock)
    typed(deb, clock, gaps)
    assert lo <= deb.delay_ms("u", ch) <= lo + span


def test_debounce_follows_rhythm_and_latency() -> None:
    clock = Clock()
    tracker = LatencyTracker()
    deb = Debouncer(10, 1000, tracker, clock)
    typed(deb, clock, [400] * 10, "slow")
    slow = deb.delay_ms("slow", "a")
    typed(deb, clock, [60] * 10, "fast")
    fast = deb.delay_ms("fast", "a")
    # typing fast: wait more than one gap; typing slowly: the time since the last key already counts
    assert 60 < fast < 400
    assert slow > fast  # a slow typist's next key is further away...
    clock.advance(700)
    assert deb.delay_ms("slow", "a") == 10
    assert deb.delay_ms("fast", "a") == 10  # ...but once that long has passed it is a pause: fire at once
    typed(deb, clock, [60] * 3, "fast")
    before = deb.delay_ms("fast", "a")
    for _ in range(20):
        tracker.add(2000)
    assert deb.delay_ms("fast", "a") > before  # slow server: debounce longer
    # at a token boundary people pause: wait 1.4 rhythm gaps (fire soon after the pause begins), no latency term
    assert deb.rhythm_ms("fast") == pytest.approx(60)  # the 700 ms pause did not feed the rhythm
    assert deb.delay_ms("fast", " ") == pytest.approx(84) == deb.delay_ms("fast", "(")
    assert deb.delay_ms("fast", " ") < before
    clock.advance(45)
    assert deb.delay_ms("fast", " ") == pytest.approx(39)  # time since the last key counts
    assert deb.pause_delay_ms("fast") == 0
    clock.advance(40)
    assert deb.delay_ms("fast", " ") == 10 and deb.pause_delay_ms("fast") == pytest.approx(25)
    # a long pause is not rhythm
    deb2 = Debouncer(0, 1000, LatencyTracker(), clock)
    typed(deb2, clock, [5000, 5000], "p")
    assert deb2.delay_ms("p", "a") == 0


def test_debounce_fixed_and_invalid_bounds() -> None:
    clock = Clock()
    deb = Debouncer(10, 400, clock=clock, fixed_ms=350)
    typed(deb, clock, [50, 50])
    assert deb.delay_ms("u", " ") == 350
    with pytest.raises(ValueError):
        Debouncer(100, 50)


def test_cache_typing_through_and_divergence() -> None:
    cache = CompletionCache()
    text = "def f(x):\n    return \n"
    off = text.index("return ") + len("return ")
    cache.put_position(text, off, "x * 2 + 1")
    hit = cache.typed_through(text, off)
    assert hit is not None and (hit.text, hit.typed) == ("x * 2 + 1", 0)
    t2 = text[:off] + "x * " + text[off:]
    hit = cache.typed_through(t2, off + 4)
    assert hit is not None and (hit.text, hit.typed) == ("2 + 1", 4)
    t3 = text[:off] + "x + " + text[off:]
    assert cache.typed_through(t3, off + 4) is None  # diverged
    t4 = text[:off] + "x * 2 + 1" + text[off:]
    assert cache.typed_through(t4, off + 9) is None  # typed all of it: nothing left to show
    # the key holds content only: any editor (any URI) with the same text hits
    assert position_key(text, off) == position_key(str(text), off)


def test_cache_bounded_by_entries_and_bytes() -> None:
    cache = CompletionCache(max_entries=3, max_bytes=10_000)
    for i in range(10):
        cache.put(prompt_key("m", "s", f"p{i}"), f"c{i}")
    assert len(cache) == 3
    assert cache.get(prompt_key("m", "s", "p0")) is None and cache.get(prompt_key("m", "s", "p9")) == "c9"
    cache = CompletionCache(max_entries=1000, max_bytes=2000)
    for i in range(50):
        cache.put(prompt_key("m", "s", f"p{i}"), "x" * 300)
        assert cache.bytes <= 2000
    assert 0 < len(cache) < 10
    assert prompt_key("m1", "s", "p") != prompt_key("m2", "s", "p") != prompt_key("m1", "m", "p")


def test_speculation_consistency() -> None:
    spec = Speculation(base="a = ", guess="foo(1)", suffix="\nb", task=None)  # type: ignore[arg-type]
    assert spec.consistent("a = \nb") and spec.consistent("a = fo\nb") and spec.consistent("a = foo(1)\nb")
    assert not spec.consistent("a = fx\nb") and not spec.consistent("a = foo(1)2\nb")
    assert not spec.consistent("a = fo\nc")
    assert spec.is_target("a = foo(1)\nb", len("a = foo(1)"))
    assert not spec.is_target("a = foo(1)\nb", 3)


@pytest.mark.parametrize(
    ("marked", "lang", "multi", "reason"),
    [
        ("x = foo(|, 2)", "python", False, "mid-line"),
        ("def f(x):|", "python", True, "block-header"),
        ("def f(x):\n    |", "python", True, "block-header"),
        ("d = {'a':|", "python", False, "end-of-statement"),
        ("x = 1|", "python", False, "end-of-statement"),
        ("class A:\n    x = 1\n    |", "python", True, "blank-line"),
        ("int main() {\n  |\n}", "c", True, "block-header"),
        ("if (a) {|", "javascript", True, "block-header"),
        ("f(a|)", "python", False, "end-of-statement"),
        # a callback body opened on the cursor line (the editor auto-closed it): multi-line
        ("stream.on('data', (d) => {|})", "javascript", True, "block-header"),
        ("items.forEach(function (x) {|});", "javascript", True, "block-header"),
        ("\tgo func() {|}", "go", True, "block-header"),
        ("\tt.Run(name, func(t *testing.T) {|})", "go", True, "block-header"),
        ("v.iter().for_each(|x| {@})", "rust", True, "block-header"),
    ],
)
def test_linemode(marked: str, lang: str, multi: bool, reason: str) -> None:
    cursor = "@" if "@" in marked else "|"  # Rust closures have their own |
    i = marked.index(cursor)
    mode = decide(marked[:i] + marked[i + 1 :], i, lang)
    assert (mode.multiline, mode.reason) == (multi, reason)
    # a newline ends a single line unless the line may be the next one (nothing after the cursor)
    assert mode.next_line is (not multi and not marked[i + 1 :].strip())
    assert ("\n" in stops_for(mode, ())) is (not multi and not mode.next_line)


def test_stats_accept_partial_and_no_code_text() -> None:
    s = SessionStats()
    s.record_shown("a", 10, "model", 120.0)
    s.record_shown("b", 8, "cache", 0.4)
    assert s.record_accept("a", None) == "accepted"
    assert s.record_accept("b", 3) == "partial"
    snap = s.snapshot()
    assert snap["counts"]["accepted"] == 1 and snap["counts"]["partially_accepted"] == 1
    assert snap["counts"]["accepted_chars"] == 13 and snap["counts"]["cache_hits"] == 1
    assert snap["latency_ms"]["cache"]["p50_ms"] == 0.4
    assert set(json.dumps(snap)) <= set('{}[]":,. _-0123456789abcdefghijklmnopqrstuvwxyzlnu')


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([5, 1, 3], 50) == 3
    assert percentile(range(1, 101), 99) == 99


def test_upstream_consistency_follows_what_the_model_streamed() -> None:
    from codeassist.client.upstream import Upstream

    up = Upstream(task=None, base="x = ", suffix="\n", streamed=[])  # type: ignore[arg-type]
    assert up.consistent("x = \n") and up.consistent("x = foo\n")  # nothing streamed yet: anything typed forward
    assert not up.consistent("x =\n") and not up.consistent("x = foo\ny")  # a deletion, an edit after the cursor
    up.streamed += ["fo", "obar"]
    assert up.consistent("x = foob\n") and up.consistent("x = f\n")
    assert not up.consistent("x = fox\n")  # the model already said otherwise
    up.streamed[:] = ["    ret"]
    assert up.consistent("x =   return\n")  # leading blanks aside (the filters re-indent)
    assert not up.consistent("x = " + "a" * 200 + "\n")  # too far ahead for the cache's walk-back


def test_bet_odds_start_open_close_after_misses_and_reopen_after_hits() -> None:
    from codeassist.client.prefetch import BetOdds

    odds = BetOdds()
    assert odds.worth_sending()  # the first bets go: the prior is an even chance
    for _ in range(3):
        odds.add(False)
    assert not odds.worth_sending()
    odds.add(True)
    odds.add(True)
    assert odds.worth_sending() and 0 < odds.odds < 1


def test_stats_text_lists_the_speculation_outcomes() -> None:
    from codeassist.client.cli_stats import format_stats

    s = SessionStats()
    s.bump("prefetch_used", 3)
    s.bump("prefetch_wasted", 2)
    s.bump("prefetch_held", 5)
    text = format_stats({**s.snapshot(), "uptime_s": 1, "mode": "adaptive"})
    for name, n in (("prefetch_used", 3), ("prefetch_wasted", 2), ("prefetch_held", 5)):
        assert f"{name:>20}: {n}" in text
