"""The figures of ``/dashboard``: :func:`collect` runs the usage store's queries for the chosen days and does the
arithmetic (per day, per hour over the last 24 hours, per user, the totals and the cost per accepted line);
:func:`gpu_figures` and :func:`gpu_names` read the re-exported vLLM / nvidia-smi metrics; :func:`price_key` and
:func:`gpu_price_per_hour` find a card's price in ``plan``'s cost model. Plain dicts out: what the benchmark times,
the tests check and :mod:`.dashboard_html` draws."""

from __future__ import annotations

import math
import re
import time
from typing import Any

from codeassist.serverkit.gateway.usage_store import DAY_S, NB, UsageStore, hist_quantile

TTFT_TARGET_MS = 100.0
E2E_TARGET_MS = 700.0
CHARS_PER_LINE = 40  # accepted characters per accepted line (the daemons count characters, not lines)
MAX_DAYS = 90
USER_ROWS = 50
USER_COLUMNS = ("requests", "shown", "accepted", "partially_accepted", "accepted_chars", "r429")
E2E_COLUMNS = tuple(f"e2e_{i}" for i in range(NB))


def _hist(values: dict[str, int], prefix: str) -> list[int]:
    return [values[f"{prefix}_{i}"] for i in range(NB)]


def _rate(accepted: int, shown: int) -> float | None:
    return accepted / shown if shown else None


def price_key(gpu_name: str) -> str | None:
    """``plan``'s price key (``H100``, ``L40S``...) for an nvidia-smi card name, else None."""
    from codeassist.serverkit.plan_options import CARDS

    name = gpu_name.upper()
    for key, (card, _) in sorted(CARDS.items(), key=lambda kv: -len(kv[0])):
        if key.split("-")[0] in name or card.upper() in name:
            return key
    return None


_GPU_NAME = re.compile(r'^codeassist_gpu_utilization_percent\{gpu="([^"]*)",name="([^"]*)"\}', re.M)


def gpu_names(metrics_text: str) -> list[str]:
    """The cards nvidia-smi lists on the gateway's host (one name per GPU), from the re-exported metrics."""
    return [name for _, name in dict((m.group(1), m.group(2)) for m in _GPU_NAME.finditer(metrics_text)).items()]


def gpu_price_per_hour(gpu: str, usd_per_hour: float | None) -> float | None:
    """$/GPU-hour: the configured price, else the on-demand price ``plan`` uses for ``gpu``."""
    if usd_per_hour is not None:
        return usd_per_hour
    from codeassist.serverkit.plan import PlanInputs  # the cost model (imported when a page is asked for)

    price = PlanInputs().prices.get(gpu)
    return price[0] if price else None


