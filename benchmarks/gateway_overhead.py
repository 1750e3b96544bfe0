"""Gateway overhead: direct to a TIMING STAND-IN upstream vs through `server-kit gateway`, plus a burst test.

The upstream here is the scripted stand-in (fixed TTFT and inter-token gap, not a model): it isolates the
gateway's own cost. For each rate (open-loop Poisson, streaming /v1/completions) it runs alternating
rounds — direct, gateway, and a bytes-only TCP relay (the floor any proxy process pays on this box for
the same sockets and chunks) — so a noisy shared machine drifts into all of them alike, then prints TTFT
and end-to-end p50/p99 direct and through each proxy, the difference (added latency), and each proxy
process's CPU time per request (from /proc/<pid>/stat of that process, not the load generator's).
The load generator is the gateway's own httptools client under uvloop, so it is not the bottleneck.
With ``--litellm BIN`` the LiteLLM proxy (installed in its own venv) is measured the same way, after ours.
Then a burst at 10× the configured rate: every request must get a completion or 429/503 with
Retry-After, none lost, no other 5xx.

    python benchmarks/gateway_overhead.py [--duration 30] [--rounds 5] [--rates 16,64] [--litellm BIN]

Prints one JSON line per measurement, then a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from codeassist.serverkit.gateway.keys import KeyStore, load_pepper
from codeassist.serverkit.gateway.upstream import UpstreamClient, UpstreamError
from codeassist.serverkit.loadtest import make_prompt, percentile

TTFT_S, GAP_S, TOKENS = 0.05, 0.01, 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- the load generator ---------------------------------------------------------------------------
@dataclass
class Target:
    name: str
    url: str  # …/v1
    pid: int | None = None  # the proxy process whose CPU is measured
    key: str | None = None
    model: str = "m"
    ttft: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    cpu_s: float = 0.0


async def _one(client: UpstreamClient, t: Target, body: bytes, headers: dict[str, str]) -> None:
    start = time.perf_counter()
    ttft = None
    kind = None
    try:
        async with asyncio.timeout(30):
            resp = await client.stream("POST", t.url + "/completions", body, headers)
            try:
                if resp.status_code != 200:
                    kind = f"http_{resp.status_code}"
                    return
                tail = b""
                while chunk := await resp.next_chunk():
                    if ttft is None and b"data: {" in chunk:
                        ttft = time.perf_counter() - start
                    tail = (tail + chunk)[-256:]
                if b"[DONE]" not in tail or b'"error"' in tail:
                    kind = "stream_error"
            finally:
                resp.close()
    except TimeoutError:
        kind = "timeout"
    except UpstreamError as exc:
        kind = type(exc).__name__
    finally:
        t.requests += 1
        if kind is None and ttft is not None:
            t.ttft.append(ttft * 1000)
            t.e2e.append((time.perf_counter() - start) * 1000)
        else:
            kind = kind or "no_tokens"
            t.errors[kind] = t.errors.get(kind, 0) + 1


async def load(client: UpstreamClient, t: Target, rate: float, duration: float, seed: int) -> None:
    """Open-loop Poisson arrivals for ``duration`` s; returns when every request has ended."""
    rng = random.Random(seed)
    prompts = [make_prompt(700, seed=i) for i in range(8)]
    headers = {"content-type": "application/json"}
    if t.key:
        headers["authorization"] = f"Bearer {t.key}"
    bodies = [
        json.dumps({"model": t.model, "prompt": p, "max_tokens": TOKENS, "temperature": 0, "stream": True}).encode()
        for p in prompts
    ]
    tasks: list[asyncio.Task[None]] = []
    c0 = cpu_seconds(t.pid) if t.pid else 0.0
    t0 = time.perf_counter()
    at = rng.expovariate(rate)
    while at < duration:
        delay = t0 + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_one(client, t, bodies[len(tasks) % len(bodies)], headers)))
        at += rng.expovariate(rate)
    await asyncio.gather(*tasks)
    if t.pid:
        t.cpu_s += cpu_seconds(t.pid) - c0


def pcts(xs: list[float]) -> dict[str, float | None]:
    return {f"p{q}": (round(v, 2) if (v := percentile(xs, q)) is not None else None) for q in (50, 90, 99)}


def row(rate: float, direct: Target, t: Target, started_load: str) -> dict:
    d, g = pcts(direct.ttft), pcts(t.ttft)
    de, ge = pcts(direct.e2e), pcts(t.e2e)

    def diff(a: dict, b: dict, k: str) -> float | None:
        return round(b[k] - a[k], 2) if a[k] is not None and b[k] is not None else None

    return {
        "bench": "gateway_overhead",
        "proxy": t.name,
        "upstream": "timing stand-in (not a model)",
        "rate": rate,
        "requests": t.requests,
        "errors_direct": direct.errors,
        "errors": t.errors,
        "direct_ttft_ms": d,
        "proxy_ttft_ms": g,
        "direct_e2e_ms": de,
        "proxy_e2e_ms": ge,
        "added_ttft_p50_ms": diff(d, g, "p50"),
        "added_ttft_p99_ms": diff(d, g, "p99"),
        "added_e2e_p50_ms": diff(de, ge, "p50"),
        "added_e2e_p99_ms": diff(de, ge, "p99"),
        "cpu_ms_per_request": round(t.cpu_s * 1000 / max(1, t.requests), 3),
        "loadavg_before": started_load,
        "loadavg_after": loadavg(),
    }


async def compare(rate: float, duration: float, rounds: int, direct_url: str, proxies: list[Target]) -> list[dict]:
    """Alternating rounds (direct, then each proxy, order rotated per round) of ``duration / rounds`` s."""
    direct = Target("direct", direct_url)
    client = UpstreamClient(read_timeout_s=30, max_idle_per_host=4096)
    started = loadavg()
    try:
        for t in (direct, *proxies):  # warm up connections and code paths, not counted
            await load(client, Target(t.name, t.url, None, t.key, t.model), 8, 1.0, seed=99)
        order = [direct, *proxies]
        for r in range(rounds):
            for t in order[r % len(order) :] + order[: r % len(order)]:
                await load(client, t, rate, duration / rounds, seed=r)
    finally:
        await client.aclose()
    return [row(rate, direct, t, started) for t in proxies]


# -- processes ------------------------------------------------------------------------------------
def start_gateway(upstream: str, state: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "codeassist.serverkit.cli",
        "gateway",
        "--upstream",
        upstream,
        "--port",
        str(port),
        "--keys-file",
        str(state / "keys.json"),
        "--pepper-file",
        str(state / "pepper"),
        "--audit-log",
        str(state / "audit.jsonl"),
        *extra,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/health")
    return proc, f"http://127.0.0.1:{port}/v1"


def start_relay(upstream_port: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--relay", f"{port}:{upstream_port}"])
    wait_http(f"http://127.0.0.1:{port}/health")
    return proc, f"http://127.0.0.1:{port}/v1"


def start_litellm(binary: str, upstream: str, state: Path) -> tuple[subprocess.Popen, str, str]:
    """LiteLLM's proxy with the stand-in as an OpenAI text-completion upstream, a master key (auth on, like ours)."""
    port = free_port()
    master = "sk-bench-" + os.urandom(16).hex()
    cfg = state / "litellm.yaml"
    cfg.write_text(
        "model_list:\n  - model_name: standin\n    litellm_params:\n"
        "      model: text-completion-openai/standin-model\n"
        f"      api_base: {upstream}\n      api_key: none\n"
        "litellm_settings:\n  drop_params: true\n  set_verbose: false\n"
    )
    env = {
        **os.environ,
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_SCHEMA_UPDATE": "true",
        "LITELLM_MASTER_KEY": master,
    }
    log = open(state / "litellm.log", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [binary, "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout=180, proc=proc)
    return proc, f"http://127.0.0.1:{port}/v1", master


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def burst(url: str, key: str, rate: float, duration: float) -> dict:
    """Open loop at `rate` for `duration`: classify every answer."""
    outcome: dict[str, int] = {}
    missing_retry_after = 0

    async def one(c: httpx.AsyncClient, delay: float) -> None:
        nonlocal missing_retry_after
        await asyncio.sleep(delay)
        try:
            r = await c.post(
                "/completions",
                json={"model": "m", "prompt": "x" * 2800, "max_tokens": TOKENS, "stream": True},
                headers={"authorization": f"Bearer {key}"},
            )
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
    return {
        "bench": "gateway_burst",
        "offered_rps": rate,
        "duration_s": duration,
        "sent": n,
        "outcomes": outcome,
        "lost": lost,
        "missing_retry_after": missing_retry_after,
        "ok": lost == 0 and bad == 0 and missing_retry_after == 0,
    }


async def main_async(args: argparse.Namespace) -> list[dict]:
    state = Path(tempfile.mkdtemp(prefix="gwbench-"))
    os.environ.pop("CODEASSIST_GATEWAY_PEPPER", None)
    key, _ = KeyStore(state / "keys.json", load_pepper(state / "pepper")).add("bench")
    up_port = free_port()
    upstream = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "codeassist.serverkit.standin",
            "--port",
            str(up_port),
            "--ttft",
            str(TTFT_S),
            "--gap",
            str(GAP_S),
            "--tokens",
            str(TOKENS),
        ],
        stdout=subprocess.DEVNULL,
    )
    direct = f"http://127.0.0.1:{up_port}/v1"
    out: list[dict] = []
    procs: list[subprocess.Popen] = [upstream]
    try:
        wait_http(direct.removesuffix("/v1") + "/health")
        gw, gw_url = start_gateway(
            direct,
            state,
            ["--rpm", "1e7", "--burst", "1e6", "--tpm", "1e12", "--max-inflight", "512", "--max-queue-per-user", "512"],
        )
        procs.append(gw)
        relay, relay_url = start_relay(up_port)
        procs.append(relay)
        for rate in args.rates:
            proxies = [Target("gateway", gw_url, gw.pid, key), Target("tcp_relay_floor", relay_url, relay.pid)]
            for r in await compare(rate, args.duration, args.rounds, direct, proxies):
                print(json.dumps(r), flush=True)
                out.append(r)
        for p in (gw, relay):
            stop(p)
            procs.remove(p)
        if args.litellm:
            ll, ll_url, master = start_litellm(args.litellm, direct, state)
            procs.append(ll)
            for rate in args.litellm_rates:
                for r in await compare(
                    rate, args.duration, args.rounds, direct, [Target("litellm", ll_url, ll.pid, master, "standin")]
                ):
                    print(json.dumps(r), flush=True)
                    out.append(r)
            stop(ll)
            procs.remove(ll)
        # Burst: configured for 8 req/s (one user: 480/min, bucket 8; 8 in flight, 16 queued); offered 80 req/s.
        gw, gw_url = start_gateway(
            direct,
            state,
            ["--rpm", "480", "--burst", "8", "--max-inflight", "8", "--max-queue", "16", "--queue-timeout", "2"],
        )
        procs.append(gw)
        b = await burst(gw_url, key, 80.0, args.burst_duration)
        print(json.dumps(b), flush=True)
        out.append(b)
    finally:
        for p in procs:
            stop(p)
    return out


