"""Gateway overhead: direct to a TIMING STAND-IN upstream vs through `server-kit gateway`, plus a burst test.

The upstream here is the scripted stand-in (fixed TTFT and inter-token gap, not a model): it isolates the
gateway's own cost. For each rate (open-loop Poisson, streaming /v1/completions) it prints the TTFT and
end-to-end p50/p99 direct and through the gateway, the difference (added latency), and the gateway
process's CPU time per request (from /proc). Then a burst at 10× the configured rate: every request
must get a completion or 429/503 with Retry-After, none lost, no other 5xx.

    python benchmarks/gateway_overhead.py [--duration 10] [--rates 16,64] [--out benchmarks/results/...]

Prints one JSON line per measurement, then a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from codeassist.serverkit.gateway.keys import KeyStore, load_pepper
from codeassist.serverkit.loadtest import BenchConfig, run_bench, summarize

TTFT_S, GAP_S, TOKENS = 0.05, 0.01, 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_gateway(upstream: str, state: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "codeassist.serverkit.cli", "gateway", "--upstream", upstream, "--port", str(port),
           "--keys-file", str(state / "keys.json"), "--pepper-file", str(state / "pepper"),
           "--audit-log", str(state / "audit.jsonl"), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/health")
    return proc, f"http://127.0.0.1:{port}/v1"


async def measure(url: str, rate: float, duration: float, key: str | None) -> dict:
    cfg = BenchConfig(url=url, rate=rate, duration_s=duration, max_tokens=TOKENS, key=key, progress=False,
                      slo_ttft_ms=1000 * TTFT_S + 20, slo_e2e_ms=1000 * (TTFT_S + GAP_S * TOKENS) + 50, seed=7)
    return summarize(await run_bench(cfg), cfg)


async def burst(url: str, key: str, rate: float, duration: float) -> dict:
    """Open loop at `rate` for `duration`: classify every answer."""
    outcome: dict[str, int] = {}
    missing_retry_after = 0

    async def one(c: httpx.AsyncClient, delay: float) -> None:
        nonlocal missing_retry_after
        await asyncio.sleep(delay)
        try:
            r = await c.post("/completions", json={"model": "m", "prompt": "x" * 2800, "max_tokens": TOKENS,
                                                   "stream": True}, headers={"authorization": f"Bearer {key}"})
            kind = str(r.status_code) if r.status_code != 200 or "[DONE]" in r.text else "200_incomplete"
            if r.status_code in (429, 503) and "retry-after" not in r.headers:
                missing_retry_after += 1
        except httpx.HTTPError as exc:
            kind = type(exc).__name__
        outcome[kind] = outcome.get(kind, 0) + 1

    n = int(rate * duration)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=2000)) as c:
        await asyncio.gather(*(one(c, i / rate) for i in range(n)))
    lost = n - sum(outcome.values())
    bad = sum(v for k, v in outcome.items() if k not in ("200", "429", "503"))
    return {"bench": "gateway_burst", "offered_rps": rate, "duration_s": duration, "sent": n, "outcomes": outcome,
            "lost": lost, "missing_retry_after": missing_retry_after, "ok": lost == 0 and bad == 0
            and missing_retry_after == 0}


async def main_async(args: argparse.Namespace) -> list[dict]:
    state = Path(tempfile.mkdtemp(prefix="gwbench-"))
    os.environ.pop("CODEASSIST_GATEWAY_PEPPER", None)
    key, _ = KeyStore(state / "keys.json", load_pepper(state / "pepper")).add("bench")
    up_port = free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "codeassist.serverkit.standin", "--port", str(up_port),
                                 "--ttft", str(TTFT_S), "--gap", str(GAP_S), "--tokens", str(TOKENS)],
                                stdout=subprocess.DEVNULL)
    direct = f"http://127.0.0.1:{up_port}/v1"
    wait_http(direct.removesuffix("/v1") + "/health")
    out: list[dict] = []
    gw, gw_url = start_gateway(direct, state, ["--rpm", "1e7", "--burst", "1e6", "--tpm", "1e12",
                                               "--max-inflight", "512", "--max-queue-per-user", "512"])
    try:
        await measure(gw_url, 8, 1.0, key)  # warm up connections and code paths
        await measure(direct, 8, 1.0, None)
        for rate in args.rates:
            d = await measure(direct, rate, args.duration, None)
            c0 = cpu_seconds(gw.pid)
            g = await measure(gw_url, rate, args.duration, key)
            cpu_ms = (cpu_seconds(gw.pid) - c0) * 1000 / max(1, g["requests"])
            row = {"bench": "gateway_overhead", "upstream": "timing stand-in (not a model)", "rate": rate,
                   "requests": g["requests"], "errors_direct": d["errors"], "errors_gateway": g["errors"],
                   "direct_ttft_ms": d["ttft_ms"], "gateway_ttft_ms": g["ttft_ms"],
                   "direct_e2e_ms": d["e2e_ms"], "gateway_e2e_ms": g["e2e_ms"],
                   "added_ttft_p50_ms": round(g["ttft_ms"]["p50"] - d["ttft_ms"]["p50"], 2),
                   "added_ttft_p99_ms": round(g["ttft_ms"]["p99"] - d["ttft_ms"]["p99"], 2),
                   "added_e2e_p50_ms": round(g["e2e_ms"]["p50"] - d["e2e_ms"]["p50"], 2),
                   "added_e2e_p99_ms": round(g["e2e_ms"]["p99"] - d["e2e_ms"]["p99"], 2),
                   "gateway_cpu_ms_per_request": round(cpu_ms, 3)}
            print(json.dumps(row), flush=True)
            out.append(row)
    finally:
        gw.terminate()
        gw.wait(10)
    # Burst: configured for 8 req/s (one user: 480/min, bucket 8; 8 in flight, 16 queued); offered 80 req/s.
    gw, gw_url = start_gateway(direct, state, ["--rpm", "480", "--burst", "8", "--max-inflight", "8",
                                               "--max-queue", "16", "--queue-timeout", "2"])
    try:
        b = await burst(gw_url, key, 80.0, args.burst_duration)
        print(json.dumps(b), flush=True)
        out.append(b)
    finally:
        gw.terminate()
        gw.wait(10)
        upstream.terminate()
        upstream.wait(10)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--burst-duration", type=float, default=10.0)
    p.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[16.0, 64.0])
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gateway_overhead.json")
    args = p.parse_args()
    rows = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"\nupstream: timing stand-in, TTFT {TTFT_S * 1000:g} ms, gap {GAP_S * 1000:g} ms, {TOKENS} tokens "
          f"(measures gateway overhead only)")
    print(f"{'rate':>6}{'reqs':>6}{'+TTFT p50':>11}{'+TTFT p99':>11}{'+E2E p50':>10}{'+E2E p99':>10}{'CPU ms/req':>12}"
          f"  errors")
    for r in rows:
        if r["bench"] == "gateway_overhead":
            print(f"{r['rate']:>6g}{r['requests']:>6}{r['added_ttft_p50_ms']:>11}{r['added_ttft_p99_ms']:>11}"
                  f"{r['added_e2e_p50_ms']:>10}{r['added_e2e_p99_ms']:>10}{r['gateway_cpu_ms_per_request']:>12}"
                  f"  {r['errors_gateway'] or 0}")
        else:
            print(f"burst {r['offered_rps']:g} req/s × {r['duration_s']:g} s: {r['outcomes']}, lost {r['lost']}, "
                  f"missing Retry-After {r['missing_retry_after']} -> {'PASS' if r['ok'] else 'FAIL'}")
    print("LiteLLM proxy: not measured in this run (not installed here).")


if __name__ == "__main__":
    main()
