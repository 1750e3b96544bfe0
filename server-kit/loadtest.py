"""`server-kit bench`: open-loop Poisson load with realistic completion requests, and its report.

Open loop: arrival times are drawn up front (exponential gaps at ``rate``), and each request starts at
its time whether or not earlier ones finished — so a slow server shows up as latency, not as a lower
offered rate. Bounded by ``duration_s`` and ``max_requests``. Measures TTFT, inter-token latency and
end-to-end per request; goodput is the share of requests that finished within the SLO.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from codeassist.client.latency import percentile
from codeassist.serverkit.benchwatch import Progress, Watch

__all__ = [
    "PROFILES",
    "BenchConfig",
    "BenchResults",
    "Profile",
    "Result",
    "detect_profile",
    "make_prompt",
    "percentile",
    "png_available",
    "report",
    "run_bench",
    "summarize",
    "write_outputs",
    "write_png",
]

_CODE_LINES = [
    "def {f}(items, key=None):",
    '    """Return the {f} of items."""',
    "    result = []",
    "    for i, item in enumerate(items):",
    "        if key is not None and key(item) < {n}:",
    "            continue",
    "        result.append((i, item))",
    "    return sorted(result, key=lambda p: p[1])",
    "class {C}Repository:",
    "    def __init__(self, db):",
    "        self.db = db",
    "        self.cache = {{}}",
    "    async def get(self, ident: int):",
    "        if ident in self.cache:",
    "            return self.cache[ident]",
    "        row = await self.db.fetch_one('select * from {f} where id = ?', ident)",
]


def make_prompt(tokens: int = 700, seed: int = 0) -> str:
    """Python-looking source of about ``tokens`` tokens (≈ 4 characters per token), ending mid-function."""
    rng = random.Random(seed)
    out: list[str] = []
    while sum(len(s) + 1 for s in out) < tokens * 4:
        out.append(
            rng.choice(_CODE_LINES).format(
                f=rng.choice(["median", "merge", "scan", "load"]), n=rng.randint(0, 99), C=rng.choice(["User", "Order"])
            )
        )
    return "\n".join(out) + "\ndef compute_"


@dataclass(frozen=True)
class Profile:
    prompt_tokens: int
    max_tokens: int
    rate: float
    about: str


# The GPU profile is the SLO's shape (700 in / 128 out). A CPU model server prefills a few hundred tokens a
# second: 700-token prompts at 3 req/s swamp it, so its profile is small requests at 1 req/s.
PROFILES: dict[str, Profile] = {
    "gpu": Profile(700, 128, 8.0, "700-token prompts, 128 tokens, 8 req/s (the completion SLO's shape)"),
    "cpu": Profile(128, 16, 1.0, "128-token prompts, 16 tokens, 1 req/s (a CPU model server)"),
}


def detect_profile(url: str, key: str | None, timeout_s: float = 5.0) -> tuple[str, str]:
    """("cpu" | "gpu", why) from what ``url``/models says the server is (llama.cpp and vLLM name themselves)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    try:
        resp = httpx.get(f"{url.rstrip('/')}/models", headers=headers, timeout=timeout_s)
        data = resp.json().get("data") if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return "gpu", f"GET /models failed ({type(exc).__name__}); the GPU defaults"
    if not isinstance(data, list):
        return "gpu", f"GET /models answered {resp.status_code}; the GPU defaults"
    owners = {str(m.get("owned_by")) for m in data if isinstance(m, dict)}
    if "llamacpp" in owners:
        return "cpu", "a llama.cpp server"
    if "vllm" in owners:
        return "gpu", "a vLLM server"
    return "gpu", f"a server owned by {', '.join(sorted(owners)) or 'nobody'}; the GPU defaults"


@dataclass
class BenchConfig:
    url: str  # …/v1
    rate: float = 8.0  # req/s (Poisson mean)
    duration_s: float = 30.0
    max_requests: int = 10_000
    prompt_tokens: int = 700
    max_tokens: int = 128
    model: str = "default"
    priority: str = "interactive"
    slo_ttft_ms: float = 100.0
    slo_e2e_ms: float = 700.0
    timeout_s: float = 30.0
    seed: int = 1
    key: str | None = None  # from the environment, never argv
    progress: bool = True
    stop_on_saturation: bool = True
    drain_s: float = 5.0  # after a saturation stop: how long the requests in flight may still finish
    profile: str = "gpu"


@dataclass
class Result:
    start: float
    status: int = 0
    error: str | None = None  # None | http_<code> | timeout | connect | stream_error | protocol | cancelled
    ttft_ms: float | None = None
    e2e_ms: float | None = None
    itl_ms: list[float] = field(default_factory=list)
    tokens: int = 0


class BenchResults(list[Result]):
    """The requests sent, plus how the run went (planned, wall time, why it stopped early)."""

    planned: int = 0
    wall_s: float = 0.0
    saturated: dict | None = None


