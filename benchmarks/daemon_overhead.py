"""Time inside the daemon: request in -> request on the wire (context included), and cache hits.

Runs the real daemon (`Daemon`, real context engine, real unix socket, real `RpcConnection`) in this
process with a fake transport — the only place a fake belongs, since the figure is the daemon's own
overhead. "On the wire" is the moment the engine hands the request to the transport. Debounce is set
to 0: it is a deliberate wait, not overhead (see replay.py for it).

Each round: a keystroke at a fresh position and a completion there (a miss: it goes to the wire), then
the user types the suggestion's first character and asks again (a typing-through cache hit). With
``--gaps typist`` (default) every keystroke follows a typist's gap (log-normal, median ~110 ms, as in
replay.py), so the engine's timers (the idle re-parse, a speculation's wait) really run between keys;
``--gaps none`` sends everything back to back. (A speculation is sent only once the user types two characters
of a completion or accepts it, so this one-character typing-through builds none.)

Figures, p50/p99:
* request in -> on the wire, measured on the client side of the socket (IPC both ways included);
* of which the context build (``CompletionEngine.build_prompt``), timed around the call (wall, and the
  thread's CPU time);
* the daemon's own part: from the ``complete`` handler starting to the wire, less the build — wall time,
  and the event loop thread's CPU time over the same span (wall minus CPU is time the OS gave to other
  processes: on a shared 2-core box that, not the daemon, makes most of the wall-time p99);
* IPC + dispatch: the rest;
* cache hit: the round trip of the typing-through request.

    python benchmarks/daemon_overhead.py [--file PATH] [--n 300] [--gaps typist|none]

Prints one JSON line, then a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def fake_transport() -> Any:
    """The daemon's own overhead: a FakeTransport that notes when each interactive request reaches it."""
    from codeassist.client.transport.fake import FakeTransport

    def on_request(params: Any) -> None:
        if params.priority == "interactive":
            t.on_wire.append(time.perf_counter())
            t.on_wire_cpu.append(time.thread_time())

    t: Any = FakeTransport("value = compute(value, 42)", on_request=on_request)
    t.on_wire, t.on_wire_cpu = [], []
    return t


def pct(values: list[float], p: float) -> float:
    from codeassist.client.latency import percentile

    return round(percentile(values, p) or 0.0, 3)


