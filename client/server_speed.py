"""What the model server costs, learnt from its own answers, and the prompt that fits it.

llama-server says in each answer how many prompt tokens its cache served and how long the rest took
(``timings``: ``cache_n``, ``prompt_n``, ``prompt_ms``, ``predicted_n``, ``predicted_ms``); the transport copies
them into the request's timings as ``server_*``. A server that does not say (vLLM, the gateway) is timed from
outside: the first token's wait stands for the prefill. From these: the prefill rate, the time per generated
token, the share of prompt tokens the server's cache served, and from them

- the prompt budget: a prompt the server has not cached must be prefilled within ``COLD_TARGET_S`` (a typing
  pause, less the ~0.3 s its first line then takes to decode on a CPU), so a CPU server that prefills 400 tokens/s
  gets ~256 tokens, a GPU server the configured 2k-4k;
- the single-line answer length that generation finishes within ``DECODE_TARGET_S``;
- whether the server is *slow*: then its work is precious (a request whose prompt is still a prefix of the
  document is never cancelled) and the cross-file part of the prompt is kept per region of lines, not per line,
  so consecutive prompts share their start and the server's prompt cache serves them;
- whether it is *eager* (a slow llama-server): no debounce, a request on the wire at every key that agrees.

Budgets move in coarse steps and only when the rate leaves the step's band: each change invalidates the server's
cache, so it must be rare.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUDGET_STEPS", "COLD_TARGET_S", "ServerSpeed", "SpeedBook"]

COLD_TARGET_S = 0.8  # measured at 1.0 here: a jump's ghost text (prefill + its line) reached 1.5 s at 384 tokens;
# at 0.8 (256 tokens) the typing scenario's p99 was 1,167 ms and the replay accepted as many characters (363 vs 364)
DECODE_TARGET_S = 0.4
FAST_TPS = 8000.0  # prefill tokens/s above which a server is fast (a GPU); below: a CPU, or a loaded server
BUDGET_STEPS = (192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
MIN_SINGLE_TOKENS = 8
REGION_LINES = 16  # on a slow server the cross-file part is chosen once per this many lines
ALPHA = 0.3  # weight of a new sample in the moving averages
MIN_PREFILL_SAMPLE = 32  # fewer uncached tokens say more about the request's overhead than the rate
FIRST_PREFILL_SAMPLE = 4  # ...but before any estimate, a low one (overhead counted as reading) beats none
UNKNOWN_BUDGET = 192  # the first prompt, before the server's speed is known: < 1 s on a 2-core CPU (a GPU then
# gets its configured budget from the second request on; a 2-core CPU keeps this budget: the same layout, its cache
# holds)
UNKNOWN_TPS = 250.0  # until measured, a prompt's reading is expected at a 2-core CPU's pace: a keystroke keeps
# the session's first request instead of making the server read the same prompt again alongside it
RECENT_PROMPTS = 4  # llama-server's default slot count
MULTI_LINE_MS = 1000
BAND = (0.6, 2.0)  # the budget stays while what fits is within these multiples of it (rates are noisy)


@dataclass
class ServerSpeed:
    prefill_tps: float | None = None
    decode_ms: float | None = None  # per generated token
    ttft_ms: float | None = None  # request sent -> first token
    token_ratio: float = 1.0  # the server's prompt tokens per token of our counter (tokenizers differ)
    llama: bool = False  # the server answers as llama.cpp's llama-server does (``timings``)
    prompt_tokens: int = 0  # all prompt tokens the server reported...
    cached_tokens: int = 0  # ...and those its prompt cache served
    slots: int | None = None  # llama-server's slot count on this machine (None: not asked yet; 0: none to pin to)
    _pins: dict[str, int] = field(default_factory=dict, repr=False)  # document -> its slot, least recent first
    _budget: int | None = field(default=None, repr=False)
    _recent: list[str] = field(default_factory=list, repr=False)  # the last prompts sent (what its slots hold)

    def observe(self, timings: Mapping[str, float], est_prompt_tokens: int, est_uncached: float | None = None) -> None:
        """One answer's timings (``server_*`` from the server, else ``ttft_ms`` from outside). From outside, the
        first token's wait is set against ``est_uncached`` (the prompt's part no recent prompt shared: a server
        whose cache served the rest answers fast without reading fast; measured on vLLM's CPU build, taking the
        whole prompt made it look 15,000 tokens/s fast)."""
        if (ttft := timings.get("ttft_ms")) is not None:
            self.ttft_ms = _avg(self.ttft_ms, ttft)
        self.llama = self.llama or bool(timings.get("server_llama"))
        if "server_prompt_n" in timings:
            uncached = int(timings["server_prompt_n"])
            cached = int(timings.get("server_cache_n", 0))
            self.prompt_tokens += uncached + cached
            self.cached_tokens += cached
            if est_prompt_tokens >= MIN_PREFILL_SAMPLE:
                self.token_ratio = _avg(self.token_ratio, (uncached + cached) / est_prompt_tokens)
            # A first estimate from any sample (what a server that already caches the prompt reads is a few
            # tokens; waiting for a big one kept the rate unknown, and every cold prompt unprotected, for seconds)
            least = MIN_PREFILL_SAMPLE if self.prefill_tps is not None else FIRST_PREFILL_SAMPLE
            if uncached >= least and timings.get("server_prompt_ms", 0) > 0:
                self._prefill(uncached / (timings["server_prompt_ms"] / 1000))
            n, ms = timings.get("server_predicted_n", 0), timings.get("server_predicted_ms", 0)
            if n >= 4 and ms > 0:
                self.decode_ms = _avg(self.decode_ms, ms / n)
        elif ttft:
            read = est_prompt_tokens if est_uncached is None else est_uncached
            if read >= MIN_PREFILL_SAMPLE:
                self._prefill(read / (ttft / 1000))

    def uncached(self, prompt: str, est_tokens: int) -> float:
        """The tokens of ``prompt`` that none of the last prompts sent shares (the server's cache holds those);
        remembers ``prompt`` as sent."""
        shared = max((_shared(prompt, old) for old in self._recent), default=0)
        self._recent = [prompt, *self._recent[: RECENT_PROMPTS - 1]]
        return est_tokens * (1 - shared / len(prompt)) if prompt else 0.0

    def expect_prefill_ms(self, uncached: float) -> float:
        """How long the server will read ``uncached`` tokens before its first one (a CPU's pace while unknown)."""
        return uncached / (self.prefill_tps or UNKNOWN_TPS) * 1000

    def timed_out(self, est_prompt_tokens: int, waited_s: float) -> None:
        """No first token within ``waited_s``: the rate is at most this, whatever the average says."""
        bound = est_prompt_tokens / max(waited_s, 1e-3)
        if self.prefill_tps is None or self.prefill_tps > bound:
            self.prefill_tps = bound

    def _prefill(self, tps: float) -> None:
        self.prefill_tps = _avg(self.prefill_tps, tps)

    @property
    def slow(self) -> bool:
        return self.prefill_tps is not None and self.prefill_tps < FAST_TPS

    def budget(self, configured: int) -> tuple[int, str]:
        """The prompt budget for this server, and why."""
        if self.prefill_tps is None:
            first = min(configured, UNKNOWN_BUDGET)
            return first, "the server's speed is not known yet (its first answer tells)"
        fits = self.prefill_tps * COLD_TARGET_S
        fits /= self.token_ratio  # our counter's tokens -> the server's
        if self._budget is None or not self._budget * BAND[0] <= fits <= self._budget * BAND[1]:
            self._budget = max([s for s in BUDGET_STEPS if s <= fits] or [BUDGET_STEPS[0]])
        if self._budget >= configured:
            return configured, f"configured (the server prefills {self.prefill_tps:.0f} tokens/s)"
        return self._budget, (
            f"the server prefills {self.prefill_tps:.0f} tokens/s: an uncached prompt fits {COLD_TARGET_S:.1f} s"
        )

    def single_line_tokens(self, configured: int) -> int:
        if self.decode_ms is None:
            return configured
        fits = int(DECODE_TARGET_S * 1000 / self.decode_ms) // 4 * 4
        return max(MIN_SINGLE_TOKENS, min(configured, fits))

    @property
    def eager(self) -> bool:
        """A slow llama-server (a CPU; in practice the developer's own): a request goes at once after each
        keystroke and stays on the wire while the keys typed agree with its answer (the engine waits for its first
        token before judging). Its idle cores cost nothing; a wait after the last key costs every line. A key that
        contradicts the answer closes the stream and llama-server stops at its next token (measured here: the next
        request's first token ~25 ms later). Only llama-server on this machine (``slots`` from its ``/props``): a
        shared one (behind the gateway, the tunnel, another host) keeps the debounce, its slots are everyone's."""
        return self.llama and self.slow and bool(self.slots)

    def wait_cap_ms(self, allow_eager: bool = True) -> float | None:
        """The debounce waits no longer than this; None: no cap (a slow server that is not llama-server, or the
        speed is not known). On a fast server: its time to answer (a request that a key then makes useless costs
        it little, a wait costs the user every time); on an ``eager`` one, unless the user said no (config
        ``eager``): none (``debounce_min_ms``). Measured on the eager one
        (replay, real typing speed): with no wait but a request without output replaced at the next key (the rule
        before the first token was waited for), 1,036 requests and ghost text at 22 % of pauses; waiting for the
        first token, 350 requests, 85 % of pauses, 334 characters accepted (195 with the debounce)."""
        if self.eager and allow_eager:
            return 0.0
        if self.prefill_tps is None or self.slow or self.ttft_ms is None:
            return None
        return self.ttft_ms

    def slot_for(self, uri: str) -> int | None:
        """The slot ``uri``'s requests go to on llama-server on this machine (unless it is measured fast): its own
        while it is among the ``slots`` most recent documents, else the least recent document's."""
        if not self.slots or (self.prefill_tps is not None and not self.slow):
            return None
        slot = self._pins.pop(uri, None)
        if slot is None:
            taken = set(self._pins.values())
            free = [n for n in range(self.slots) if n not in taken]
            slot = free[0] if free else self._pins.pop(next(iter(self._pins)))
        self._pins[uri] = slot
        return slot

    def reset_slots(self) -> None:
        """The slot count may be stale (another endpoint answered, a first token never came): ask again."""
        self.slots = None
        self._pins.clear()

    def request_fields(self, multiline: bool, uri: str = "") -> dict[str, object]:
        """llama-server's own request fields: keep the prompt cached (older builds default to not), its timings in
        every event, and on a slow server stop a multi-line answer ``MULTI_LINE_MS`` after its first token once a
        line is complete (its first line is shown at once; the rest only saves a later request).

        On llama-server on this machine (from its first request: a document's first slot is then its own),
        each document's requests go to one slot (``id_slot``); not on a fast one. Left to itself llama-server
        gives a request the idle slot whose cached prompt shares most with it; but the slot holding the document's
        prompt is often still busy with the request the last key cancelled (it stops at its next token), so the
        new one went to another slot and read its whole prompt again (~1 s here). Pinned, it waits those few ms
        for its own slot. Measured (a request per key at typing speed, each cancelling the last): 67 of 75
        requests had their first token before the next key, 5 of 75 unpinned."""
        if not self.llama:
            return {}
        # timings in every streamed event: a stream closed early (one line read, a cancel) still says its cost
        fields: dict[str, object] = {"cache_prompt": True, "timings_per_token": True}
        if multiline and self.slow:
            fields["t_max_predict_ms"] = MULTI_LINE_MS
        if uri and (slot := self.slot_for(uri)) is not None:
            fields["id_slot"] = slot
        return fields

    def region_lines(self) -> int:
        """The cacheable layout on a slow server, and before the speed is known (as the first budget)."""
        return REGION_LINES if self.slow or self.prefill_tps is None else 1

    @property
    def cache_hit_share(self) -> float | None:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else None

    def summary(self, configured_budget: int, eager: bool = True) -> dict[str, Any]:
        budget, why = self.budget(configured_budget)
        share = self.cache_hit_share
        return {
            "prefill_tokens_per_s": None if self.prefill_tps is None else round(self.prefill_tps),
            "decode_ms_per_token": None if self.decode_ms is None else round(self.decode_ms, 1),
            "server_tokens_per_counted": round(self.token_ratio, 2),
            "effective_budget": budget,
            "budget_why": why,
            "server_cache_hit_share": None if share is None else round(share, 3),
            "server_prompt_tokens": self.prompt_tokens,
            "slow": self.slow,
            "eager": self.eager and eager,  # a request at each keystroke, no debounce
        }


class SpeedBook:
    """One ``ServerSpeed`` per transport (the user's server, a trusted project's own)."""

    def __init__(self) -> None:
        self._by: dict[int, ServerSpeed] = {}
        self.last: ServerSpeed | None = None  # the latest one used, for status and doctor

    def of(self, transport: object) -> ServerSpeed:
        speed = self._by.get(id(transport))
        if speed is None:
            speed = self._by[id(transport)] = ServerSpeed()
        self.last = speed
        return speed

    def forget(self) -> None:
        """The server changed: learn again."""
        self._by.clear()
        self.last = None


def _shared(a: str, b: str) -> int:
    """Length of the common prefix (bisection over slice comparisons: C speed on long prompts)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _avg(old: float | None, new: float) -> float:
    return new if old is None else (1 - ALPHA) * old + ALPHA * new