async def _one(client: httpx.AsyncClient, cfg: BenchConfig, prompt: str, res: Result) -> None:
    body = {
        "model": cfg.model,
        "prompt": prompt,
        "max_tokens": cfg.max_tokens,
        "temperature": 0,
        "stream": True,
        "ignore_eos": True,
    }
    start = time.perf_counter()
    last = start
    try:
        async with client.stream("POST", "/completions", json=body, headers={"x-priority": cfg.priority}) as r:
            res.status = r.status_code
            if r.status_code != 200:
                await r.aread()
                res.error = f"http_{r.status_code}"
                return
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    break
                if '"error"' in line:
                    res.error = "stream_error"
                    break
                now = time.perf_counter()
                if res.ttft_ms is None:
                    res.ttft_ms = (now - start) * 1000
                else:
                    res.itl_ms.append((now - last) * 1000)
                last = now
                res.tokens += 1
        res.e2e_ms = (time.perf_counter() - start) * 1000
        if res.ttft_ms is None and res.error is None:
            res.error = "protocol"
    except httpx.TimeoutException:
        res.error = "timeout"
    except httpx.ConnectError:
        res.error = "connect"
    except httpx.HTTPError as exc:
        res.error = type(exc).__name__


async def _drain(tasks: list[asyncio.Task[None]], stop: asyncio.Event, cfg: BenchConfig) -> None:
    """Wait for the requests in flight: each may take its timeout, but once the server is found saturated (now or
    while waiting) only ``drain_s`` more; what is left then is cancelled (error "cancelled")."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cfg.timeout_s + 5.0
    stopped_at: float | None = None
    left = {t for t in tasks if not t.done()}
    while left and loop.time() < deadline:
        if stop.is_set() and stopped_at is None:
            stopped_at = loop.time()
            deadline = min(deadline, stopped_at + cfg.drain_s)
        _, left = await asyncio.wait(left, timeout=min(0.5, max(0.0, deadline - loop.time())))
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)


async def run_bench(cfg: BenchConfig) -> BenchResults:
    rng = random.Random(cfg.seed)
    arrivals, t = [], 0.0
    while len(arrivals) < cfg.max_requests:
        t += rng.expovariate(cfg.rate)
        if t > cfg.duration_s:
            break
        arrivals.append(t)
    prompts = [make_prompt(cfg.prompt_tokens, seed=i % 50) for i in range(min(50, len(arrivals)) or 1)]
    headers = {"authorization": f"Bearer {cfg.key}"} if cfg.key else {}
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    results = BenchResults()
    results.planned = len(arrivals)
    watch = Watch(cfg.rate)
    progress = Progress(cfg.progress, cfg.duration_s, len(arrivals))
    pending: dict[int, float] = {}  # id(result) -> perf time it was sent, while in flight
    stop = asyncio.Event()
    async with httpx.AsyncClient(
        base_url=cfg.url.rstrip("/"),
        headers=headers,
        limits=limits,
        timeout=httpx.Timeout(cfg.timeout_s, connect=5.0),
    ) as client:
        t0 = time.perf_counter()

        async def one(res: Result, prompt: str) -> None:
            pending[id(res)] = time.perf_counter()
            try:
                await _one(client, cfg, prompt, res)
            except asyncio.CancelledError:
                res.error = "cancelled"
                raise
            finally:
                pending.pop(id(res), None)
                watch.record(time.perf_counter(), res.e2e_ms, res.error is None)

        async def monitor() -> None:
            while True:
                await asyncio.sleep(1.0)
                now = time.perf_counter()
                elapsed = now - t0
                done = len(results) - len(pending)
                errors = sum(1 for r in results if r.error)
                recent = [e for w, e, ok in watch.ended if ok and e is not None and now - w <= 5.0]
                note = "stopped sending: saturated" if results.saturated else ""
                progress.update(elapsed, len(results), done, errors, percentile(recent, 50), note)
                if cfg.stop_on_saturation and not stop.is_set():
                    oldest = now - min(pending.values(), default=now)
                    if reason := watch.saturated(now, elapsed, len(pending), oldest):
                        results.saturated = {"after_s": round(elapsed, 1), "reason": reason}
                        stop.set()

        mon = asyncio.create_task(monitor())
        tasks: list[asyncio.Task[None]] = []
        try:
            for i, at in enumerate(arrivals):
                delay = t0 + at - time.perf_counter()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    break
                res = Result(start=time.perf_counter() - t0)
                results.append(res)
                tasks.append(asyncio.create_task(one(res, prompts[i % len(prompts)])))
            await _drain(tasks, stop, cfg)
        finally:
            mon.cancel()
            await asyncio.gather(mon, return_exceptions=True)
            progress.close()
        results.wall_s = round(time.perf_counter() - t0, 2)
    return results


def summarize(results: list[Result], cfg: BenchConfig) -> dict:
    ok = [r for r in results if r.error is None]
    errors: dict[str, int] = {}
    for r in results:
        if r.error:
            errors[r.error] = errors.get(r.error, 0) + 1
    good = [r for r in ok if (r.ttft_ms or 0) <= cfg.slo_ttft_ms and (r.e2e_ms or 0) <= cfg.slo_e2e_ms]
    span = max((r.start for r in results), default=0) or 1.0

    def pcts(xs: list[float]) -> dict[str, float | None]:
        return {f"p{q}": (round(v, 2) if (v := percentile(xs, q)) is not None else None) for q in (50, 90, 99)}

    planned = getattr(results, "planned", len(results))
    return {
        "url": cfg.url,
        "profile": cfg.profile,
        "rate": cfg.rate,
        "duration_s": cfg.duration_s,
        "prompt_tokens": cfg.prompt_tokens,
        "max_tokens": cfg.max_tokens,
        "planned": planned,
        "sent": len(results),
        "wall_s": getattr(results, "wall_s", None),
        "saturated": getattr(results, "saturated", None),
        "requests": len(results),
        "ok": len(ok),
        "errors": errors,
        "ttft_ms": pcts([r.ttft_ms for r in ok if r.ttft_ms is not None]),
        "itl_ms": pcts([x for r in ok for x in r.itl_ms]),
        "e2e_ms": pcts([r.e2e_ms for r in ok if r.e2e_ms is not None]),
        "goodput_rps": round(len(good) / span, 2),
        "goodput_fraction": round(len(good) / max(1, len(results)), 3),
        "slo": {"ttft_ms": cfg.slo_ttft_ms, "e2e_ms": cfg.slo_e2e_ms},
        "tokens_per_s": round(sum(r.tokens for r in ok) / span, 1),
    }


def report(s: dict) -> str:
    took = f" (took {s['wall_s']:g} s)" if s.get("wall_s") is not None else ""
    lines = [
        f"{s['requests']} of {s.get('planned', s['requests'])} requests sent at {s['rate']:g} req/s for "
        f"{s['duration_s']:g} s{took}, {s.get('prompt_tokens', '?')}-token prompts, {s.get('max_tokens', '?')} "
        f"tokens -> {s['url']}",
    ]
    if sat := s.get("saturated"):
        answered = s["ok"] / s["wall_s"] if s.get("wall_s") else 0.0
        lines.append(
            f"SATURATED after {sat['after_s']:g} s: {sat['reason']}. Stopped sending: the server does not keep up "
            f"with this load (it answered {answered:.2g} req/s). Rerun with a lower --rate, or smaller "
            "--prompt-tokens / --max-tokens (--profile cpu for a CPU model server); --keep-going sends it all anyway."
        )
    lines += [
        f"ok {s['ok']}, errors {s['errors'] or 'none'}",
        f"{'':<8}{'p50':>10}{'p90':>10}{'p99':>10}",
    ]
    for k in ("ttft_ms", "itl_ms", "e2e_ms"):
        vals = [s[k][p] for p in ("p50", "p90", "p99")]
        lines.append(f"{k:<8}" + "".join(f"{v:>10.1f}" if v is not None else f"{'-':>10}" for v in vals))
    lines.append(
        f"goodput {s['goodput_rps']} req/s ({s['goodput_fraction']:.1%} within TTFT ≤ "
        f"{s['slo']['ttft_ms']:g} ms and E2E ≤ {s['slo']['e2e_ms']:g} ms); {s['tokens_per_s']} tokens/s"
    )
    return "\n".join(lines)


def write_outputs(results: list[Result], summary: dict, json_path: Path | None, png_path: Path | None) -> None:
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"summary": summary, "requests": [asdict(r) for r in results]}, indent=1))
    if png_path:
        write_png(results, png_path)


def png_available() -> bool:
    """Whether --png can be written (matplotlib, from the `bench` extra), checked before a run."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_png(results: list[Result], path: Path) -> bool:
    """Latency over time and a percentile chart; needs matplotlib (the `bench` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("server-kit: matplotlib is not installed; no PNG written", file=sys.stderr)
        return False
    ok = [r for r in results if r.error is None and r.e2e_ms is not None]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    a.scatter([r.start for r in ok], [r.e2e_ms for r in ok], s=6, label="E2E")
    a.scatter([r.start for r in ok], [r.ttft_ms for r in ok], s=6, label="TTFT")
    bad = [r for r in results if r.error]
    if bad:
        a.scatter([r.start for r in bad], [0] * len(bad), s=12, marker="x", c="red", label="error")
    a.set(xlabel="time (s)", ylabel="ms", title="latency over time")
    a.legend()
    qs = list(range(1, 100))
    for name, xs in (("TTFT", [r.ttft_ms for r in ok]), ("E2E", [r.e2e_ms for r in ok])):
        if xs:
            b.plot(qs, [percentile(xs, q) for q in qs], label=name)
    b.set(xlabel="percentile", ylabel="ms", title="latency percentiles")
    b.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