def collect(
    store: UsageStore,
    days: int = 7,
    now: float | None = None,
    gpus: int = 1,
    usd_per_gpu_hour: float | None = None,
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Every figure of the page for the ``days`` days up to ``now`` (UTC days, today included)."""
    now = time.time() if now is None else now
    days = max(1, min(MAX_DAYS, int(days)))
    today = int(now) // DAY_S * DAY_S
    since = today - (days - 1) * DAY_S
    rows = {r.day: r for r in store.days(since, now)}
    users = store.per_user(since, now, USER_COLUMNS)
    day_list = [since + i * DAY_S for i in range(days)]
    labels = [time.strftime("%m-%d", time.gmtime(d)) for d in day_list]
    per_day: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    e2e_all, ttft_all = [0] * NB, [0] * NB
    for d in day_list:
        r = rows.get(d)
        v = r.values if r is not None else None
        if v is None:
            per_day.append({"day": d, "active_users": 0})
            continue
        for k, x in v.items():
            totals[k] = totals.get(k, 0) + (x or 0)
        e2e, ttft = _hist(v, "e2e"), _hist(v, "ttft")
        e2e_all = [a + b for a, b in zip(e2e_all, e2e, strict=True)]
        ttft_all = [a + b for a, b in zip(ttft_all, ttft, strict=True)]
        taken = v["accepted"] + v["partially_accepted"]
        per_day.append(
            {
                "day": d,
                "active_users": r.users,
                "requests": v["requests"],
                "shown": v["shown"],
                "accepted": taken,
                "acceptance_rate": _rate(taken, v["shown"]),
                "accepted_chars": v["accepted_chars"],
                "r429": v["r429"],
                "errors": v["errors"],
                "queue_wait_ms": v["qwait_us"] / 1000 / v["qwait_n"] if v["qwait_n"] else None,
                "ttft_p50": hist_quantile(ttft, 0.5),
                "ttft_p99": hist_quantile(ttft, 0.99),
                "e2e_p50": hist_quantile(e2e, 0.5),
                "e2e_p99": hist_quantile(e2e, 0.99),
            }
        )
    price = usd_per_gpu_hour
    cost = None if price is None else gpus * price * 24 * days
    lines = totals.get("accepted_chars", 0) / CHARS_PER_LINE
    for p in per_day:
        day_lines = p.get("accepted_chars", 0) / CHARS_PER_LINE
        p["cost_per_line"] = gpus * price * 24 / day_lines if price is not None and day_lines else None
    taken = totals.get("accepted", 0) + totals.get("partially_accepted", 0)
    user_rows = []
    top = users[:USER_ROWS]
    hists = dict(store.per_user(since, now, E2E_COLUMNS, [uid for uid, _ in top])) if top else {}
    for uid, v in top:
        t = v["accepted"] + v["partially_accepted"]
        user_rows.append(
            {
                "user": (names or {}).get(uid, uid),
                "requests": v["requests"],
                "shown": v["shown"],
                "accepted": t,
                "acceptance_rate": _rate(t, v["shown"]),
                "accepted_chars": v["accepted_chars"],
                "r429": v["r429"],
                "e2e_p50": hist_quantile(_hist(hists[uid], "e2e"), 0.5) if uid in hists else None,
            }
        )
    # The last 24 hours by hour (the team's 5-minute rows): a bad afternoon shows, which a day's p99 can hide.
    hour0 = (int(now) // 3600 - 23) * 3600
    hours: list[dict[str, Any]] = [{"hour": hour0 + h * 3600, "e2e": [0] * NB, "ttft": [0] * NB} for h in range(24)]
    for bucket, v in store.team_buckets(hour0, now):
        slot = hours[min(23, (bucket - hour0) // 3600)]
        slot["e2e"] = [a + b for a, b in zip(slot["e2e"], _hist(v, "e2e"), strict=True)]
        slot["ttft"] = [a + b for a, b in zip(slot["ttft"], _hist(v, "ttft"), strict=True)]
    by_hour = [
        {
            "hour": h["hour"],
            "ttft_p50": hist_quantile(h["ttft"], 0.5),
            "ttft_p99": hist_quantile(h["ttft"], 0.99),
            "e2e_p50": hist_quantile(h["e2e"], 0.5),
            "e2e_p99": hist_quantile(h["e2e"], 0.99),
        }
        for h in hours
    ]
    return {
        "days": days,
        "labels": labels,
        "by_hour": by_hour,
        "hour_labels": [time.strftime("%H:00", time.gmtime(h["hour"])) for h in by_hour],
        "per_day": per_day,
        "summary": {
            "active_users": sum(1 for _, v in users if v["requests"] or v["shown"]),
            "requests": totals.get("requests", 0),
            "shown": totals.get("shown", 0),
            "accepted": taken,
            "acceptance_rate": _rate(taken, totals.get("shown", 0)),
            "accepted_chars": totals.get("accepted_chars", 0),
            "accepted_lines": lines,
            "r429": totals.get("r429", 0),
            "queue_wait_ms": totals["qwait_us"] / 1000 / totals["qwait_n"] if totals.get("qwait_n") else None,
            "ttft_p50": hist_quantile(ttft_all, 0.5),
            "ttft_p99": hist_quantile(ttft_all, 0.99),
            "e2e_p50": hist_quantile(e2e_all, 0.5),
            "e2e_p99": hist_quantile(e2e_all, 0.99),
            "gpu_cost": cost,
            "cost_per_line": cost / lines if cost is not None and lines else None,
            "gpus": gpus,
            "usd_per_gpu_hour": price,
        },
        "users": user_rows,
        "user_count": len(users),
    }


_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)")


def gpu_figures(metrics_text: str) -> dict[str, float | None]:
    """GPU utilisation (%, mean over GPUs), KV-cache use (%, mean over replicas) and requests waiting in vLLM, from
    the re-exported upstream metrics; None for what is not there."""
    util: list[float] = []
    kv: list[float] = []
    waiting: list[float] = []
    for line in metrics_text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, value = m.group(1), m.group(3)
        try:
            x = float(value)
        except ValueError:
            continue
        if not math.isfinite(x):
            continue
        if name == "codeassist_gpu_utilization_percent":
            util.append(x)
        elif name in ("vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc"):
            kv.append(x * 100)
        elif name == "vllm:num_requests_waiting":
            waiting.append(x)

    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    return {"gpu_util": mean(util), "kv_cache": mean(kv), "vllm_waiting": sum(waiting) if waiting else None}
