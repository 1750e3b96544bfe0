"""The team's usage over time: a small SQLite time series in the gateway's state directory.

One row per user (the pseudonym, never the name) per 5 minutes in ``usage``: requests, tokens, 429s, errors,
end-to-end and first-token latency histograms, queue wait, and the acceptance counters the developers' daemons
send (shown / accepted / partial / accepted characters). Every write also adds to ``usage_daily`` (one row per
user per day) and ``team_daily`` (one row per day), which is what the dashboard reads, so its queries stay small
however long the 5-minute history is (90 days × 300 users: about 50 ms, benchmarks/dashboard_query.py).
Only numbers and pseudonyms are stored: no prompt, completion, file name or model name can reach the file.

Writes are gathered in memory and flushed every ``flush_s`` (and on close); the retention (``keep_days`` for the
5-minute rows, ``keep_daily_days`` for the daily ones) is applied at most once an hour, at a flush.
"""

from __future__ import annotations

import bisect
import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BUCKET_S",
    "CLIENT_COUNTERS",
    "LATENCY_EDGES_MS",
    "DayRow",
    "UsageStore",
    "hist_quantile",
]

log = logging.getLogger(__name__)

BUCKET_S = 300
DAY_S = 86_400
# Upper edges of the latency histogram buckets (ms); the last bucket is everything above the last edge.
LATENCY_EDGES_MS = (25, 50, 75, 100, 150, 200, 300, 500, 700, 1000, 2000, 5000)
NB = len(LATENCY_EDGES_MS) + 1
# What a daemon may report (deltas since its last report): counts only.
CLIENT_COUNTERS = ("shown", "accepted", "partially_accepted", "accepted_chars", "typed_through", "cancelled")
MAX_DELTA = 10_000_000  # one report's counter above this is refused (not a plausible 5 minutes of typing)

_SERVER = ("requests", "completed", "prompt_tokens", "completion_tokens", "r429", "errors", "qwait_us", "qwait_n")
_E2E = tuple(f"e2e_{i}" for i in range(NB))
_TTFT = tuple(f"ttft_{i}" for i in range(NB))
COLUMNS = (*_SERVER, *_E2E, *_TTFT, *CLIENT_COUNTERS)
_IDX = {c: i for i, c in enumerate(COLUMNS)}


def _schema(table: str, key: str) -> str:
    cols = ", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in COLUMNS)
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ({key} INTEGER NOT NULL, user TEXT NOT NULL, {cols}, "
        f"PRIMARY KEY ({key}, user)) WITHOUT ROWID"
    )


def _upsert(table: str, key: str) -> str:
    names = ", ".join(COLUMNS)
    marks = ", ".join("?" for _ in range(len(COLUMNS) + 2))
    sets = ", ".join(f"{c} = {c} + excluded.{c}" for c in COLUMNS)
    return f"INSERT INTO {table} ({key}, user, {names}) VALUES ({marks}) ON CONFLICT ({key}, user) DO UPDATE SET {sets}"


def hist_quantile(counts: list[int] | tuple[int, ...], q: float) -> float | None:
    """The ``q`` quantile (ms) of a histogram over :data:`LATENCY_EDGES_MS`, linear within a bucket; None when
    empty. Above the last edge it answers the last edge (the histogram cannot say more)."""
    total = sum(counts)
    if total <= 0:
        return None
    rank, acc = q * total, 0.0
    for i, n in enumerate(counts):
        if n and acc + n >= rank:
            if i >= len(LATENCY_EDGES_MS):
                return float(LATENCY_EDGES_MS[-1])
            lo = 0.0 if i == 0 else float(LATENCY_EDGES_MS[i - 1])
            return lo + (LATENCY_EDGES_MS[i] - lo) * max(0.0, rank - acc) / n
        acc += n
    return float(LATENCY_EDGES_MS[-1])


@dataclass
class DayRow:
    """One day of the whole team (or of one user)."""

    day: int  # unix time of 00:00 UTC
    users: int
    values: dict[str, int]

    def __getitem__(self, name: str) -> int:
        return self.values[name]