async def run(path: Path, n: int, gaps: str = "typist") -> dict[str, object]:
    from codeassist.client.config import load_config, replace
    from codeassist.client.daemon import Daemon
    from codeassist.client.engine import CompletionEngine
    from codeassist.client.protocol import MAX_LINE, RpcConnection

    cfg = replace(load_config(env={}), debounce_min_ms=0.0, debounce_max_ms=0.0, family="plain")
    fake = fake_transport()
    engine = CompletionEngine(cfg, fake)  # type: ignore[arg-type]
    daemon = Daemon(cfg, engine=engine)
    build_ms: list[float] = []
    build_end: list[float] = []
    build_cpu: list[float] = []
    real_build = engine.build_prompt

    def timed_build(doc, offset, family, budget=None, region_lines=1):  # type: ignore[no-untyped-def]
        t, c = time.perf_counter(), time.thread_time()
        try:
            return real_build(doc, offset, family, budget, region_lines)
        finally:
            build_ms.append((time.perf_counter() - t) * 1000)
            build_cpu.append((time.thread_time() - c) * 1000)
            build_end.append(time.perf_counter())

    engine.build_prompt = timed_build  # type: ignore[method-assign]
    handler_in: list[float] = []
    handler_cpu: list[float] = []
    real_complete = daemon.handlers["complete"]

    async def timed_complete(conn, params):  # type: ignore[no-untyped-def]
        handler_in.append(time.perf_counter())
        handler_cpu.append(time.thread_time())
        return await real_complete(conn, params)

    daemon.handlers["complete"] = timed_complete
    sock = os.path.join(tempfile.mkdtemp(prefix="ca-bench-"), "d.sock")
    server = await asyncio.start_unix_server(daemon.handle_connection, path=sock, limit=MAX_LINE)
    conn = await RpcConnection.open_unix(sock)
    text = path.read_text(encoding="utf-8")
    uri = path.resolve().as_uri()
    await conn.request("doc/open", {"uri": uri, "text": text, "language": "python", "version": 1})
    rng = random.Random(7)
    lines = [i for i, ch in enumerate(text) if ch == "\n"]
    wire: list[float] = []
    own: list[float] = []
    ipc: list[float] = []
    hits: list[float] = []
    version = 1
    prefetch_builds = 0
    miss_build: list[float] = []
    miss_build_cpu: list[float] = []
    own_cpu: list[float] = []

    async def gap() -> None:
        if gaps == "typist":
            await asyncio.sleep(rng.lognormvariate(-2.2, 0.35))

    for i in range(n):
        await gap()
        # a fresh position each time: a miss that must go to the wire
        offset = rng.choice(lines)
        version += 1
        ch = "abcdefghijklmnopqrstuvwxyz"[i % 26]
        await conn.request("doc/change", {"uri": uri, "version": version, "edits": [[offset, offset, ch]]})
        offset += 1
        before = len(fake.on_wire)
        t0 = time.perf_counter()
        res = await conn.request("complete", {"uri": uri, "offset": offset})
        assert len(fake.on_wire) == before + 1 and res["source"] == "model", res
        wire.append((fake.on_wire[-1] - t0) * 1000)
        in_daemon = (fake.on_wire[-1] - handler_in[-1]) * 1000
        mine = max(i for i, end in enumerate(build_end) if end <= fake.on_wire[-1])  # this request's build
        miss_build.append(build_ms[mine])
        miss_build_cpu.append(build_cpu[mine])
        own.append(in_daemon - build_ms[mine])
        own_cpu.append((fake.on_wire_cpu[-1] - handler_cpu[-1]) * 1000 - build_cpu[mine])
        ipc.append(wire[-1] - in_daemon)
        # the user types the first character of the suggestion: served from the cache
        shown = res["text"]
        builds = len(build_ms)
        await gap()
        version += 1
        await conn.request("doc/change", {"uri": uri, "version": version, "edits": [[offset, offset, shown[0]]]})
        t1 = time.perf_counter()
        hit = await conn.request("complete", {"uri": uri, "offset": offset + 1})
        hits.append((time.perf_counter() - t1) * 1000)
        assert hit["text"] == shown[1:] and hit["source"] in ("cache", "prefetch"), hit
        prefetch_builds += len(build_ms) - builds
    await conn.aclose()
    server.close()
    await engine.aclose()
    return {
        "bench": "daemon_overhead",
        "n": n,
        "gaps": gaps,
        "prefetch_builds": prefetch_builds,
        "load_1m": round(os.getloadavg()[0], 2),
        "file": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path),
        "doc_chars": len(text),
        "context_engine": type(engine.context).__name__ if engine.context else None,
        "to_wire_p50_ms": pct(wire, 50),
        "to_wire_p99_ms": pct(wire, 99),
        "context_build_p50_ms": pct(miss_build, 50),
        "context_build_p99_ms": pct(miss_build, 99),
        "context_build_cpu_p50_ms": pct(miss_build_cpu, 50),
        "context_build_cpu_p99_ms": pct(miss_build_cpu, 99),
        "daemon_own_p50_ms": pct(own, 50),
        "daemon_own_p99_ms": pct(own, 99),
        "daemon_own_cpu_p50_ms": pct(own_cpu, 50),
        "daemon_own_cpu_p99_ms": pct(own_cpu, 99),
        "ipc_p50_ms": pct(ipc, 50),
        "ipc_p99_ms": pct(ipc, 99),
        "cache_hit_p50_ms": pct(hits, 50),
        "cache_hit_p99_ms": pct(hits, 99),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--file", type=Path, default=REPO / "client" / "engine.py")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--gaps", choices=("typist", "none"), default="typist")
    a = p.parse_args()
    res = asyncio.run(run(a.file, a.n, a.gaps))
    print(json.dumps(res))
    print(f"{'':>28}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'request in -> on the wire':>28}{res['to_wire_p50_ms']:>10}{res['to_wire_p99_ms']:>10}")
    print(f"{'  of which context build':>28}{res['context_build_p50_ms']:>10}{res['context_build_p99_ms']:>10}")
    print(f"{'    its CPU time':>28}{res['context_build_cpu_p50_ms']:>10}{res['context_build_cpu_p99_ms']:>10}")
    print(f"{'  daemon own (no build)':>28}{res['daemon_own_p50_ms']:>10}{res['daemon_own_p99_ms']:>10}")
    print(f"{'    its CPU time':>28}{res['daemon_own_cpu_p50_ms']:>10}{res['daemon_own_cpu_p99_ms']:>10}")
    print(f"{'  IPC + dispatch':>28}{res['ipc_p50_ms']:>10}{res['ipc_p99_ms']:>10}")
    print(f"{'cache hit (round trip)':>28}{res['cache_hit_p50_ms']:>10}{res['cache_hit_p99_ms']:>10}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