def relay_main(spec: str) -> None:
    """A bytes-only TCP relay (uvloop, one upstream connection per client connection): no HTTP at all."""
    import uvloop

    listen, up = (int(x) for x in spec.split(":"))

    class Pipe(asyncio.Protocol):
        def __init__(self, peer: asyncio.Transport | None = None) -> None:
            self.peer, self.pending = peer, []
            self.opening: asyncio.Future[None] | None = None

        def connection_made(self, transport) -> None:
            self.transport = transport
            if self.peer is None:  # a client: open its upstream connection
                self.opening = asyncio.ensure_future(self._connect())

        async def _connect(self) -> None:
            loop = asyncio.get_running_loop()
            _, back = await loop.create_connection(lambda: Pipe(self.transport), "127.0.0.1", up)
            self.peer = back.transport
            for data in self.pending:
                self.peer.write(data)

        def data_received(self, data: bytes) -> None:
            if self.peer is None:
                self.pending.append(data)
            else:
                self.peer.write(data)

        def connection_lost(self, exc: Exception | None) -> None:
            if self.peer is not None:
                self.peer.close()

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Pipe, "127.0.0.1", listen)
        await server.serve_forever()

    uvloop.run(serve())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=30.0, help="seconds per target and rate, split into rounds")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--burst-duration", type=float, default=10.0)
    p.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[16.0, 64.0])
    p.add_argument("--litellm", help="the `litellm` executable of a separate venv (measured at --litellm-rates)")
    p.add_argument("--litellm-rates", type=lambda s: [float(x) for x in s.split(",")], default=[4.0, 16.0])
    p.add_argument("--relay", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gateway_overhead.json")
    args = p.parse_args()
    if args.relay:
        relay_main(args.relay)
        return
    import uvloop

    load_before = loadavg()
    rows = uvloop.run(main_async(args))
    meta = {
        "bench": "meta",
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "command": " ".join(sys.argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([meta, *rows], indent=1) + "\n")
    print(
        f"\nupstream: timing stand-in, TTFT {TTFT_S * 1000:g} ms, gap {GAP_S * 1000:g} ms, {TOKENS} tokens "
        f"(measures proxy overhead only); {os.cpu_count()} CPUs, load {load_before} -> {meta['loadavg_after']}"
    )
    print(
        f"{'proxy':<16}{'rate':>5}{'reqs':>6}{'+TTFT p50':>10}{'+TTFT p99':>10}{'+E2E p50':>10}{'+E2E p99':>10}"
        f"{'CPU ms/req':>11}  errors"
    )
    for r in rows:
        if r["bench"] == "gateway_overhead":
            print(
                f"{r['proxy']:<16}{r['rate']:>5g}{r['requests']:>6}{r['added_ttft_p50_ms']!s:>10}"
                f"{r['added_ttft_p99_ms']!s:>10}{r['added_e2e_p50_ms']!s:>10}{r['added_e2e_p99_ms']!s:>10}"
                f"{r['cpu_ms_per_request']:>11}  {r['errors'] or 0}"
            )
        else:
            print(
                f"burst {r['offered_rps']:g} req/s × {r['duration_s']:g} s: {r['outcomes']}, lost {r['lost']}, "
                f"missing Retry-After {r['missing_retry_after']} -> {'PASS' if r['ok'] else 'FAIL'}"
            )
    if not args.litellm:
        print("LiteLLM proxy: not measured in this run (pass --litellm /path/to/venv/bin/litellm).")


if __name__ == "__main__":
    main()
