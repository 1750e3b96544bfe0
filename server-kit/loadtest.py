"""`server-kit bench`: open-loop Poisson load with realistic completion requests, and its report.

Open loop: arrival times are drawn up front (exponential gaps at ``rate``), and each request starts at
its time whether or not earlier ones finished — so a slow server shows up as latency, not as a lower
offered rate. Bounded by ``duration_s`` and ``max_requests``. Measures TTFT, inter-token latency and
end-to-end per request; goodput is the share of requests that finished within the SLO.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from codeassist.client.latency import percentile

__all__ = ["BenchConfig", "Result", "make_prompt", "percentile", "report", "run_bench", "summarize",
           "write_outputs", "write_png"]

_CODE_LINES = [
    "def {f}(items, key=None):", "    \"\"\"Return the {f} of items.\"\"\"", "    result = []",
    "    for i, item in enumerate(items):", "        if key is not None and key(item) < {n}:",
    "            continue", "        result.append((i, item))", "    return sorted(result, key=lambda p: p[1])",
    "class {C}Repository:", "    def __init__(self, db):", "        self.db = db", "        self.cache = {{}}",
    "    async def get(self, ident: int):", "        if ident in self.cache:", "            return self.cache[ident]",
    "        row = await self.db.fetch_one('select * from {f} where id = ?', ident)",
]


def make_prompt(tokens: int = 700, seed: int = 0) -> str:
    """Python-looking source of about ``tokens`` tokens (≈ 4 characters per token), ending mid-function."""
    rng = random.Random(seed)
    out: list[str] = []
    while sum(len(s) + 1 for s in out) < tokens * 4:
        out.append(rng.choice(_CODE_LINES).format(f=rng.choice(["median", "merge", "scan", "load"]),
                                                  n=rng.randint(0, 99), C=rng.choice(["User", "Order"])))
    return "\n".join(out) + "\ndef compute_"


@dataclass
class BenchConfig:
    url: str                      # …/v1
    rate: float = 8.0             # req/s (Poisson mean)
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
    key: str | None = None        # from the environment, never argv
    progress: bool = True


@dataclass
class Result:
    start: float
    status: int = 0
    error: str | None = None      # None | http_<code> | timeout | connect | stream_error | protocol
    ttft_ms: float | None = None
    e2e_ms: float | None = None
    itl_ms: list[float] = field(default_factory=list)
    tokens: int = 0


async def _one(client: httpx.AsyncClient, cfg: BenchConfig, prompt: str, t0: float) -> Result:
    res = Result(start=time.perf_counter() - t0)
    body = {"model": cfg.model, "prompt": prompt, "max_tokens": cfg.max_tokens, "temperature": 0, "stream": True,
            "ignore_eos": True}
    start = time.perf_counter()
    last = start
    try:
        async with client.stream("POST", "/completions", json=body, headers={"x-priority": cfg.priority}) as r:
            res.status = r.status_code
            if r.status_code != 200:
                await r.aread()
                res.error = f"http_{r.status_code}"
                return res
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
    return res


async def run_bench(cfg: BenchConfig) -> list[Result]:
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
    async with httpx.AsyncClient(base_url=cfg.url.rstrip("/"), headers=headers, limits=limits,
                                 timeout=httpx.Timeout(cfg.timeout_s, connect=5.0)) as client:
        t0 = time.perf_counter()
        tasks: list[asyncio.Task[Result]] = []
        for i, at in enumerate(arrivals):
            delay = t0 + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(client, cfg, prompts[i % len(prompts)], t0)))
            if cfg.progress and (i % 10 == 0 or i == len(arrivals) - 1):
                done = sum(x.done() for x in tasks)
                bar = "#" * int(30 * (i + 1) / len(arrivals))
                print(f"\r[{bar:<30}] sent {i + 1}/{len(arrivals)} done {done}", end="", file=sys.stderr)
        results = await asyncio.gather(*tasks)
    if cfg.progress:
        print(file=sys.stderr)
    return list(results)


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

    return {"url": cfg.url, "rate": cfg.rate, "duration_s": cfg.duration_s, "requests": len(results),
            "ok": len(ok), "errors": errors,
            "ttft_ms": pcts([r.ttft_ms for r in ok if r.ttft_ms is not None]),
            "itl_ms": pcts([x for r in ok for x in r.itl_ms]),
            "e2e_ms": pcts([r.e2e_ms for r in ok if r.e2e_ms is not None]),
            "goodput_rps": round(len(good) / span, 2), "goodput_fraction": round(len(good) / max(1, len(results)), 3),
            "slo": {"ttft_ms": cfg.slo_ttft_ms, "e2e_ms": cfg.slo_e2e_ms},
            "tokens_per_s": round(sum(r.tokens for r in ok) / span, 1)}


def report(s: dict) -> str:
    lines = [f"{s['requests']} requests at {s['rate']} req/s for {s['duration_s']} s -> {s['url']}",
             f"ok {s['ok']}, errors {s['errors'] or 'none'}", f"{'':<8}{'p50':>10}{'p90':>10}{'p99':>10}"]
    for k in ("ttft_ms", "itl_ms", "e2e_ms"):
        vals = [s[k][p] for p in ("p50", "p90", "p99")]
        lines.append(f"{k:<8}" + "".join(f"{v:>10.1f}" if v is not None else f"{'-':>10}" for v in vals))
    lines.append(f"goodput {s['goodput_rps']} req/s ({s['goodput_fraction']:.1%} within TTFT ≤ "
                 f"{s['slo']['ttft_ms']:g} ms and E2E ≤ {s['slo']['e2e_ms']:g} ms); {s['tokens_per_s']} tokens/s")
    return "\n".join(lines)


def write_outputs(results: list[Result], summary: dict, json_path: Path | None, png_path: Path | None) -> None:
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"summary": summary, "requests": [asdict(r) for r in results]}, indent=1))
    if png_path:
        write_png(results, png_path)


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
