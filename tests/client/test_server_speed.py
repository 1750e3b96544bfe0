"""The server's measured cost -> the prompt budget, the answer length, and whether its work is precious."""

from __future__ import annotations

from codeassist.client.server_speed import BUDGET_STEPS, ServerSpeed, SpeedBook


def llama(prompt_n: int, prompt_ms: float, cache_n: int = 0, predicted_n: int = 0, predicted_ms: float = 0) -> dict:
    """What the transport copies out of llama-server's ``timings``."""
    return {
        "server_prompt_n": prompt_n,
        "server_prompt_ms": prompt_ms,
        "server_cache_n": cache_n,
        "server_predicted_n": predicted_n,
        "server_predicted_ms": predicted_ms,
    }


def test_unknown_server_gets_a_first_prompt_a_cpu_reads_within_the_first_token_timeout() -> None:
    speed = ServerSpeed()
    budget, why = speed.budget(2048)
    assert budget == 192 and "not known" in why and not speed.slow and speed.region_lines() > 1


def test_expected_prefill_counts_only_what_no_recent_prompt_shares() -> None:
    speed = ServerSpeed()
    assert speed.expect_prefill_ms(speed.uncached("a" * 4000, 1000)) == 4000.0  # unknown: a 2-core CPU's pace
    speed.observe(llama(2000, 5000.0), 2000)  # 400 tokens/s
    cold = speed.expect_prefill_ms(speed.uncached("b" * 4000, 1000))
    warm = speed.expect_prefill_ms(speed.uncached("b" * 4000 + "c" * 40, 1010))
    assert cold == 2500.0 and warm < 40


def test_timed_from_outside_a_cached_prompt_does_not_make_a_slow_server_look_fast() -> None:
    """vLLM without cached-token counts: its cache answers a shared prompt at once (measured on its CPU build)."""
    speed = ServerSpeed()
    prompt = "x" * 8000
    speed.observe({"ttft_ms": 5000.0}, 2000, speed.uncached(prompt, 2000))  # cold: 400 tokens/s
    for _ in range(10):  # typing on: each prompt shares all but a few characters with the last
        prompt += "y"
        speed.observe({"ttft_ms": 60.0}, 2000, speed.uncached(prompt, 2000))
    assert speed.slow and speed.prefill_tps == 400


def test_cpu_server_gets_a_budget_its_prefill_rate_fits_in_a_pause() -> None:
    speed = ServerSpeed()
    speed.observe(llama(2000, 5000.0), 2000)  # 400 tokens/s
    budget, why = speed.budget(2048)
    assert budget == 256 and "400 tokens/s" in why  # 320 tokens read in 0.8 s: the step below
    assert speed.slow and speed.region_lines() > 1


def test_gpu_server_keeps_the_configured_budget() -> None:
    speed = ServerSpeed()
    speed.observe({"ttft_ms": 40.0}, 2000)  # timed from outside: 50k tokens/s
    assert speed.budget(2048)[0] == 2048 and speed.budget(4096)[0] == 4096 and not speed.slow


def test_budget_moves_only_when_the_rate_leaves_its_band() -> None:
    speed = ServerSpeed()
    speed.observe(llama(1000, 1000.0), 1000)  # 1000 tokens/s -> 768
    first = speed.budget(2048)[0]
    assert first == 768
    for ms in (1150.0, 900.0, 1200.0, 950.0):  # noise around the same rate
        speed.observe(llama(1000, ms), 1000)
        assert speed.budget(2048)[0] == first
    for _ in range(10):
        speed.observe(llama(1000, 250.0), 1000)  # the server got 4x faster
    assert speed.budget(2048)[0] > first and speed.budget(2048)[0] in BUDGET_STEPS


def test_small_prefills_do_not_teach_the_rate() -> None:
    speed = ServerSpeed()
    speed.observe(llama(3, 45.0, cache_n=1990), 1993)  # 3 new tokens: the request's overhead, not the rate
    assert speed.prefill_tps is None
    assert speed.cache_hit_share == 1990 / 1993


def test_a_first_token_timeout_bounds_the_rate() -> None:
    speed = ServerSpeed()
    speed.observe({"ttft_ms": 50.0}, 2000)  # looked fast...
    speed.timed_out(2000, 5.0)  # ...then 2000 tokens got no first token in 5 s
    assert speed.prefill_tps == 400 and speed.budget(2048)[0] == 256


def test_single_line_answers_fit_the_decode_rate() -> None:
    speed = ServerSpeed()
    assert speed.single_line_tokens(32) == 32
    speed.observe(llama(100, 200.0, predicted_n=20, predicted_ms=500.0), 100)  # 25 ms per token
    assert speed.single_line_tokens(32) == 16
    for _ in range(8):
        speed.observe(llama(100, 200.0, predicted_n=20, predicted_ms=100.0), 100)
    assert speed.single_line_tokens(32) == 32  # fast enough again (the average moves back)
    assert speed.single_line_tokens(12) <= 12


def test_summary_says_why() -> None:
    speed = ServerSpeed()
    speed.observe(llama(2000, 5000.0, cache_n=6000), 8000)
    s = speed.summary(2048)
    assert s["effective_budget"] == 256 and "tokens/s" in s["budget_why"]
    assert s["server_cache_hit_share"] == 0.75 and s["slow"] is True