class UsageStore:
    def __init__(
        self,
        path: Path,
        flush_s: float = 10.0,
        keep_days: float = 35.0,
        keep_daily_days: float = 400.0,
        now=time.time,
    ) -> None:
        self.path, self.flush_s, self.now = path, flush_s, now
        self.keep_s, self.keep_daily_s = keep_days * DAY_S, keep_daily_days * DAY_S
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA cache_size=-32000")  # 32 MB: the daily rows of a long history stay in memory
        self._db.execute("PRAGMA mmap_size=268435456")
        self._db.execute(_schema("usage", "bucket"))
        self._db.execute(_schema("usage_daily", "day"))
        self._db.execute(_schema("team_daily", "day"))  # user '' only: the whole team's day, for the charts
        self._db.execute(_schema("team_usage", "bucket"))  # user '' only: the whole team's 5 minutes
        # Readers (the dashboard, in a worker thread) use their own connection: WAL lets them read while the
        # writer commits, so a long query never holds up the event loop's accounting (which takes only _lock).
        self._rdb = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._rdb.execute("PRAGMA cache_size=-32000")
        self._rdb.execute("PRAGMA mmap_size=268435456")
        self._lock = threading.Lock()  # the pending rows
        self._wlock = threading.Lock()  # the writer connection
        self._rlock = threading.Lock()  # the reader connection
        self._pending: dict[tuple[int, str], list[int]] = {}
        self._last_flush = time.monotonic()
        self._last_prune = 0.0
        self.closed = False
        self._flushing = False
        self._writer: ThreadPoolExecutor | None = None
        # Team totals since the gateway started (exported on /metrics).
        self.totals: dict[str, int] = dict.fromkeys(CLIENT_COUNTERS, 0)

    # -- writing ---------------------------------------------------------------------------------
    def _row(self, user: str, ts: float | None) -> list[int]:
        t = self.now() if ts is None else ts
        key = (int(t) // BUCKET_S * BUCKET_S, user)
        row = self._pending.get(key)
        if row is None:
            row = self._pending[key] = [0] * len(COLUMNS)
        return row

    def record_request(
        self,
        user: str,
        status: int,
        latency_s: float,
        ttft_s: float | None = None,
        queue_wait_s: float | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        ts: float | None = None,
    ) -> None:
        """One completion request of ``user`` (a pseudonym), from the gateway's accounting."""
        with self._lock:
            row = self._row(user, ts)
            row[0] += 1
            if status == 200:
                row[1] += 1
                row[2] += int(prompt_tokens or 0)
                row[3] += int(completion_tokens or 0)
            elif status == 429:
                row[4] += 1
            elif status >= 500:
                row[5] += 1
            if queue_wait_s is not None:
                row[6] += int(queue_wait_s * 1_000_000)
                row[7] += 1
            if status == 200:
                row[8 + bisect.bisect_left(LATENCY_EDGES_MS, latency_s * 1000)] += 1
                if ttft_s is not None:
                    row[8 + NB + bisect.bisect_left(LATENCY_EDGES_MS, ttft_s * 1000)] += 1
        self.maybe_flush()

    def record_client(self, user: str, counters: dict[str, Any], ts: float | None = None) -> dict[str, int]:
        """A daemon's report (deltas); keeps only :data:`CLIENT_COUNTERS` as non-negative integers and answers
        what was kept. Raises ValueError on a value that is not a plausible count."""
        kept: dict[str, int] = {}
        for name in CLIENT_COUNTERS:
            v = counters.get(name, 0)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_DELTA:
                raise ValueError(f"{name}: expected an integer 0..{MAX_DELTA}")
            kept[name] = v
        with self._lock:
            row = self._row(user, ts)
            base = 8 + 2 * NB
            for i, name in enumerate(CLIENT_COUNTERS):
                row[base + i] += kept[name]
                self.totals[name] += kept[name]
        self.maybe_flush()
        return kept

    def add_rows(self, rows: list[tuple[float, str, dict[str, int]]]) -> None:
        """Write rows directly: (time, user, {column: value}); for imports, tests and benchmarks."""
        with self._lock:
            for ts, user, values in rows:
                row = self._row(user, ts)
                for name, v in values.items():
                    row[_IDX[name]] += int(v)
        self.flush()

    def maybe_flush(self) -> None:
        """Flush when ``flush_s`` has passed, in the store's writer thread (the caller, the event loop, only
        hands it over: the SQLite write of a busy interval takes milliseconds)."""
        if time.monotonic() - self._last_flush < self.flush_s or self._flushing:
            return
        self._flushing = True
        self._last_flush = time.monotonic()
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="usage-store")
        self._writer.submit(self._flush_in_writer)

    def _flush_in_writer(self) -> None:
        try:
            self.flush()
        except sqlite3.Error as exc:  # a full disk must not stop the gateway; the rows of this interval are lost
            log.warning("usage store: flush failed: %s", exc)
        finally:
            self._flushing = False

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        if not pending:
            return
        with self._wlock:
            if self.closed:
                return
            daily: dict[tuple[int, str], list[int]] = {}
            team: dict[tuple[int, str], list[int]] = {}
            team5: dict[tuple[int, str], list[int]] = {}
            for (bucket, user), row in pending.items():
                day = bucket // DAY_S * DAY_S
                for table, key in ((daily, (day, user)), (team, (day, "")), (team5, (bucket, ""))):
                    d = table.get(key)
                    if d is None:
                        table[key] = list(row)
                    else:
                        for i, v in enumerate(row):
                            d[i] += v
            db = self._db
            db.execute("BEGIN")
            try:
                db.executemany(_upsert("usage", "bucket"), [(b, u, *r) for (b, u), r in pending.items()])
                db.executemany(_upsert("usage_daily", "day"), [(d, u, *r) for (d, u), r in daily.items()])
                db.executemany(_upsert("team_daily", "day"), [(d, u, *r) for (d, u), r in team.items()])
                db.executemany(_upsert("team_usage", "bucket"), [(b, u, *r) for (b, u), r in team5.items()])
                now = self.now()
                if now - self._last_prune >= 3600:
                    self._last_prune = now
                    db.execute("DELETE FROM usage WHERE bucket < ?", (int(now - self.keep_s),))
                    db.execute("DELETE FROM team_usage WHERE bucket < ?", (int(now - self.keep_s),))
                    oldest = int(now - self.keep_daily_s) // DAY_S * DAY_S
                    db.execute("DELETE FROM usage_daily WHERE day < ?", (oldest,))
                    db.execute("DELETE FROM team_daily WHERE day < ?", (oldest,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        self.flush()
        with self._wlock, self._rlock:
            self.closed = True
            self._db.close()
            self._rdb.close()

    # -- reading ---------------------------------------------------------------------------------
    def days(self, since: float, until: float | None = None) -> list[DayRow]:
        """The team's rows per day from ``since`` (inclusive day) to ``until``: sums, and the users active."""
        self.flush()
        lo = int(since) // DAY_S * DAY_S
        hi = int(self.now() if until is None else until)
        names = ", ".join(COLUMNS)
        with self._rlock:
            sums = self._rdb.execute(
                f"SELECT day, {names} FROM team_daily WHERE day >= ? AND day <= ? ORDER BY day", (lo, hi)
            ).fetchall()
            active = dict(
                self._rdb.execute(
                    "SELECT day, COUNT(*) FROM usage_daily WHERE day >= ? AND day <= ? "
                    "AND (requests > 0 OR shown > 0) GROUP BY day",
                    (lo, hi),
                ).fetchall()
            )
        return [DayRow(r[0], active.get(r[0], 0), dict(zip(COLUMNS, r[1:], strict=True))) for r in sums]

    def team_buckets(self, since: float, until: float | None = None) -> list[tuple[int, dict[str, int]]]:
        """The whole team's 5-minute rows from ``since`` to ``until`` (bucket start, sums)."""
        self.flush()
        hi = self.now() if until is None else until
        with self._rlock:
            query = (
                f"SELECT bucket, {', '.join(COLUMNS)} FROM team_usage WHERE bucket >= ? AND bucket <= ? ORDER BY bucket"
            )
            rows = self._rdb.execute(query, (int(since), int(hi))).fetchall()
        return [(r[0], dict(zip(COLUMNS, r[1:], strict=True))) for r in rows]

    def per_user(
        self,
        since: float,
        until: float | None = None,
        columns: tuple[str, ...] = COLUMNS,
        users: list[str] | None = None,
    ) -> list[tuple[str, dict[str, int]]]:
        """Each user's (or each of ``users``') sums of ``columns`` over the period, busiest (most requests) first."""
        self.flush()
        lo = int(since) // DAY_S * DAY_S
        hi = int(self.now() if until is None else until)
        cols = ("requests", *(c for c in columns if c != "requests"))
        unknown = [c for c in cols if c not in _IDX]
        if unknown:
            raise KeyError(f"unknown columns {unknown}")
        sums = ", ".join(f"SUM({c})" for c in cols)
        if users is None:
            where, args = "day >= ? AND day <= ?", [lo, hi]
        else:  # point lookups on the key (day, user): a few users over a long period stay cheap
            days = list(range(lo, hi + 1, DAY_S))
            where = f"day IN ({', '.join('?' for _ in days)}) AND user IN ({', '.join('?' for _ in users)})"
            args = [*days, *users]
        with self._rlock:
            query = f"SELECT user, {sums} FROM usage_daily WHERE {where} GROUP BY user"
            rows = self._rdb.execute(query, args).fetchall()
        rows.sort(key=lambda r: (-r[1], r[0]))
        return [(r[0], dict(zip(cols, r[1:], strict=True))) for r in rows]

    def team_totals(self) -> dict[str, int]:
        """All-time sums over the stored days (for /metrics)."""
        self.flush()
        sums = ", ".join(f"COALESCE(SUM({c}), 0)" for c in COLUMNS)
        with self._rlock:
            r = self._rdb.execute(f"SELECT {sums} FROM team_daily").fetchone()
        return dict(zip(COLUMNS, r, strict=True))

    def active_today(self) -> list[tuple[str, int]]:
        """Users with requests or reports today (UTC), as a gauge's samples."""
        day = int(self.now()) // DAY_S * DAY_S
        with self._rlock:
            if self.closed:
                return [("", 0)]
            flushed = self._rdb.execute(
                "SELECT user FROM usage_daily WHERE day = ? AND (requests > 0 OR shown > 0)", (day,)
            ).fetchall()
        users = {r[0] for r in flushed}
        with self._lock:
            users.update(u for (b, u), row in self._pending.items() if b >= day and (row[0] or row[_IDX["shown"]]))
        return [("", len(users))]

    def bucket_count(self) -> int:
        self.flush()
        with self._rlock:
            return self._rdb.execute("SELECT COUNT(*) FROM usage").fetchone()[0]
