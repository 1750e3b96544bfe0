"""Context-engine figures on a large real repo: cold index time, RSS, warm build p50/p99.

    python benchmarks/context_build.py [ROOT] [--positions 500] [--budget 2048] [--family qwen] [--max-files N]

ROOT defaults to the running interpreter's stdlib directory. Prints one JSON line, then a table.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import sysconfig
import time
from pathlib import Path

from codeassist.context.engine import ContextEngine
from codeassist.context.templates import template_for


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?", default=sysconfig.get_paths()["stdlib"])
    ap.add_argument("--positions", type=int, default=500)
    ap.add_argument("--budget", type=int, default=2048)
    ap.add_argument("--family", default="qwen")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-files", type=int, default=20_000, help="index at most this many files")
    args = ap.parse_args()
    rss0 = rss_mb()
    engine = ContextEngine(budget=args.budget, max_files=args.max_files)
    t0 = time.perf_counter()
    index = engine.add_root(args.root, background=True, watch=False)
    # A completion while the cold index runs must not wait for it.
    probe = Path(args.root) / next(iter(sorted(p.name for p in Path(args.root).glob("*.py"))), "x.py")
    during_ms = None
    if probe.is_file():
        text = probe.read_text(encoding="utf-8", errors="replace")
        during_ms = engine.build(text, len(text) // 2, template_for(args.family), path=probe).ms
    index.start().join()
    cold_s = time.perf_counter() - t0
    rss = rss_mb()
    rng = random.Random(args.seed)
    files = sorted(index.files)
    template = template_for(args.family)
    times: list[float] = []
    over = 0
    for _ in range(args.positions):
        rel = rng.choice(files)
        text = (index.root / rel).read_text(encoding="utf-8", errors="replace")
        offset = rng.randint(0, len(text))
        engine.build(text, offset, template, path=index.root / rel)  # first build parses the file (open doc)
        parts = engine.build(text, offset, template, path=index.root / rel)
        times.append(parts.ms)
        over += parts.tokens > args.budget
    times.sort()
    result = {
        "bench": "context_build",
        "root": str(index.root),
        "files": len(index.files),
        "chunks": len(index.chunks),
        "definitions": sum(len(v) for v in index.symbols.values()),
        "skipped": len(index.skipped),
        "cold_index_s": round(cold_s, 2),
        "rss_mb": round(rss, 1),
        "rss_delta_mb": round(rss - rss0, 1),
        "build_during_index_ms": round(during_ms, 2) if during_ms is not None else None,
        "positions": len(times),
        "warm_p50_ms": round(statistics.median(times), 2),
        "warm_p99_ms": round(times[int(len(times) * 0.99) - 1], 2),
        "warm_max_ms": round(times[-1], 2),
        "over_budget": over,
        "token_counter": engine.counter.name,
        "budget": args.budget,
    }
    print(json.dumps(result))
    for k, v in result.items():
        print(f"{k:>22}: {v}")
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