def test_speed_book_keeps_one_per_server_and_forgets_on_change() -> None:
    book = SpeedBook()
    a, b = object(), object()
    book.of(a).observe(llama(2000, 5000.0), 2000)
    assert book.of(a).slow and not book.of(b).slow and book.last is book.of(b)
    book.forget()
    assert book.last is None and not book.of(a).slow


def test_fast_server_caps_the_debounce_at_its_time_to_answer() -> None:
    from codeassist.client.debounce import Debouncer

    now = [0.0]
    deb = Debouncer(0, 1000, clock=lambda: now[0])
    for _ in range(6):  # a rhythm of 120 ms between keys
        deb.keystroke("u")
        now[0] += 0.12
    now[0] -= 0.12
    fast, slow = ServerSpeed(), ServerSpeed()
    fast.observe({"ttft_ms": 40.0}, 2000)
    slow.observe(llama(2000, 5000.0) | {"ttft_ms": 5200.0}, 2000)
    assert fast.wait_cap_ms() == 40.0 and slow.wait_cap_ms() is None and ServerSpeed().wait_cap_ms() is None
    slow.observe(llama(6, 45.0, cache_n=250) | {"ttft_ms": 80.0}, 256)  # a prompt its cache held: cheap, but
    assert slow.wait_cap_ms() is None and not slow.eager  # not llama-server: a shared server may be loaded
    slow.observe({"server_llama": 1.0}, 0)  # the answer's Server header said llama.cpp
    assert not slow.eager and slow.wait_cap_ms() is None  # but not known to be on this machine
    slow.slots = 4  # its /props, asked on loopback
    assert slow.eager and slow.wait_cap_ms() == 0.0 and slow.summary(2048)["eager"] is True
    assert slow.wait_cap_ms(allow_eager=False) is None  # config eager = false
    fast.observe({"server_llama": 1.0}, 0)
    assert not fast.eager and fast.wait_cap_ms() == 40.0  # a GPU llama-server: its time to answer
    uncapped = deb.delay_ms("u", "a", None)
    assert uncapped > 100  # mid-word: ~1.5 gaps
    assert deb.delay_ms("u", "a", fast.wait_cap_ms()) == 40.0


def test_the_budget_counts_in_the_servers_tokens() -> None:
    """Our counter says 400 where the server's tokenizer says 500: the budget is what the server reads in time."""
    same, more = ServerSpeed(), ServerSpeed()
    for _ in range(6):
        same.observe(llama(600, 1000.0), 600)  # 600 tokens/s, counted alike
        more.observe(llama(600, 1000.0), 400)  # 600 tokens/s, but 1.5 server tokens per counted one
    assert more.token_ratio > 1.4
    assert same.budget(2048)[0] == 384 and more.budget(2048)[0] == 256  # 480 and 320 tokens in 0.8 s


def test_llama_servers_own_fields_only_for_llama_server() -> None:
    other, llama_cpu = ServerSpeed(), ServerSpeed()
    other.observe({"ttft_ms": 900.0}, 2000)  # a slow server that is not llama.cpp: no unknown fields sent
    assert other.request_fields(multiline=True) == {}
    llama_cpu.observe(llama(2000, 5000.0) | {"server_llama": 1.0}, 2000)
    assert llama_cpu.request_fields(multiline=False) == {"cache_prompt": True, "timings_per_token": True}
    assert llama_cpu.request_fields(multiline=True)["t_max_predict_ms"] == 1000


def test_a_first_rate_comes_from_a_small_sample_later_ones_need_a_big_one() -> None:
    # A session whose first prompts the server already caches (or whose first stream was closed before its
    # timings): 6 tokens read in 25 ms is a rough rate, but without one every cold prompt is unprotected.
    speed = ServerSpeed()
    speed.observe(llama(6, 25.0, cache_n=245), 220)
    assert speed.prefill_tps is not None and 200 < speed.prefill_tps < 300 and speed.slow
    first = speed.prefill_tps
    speed.observe(llama(6, 5.0, cache_n=250), 220)  # a tiny sample once a rate is known: overhead, not rate
    assert speed.prefill_tps == first
    speed.observe(llama(200, 500.0), 220)  # a real one moves it
    assert speed.prefill_tps != first


def test_documents_keep_their_slot_least_recent_gives_way() -> None:
    speed = ServerSpeed(slots=2)
    assert [speed.slot_for(u) for u in ("a", "b", "a")] == [0, 1, 0]
    assert speed.slot_for("c") == 1  # b is the least recent
    assert speed.slot_for("b") == 0  # now a is
    assert speed.request_fields(False, "b") == {}  # not known as llama-server: no fields at all
    speed.llama = True
    assert speed.request_fields(False, "b")["id_slot"] == 0
    speed.observe({"server_prompt_n": 2000.0, "server_prompt_ms": 100.0}, 2000)  # 20,000 tokens/s: a GPU
    assert speed.slot_for("b") is None and "id_slot" not in speed.request_fields(False, "b")
    assert ServerSpeed(slots=0).slot_for("a") is None


def test_stats_say_when_requests_go_at_each_keystroke() -> None:
    from codeassist.client.cli_stats import server_line

    speed = ServerSpeed(slots=4)  # llama-server on this machine
    speed.observe(llama(2000, 5000.0) | {"server_llama": 1.0}, 2000)  # 400 tokens/s
    assert "a request at each keystroke" in server_line(speed.summary(2048))
    assert "a request at each keystroke" not in server_line(speed.summary(2048, eager=False))  # config said no
