"""Dashboard queries over a long, wide history: 90 days × 300 users in the gateway's usage store.

Fills a fresh store through its API (``UsageStore.add_rows``, with timestamps: ``--rows-per-day`` 5-minute rows
per user per day, so the 5-minute table holds days × users × rows-per-day rows and the daily rollup
days × users), then times what ``/dashboard`` runs for its 7-, 30- and 90-day views: :func:`dashboard.collect`
(the two SQL queries and the arithmetic) and, separately, the whole page (collect + render). Prints one JSON
line per view, then a table; the target is ≤ 200 ms for the 90-day query.

    python benchmarks/dashboard_query.py [--days 90] [--users 300] [--rows-per-day 24] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from codeassist.serverkit.gateway import dashboard
from codeassist.serverkit.gateway.usage_store import DAY_S, NB, UsageStore

TARGET_MS = 200.0


def fill(store: UsageStore, days: int, users: int, rows_per_day: int, now: float, seed: int = 1) -> int:
    rng = random.Random(seed)
    today = int(now) // DAY_S * DAY_S
    n = 0
    for d in range(days):
        day = today - d * DAY_S
        batch = []
        for u in range(users):
            uid = f"{u:016x}"
            for k in range(rows_per_day):
                ts = day + 8 * 3600 + k * (10 * 3600 // max(1, rows_per_day))
                req = rng.randint(5, 40)
                shown = int(req * 0.8)
                v = {
                    "requests": req,
                    "completed": req - 1,
                    "r429": 1,
                    "prompt_tokens": req * 700,
                    "completion_tokens": req * 30,
                    "shown": shown,
                    "accepted": shown // 4,
                    "partially_accepted": shown // 20,
                    "accepted_chars": shown * 12,
                    "qwait_us": req * 3000,
                    "qwait_n": req,
                    f"e2e_{rng.randrange(NB)}": req - 1,
                    f"ttft_{rng.randrange(NB)}": req - 1,
                }
                batch.append((ts, uid, v))
        store.add_rows(batch)
        n += len(batch)
    return n


def timed(fn, repeat: int) -> tuple[float, float]:
    """(median, max) milliseconds over ``repeat`` runs after one warm-up."""
    fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs), max(runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--rows-per-day", type=int, default=24, help="5-minute rows per user per day")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--db", type=Path, help="keep the store here (default: a temporary directory)")
    args = ap.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "usage.sqlite3"
        store = UsageStore(path, keep_days=args.days + 1, keep_daily_days=args.days + 1)
        t0 = time.perf_counter()
        rows = fill(store, args.days, args.users, args.rows_per_day, now)
        fill_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
        print(
            json.dumps(
                {
                    "rows_5min": store.bucket_count(),
                    "written": rows,
                    "fill_s": round(fill_s, 1),
                    "db_mb": round(size_mb, 1),
                }
            )
        )
        results = []
        for view in (7, 30, args.days):
            q_med, q_max = timed(lambda v=view: dashboard.collect(store, v, now, 1, 4.5), args.repeat)

            def page(v=view) -> None:
                data = dashboard.collect(store, v, now, 1, 4.5)
                dashboard.render(data, {}, "H100", now)

            p_med, p_max = timed(page, args.repeat)
            r = {
                "days": view,
                "users": args.users,
                "query_ms_p50": round(q_med, 1),
                "query_ms_max": round(q_max, 1),
                "page_ms_p50": round(p_med, 1),
                "page_ms_max": round(p_max, 1),
            }
            results.append(r)
            print(json.dumps(r))
        store.close()
    print(f"\n{'view':>6} {'query p50':>10} {'query max':>10} {'page p50':>9} {'page max':>9}")
    for r in results:
        print(
            f"{r['days']:>4} d {r['query_ms_p50']:>8.1f}ms {r['query_ms_max']:>8.1f}ms "
            f"{r['page_ms_p50']:>7.1f}ms {r['page_ms_max']:>7.1f}ms"
        )
    worst = max(r["query_ms_max"] for r in results)
    ok = worst <= TARGET_MS
    print(
        f"\n{args.days} days × {args.users} users: slowest dashboard query {worst:.1f} ms "
        f"({'within' if ok else 'OVER'} the {TARGET_MS:.0f} ms target)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
