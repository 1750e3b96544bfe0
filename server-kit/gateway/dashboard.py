"""``/dashboard``: the team's week (or up to 90 days) on one server-rendered page, charts as inline SVG.

Who uses the server (active users per day), how often its suggestions are taken (acceptance rate and accepted
characters per day, from the daemons' reports), how fast it is (TTFT and end-to-end p50/p99 per day against the
targets, from the gateway's own histograms), how loaded it is (429s, queue wait, and the GPU and KV cache as
vLLM and nvidia-smi report them now) and what an accepted line costs (the GPUs' price from ``plan``'s cost model
over the accepted lines). Per-user rows show pseudonyms unless the admin asks for names (``?names=1``).

:func:`collect` does the queries and the arithmetic (a dict: what the benchmark times and the tests check);
:func:`render` turns it into the page. No script, no external resource: nothing leaves the box.
"""

from __future__ import annotations

import math
import re
import time
from html import escape
from typing import Any

from codeassist.serverkit.gateway.svg import bar_chart, line_chart
from codeassist.serverkit.gateway.usage_store import DAY_S, NB, UsageStore, hist_quantile

__all__ = [
    "CHARS_PER_LINE",
    "E2E_TARGET_MS",
    "TTFT_TARGET_MS",
    "collect",
    "gpu_figures",
    "gpu_names",
    "gpu_price_per_hour",
    "price_key",
    "render",
]

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


# -- the page ---------------------------------------------------------------------------------------
def _n(v: float | None, fmt: str = "{:,.0f}", none: str = "no data") -> str:
    return none if v is None else fmt.format(v)


def _pct(v: float | None) -> str:
    return _n(None if v is None else v * 100, "{:.1f}%")


def _ms(v: float | None) -> str:
    return _n(v, "{:,.0f} ms")


def _figure(key: str, label: str, value: str, ok: bool | None = None) -> str:
    cls = "" if ok is None else (" ok" if ok else " bad")
    return (
        f'<div class="fig{cls}"><div class="v" data-k="{key}">{escape(value)}</div>'
        f'<div class="l">{escape(label)}</div></div>'
    )


def _panel(pid: str, title: str, figures: str, chart: str, note: str = "") -> str:
    note_html = f'<p class="note">{escape(note)}</p>' if note else ""
    return (
        f'<section class="panel" id="{pid}"><h2>{escape(title)}</h2>'
        f'<div class="figs">{figures}</div>{chart}{note_html}</section>'
    )


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1f2937}
header{background:#111827;color:#fff;padding:12px 20px}header h1{margin:0;font-size:18px}
header p{margin:2px 0 0;color:#9ca3af;font-size:12px}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:14px;padding:14px}
.panel{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px}
.panel h2{font-size:15px;margin:0 0 6px}.figs{display:flex;gap:18px;flex-wrap:wrap;margin-bottom:4px}
.fig .v{font-size:20px;font-weight:600}.fig .l{font-size:11px;color:#6b7280}
.fig.ok .v{color:#047857}.fig.bad .v{color:#b91c1c}
.grid{stroke:#e5e7eb}.ax{font-size:10px;fill:#6b7280}.target{stroke:#dc2626;stroke-dasharray:5 4}
.tlabel{font-size:10px;fill:#dc2626}.note{font-size:11px;color:#6b7280;margin:4px 0 0}
table{border-collapse:collapse;width:100%;font-size:12px}th,td{text-align:right;padding:3px 6px;
border-bottom:1px solid #f0f0f0}th:first-child,td:first-child{text-align:left;font-family:monospace}
.wide{grid-column:1/-1}
"""


def render(data: dict[str, Any], gpu: dict[str, float | None], gpu_name: str, generated: float) -> str:
    s, pd, labels = data["summary"], data["per_day"], data["labels"]

    def col(name: str, scale: float = 1.0) -> list[float | None]:
        return [None if p.get(name) is None else p[name] * scale for p in pd]

    def hcol(name: str) -> list[float | None]:
        return [h[name] for h in data["by_hour"]]

    hl = data["hour_labels"]

    panels = [
        _panel(
            "p-users",
            "Active users per day",
            _figure("active_users", f"users in {data['days']} days", _n(s["active_users"]))
            + _figure("requests", "requests", _n(s["requests"])),
            bar_chart("c-users", "Active users per day", labels, col("active_users"), "users"),
        ),
        _panel(
            "p-acceptance",
            "Acceptance",
            _figure("acceptance_rate", "accepted / shown", _pct(s["acceptance_rate"]))
            + _figure("accepted_chars", "accepted characters", _n(s["accepted_chars"]))
            + _figure("shown", "completions shown", _n(s["shown"])),
            line_chart(
                "c-acceptance", "Acceptance rate per day", labels, [("rate %", col("acceptance_rate", 100))], "%"
            )
            + bar_chart("c-chars", "Accepted characters per day", labels, col("accepted_chars"), "chars"),
            "From the developers' daemons (counts only); a partial accept counts as accepted.",
        ),
        _panel(
            "p-ttft",
            "Time to first token",
            _figure("ttft_p50", "p50", _ms(s["ttft_p50"]))
            + _figure(
                "ttft_p99",
                f"p99 (target ≤ {TTFT_TARGET_MS:.0f} ms)",
                _ms(s["ttft_p99"]),
                None if s["ttft_p99"] is None else s["ttft_p99"] <= TTFT_TARGET_MS,
            ),
            line_chart(
                "c-ttft",
                "TTFT p50 and p99 per day",
                labels,
                [("p50", col("ttft_p50")), ("p99", col("ttft_p99"))],
                "ms",
                [(f"target {TTFT_TARGET_MS:.0f} ms", TTFT_TARGET_MS)],
            )
            + line_chart(
                "c-ttft-24h",
                "TTFT p50 and p99 per hour, last 24 hours",
                hl,
                [("p50 (24 h)", hcol("ttft_p50")), ("p99 (24 h)", hcol("ttft_p99"))],
                "ms",
                [(f"target {TTFT_TARGET_MS:.0f} ms", TTFT_TARGET_MS)],
            ),
            "Per day, then per hour over the last 24 hours (UTC).",
        ),
        _panel(
            "p-e2e",
            "End-to-end latency",
            _figure("e2e_p50", "p50", _ms(s["e2e_p50"]))
            + _figure(
                "e2e_p99",
                f"p99 (target ≤ {E2E_TARGET_MS:.0f} ms)",
                _ms(s["e2e_p99"]),
                None if s["e2e_p99"] is None else s["e2e_p99"] <= E2E_TARGET_MS,
            ),
            line_chart(
                "c-e2e",
                "End-to-end p50 and p99 per day",
                labels,
                [("p50", col("e2e_p50")), ("p99", col("e2e_p99"))],
                "ms",
                [(f"target {E2E_TARGET_MS:.0f} ms", E2E_TARGET_MS)],
            )
            + line_chart(
                "c-e2e-24h",
                "End-to-end p50 and p99 per hour, last 24 hours",
                hl,
                [("p50 (24 h)", hcol("e2e_p50")), ("p99 (24 h)", hcol("e2e_p99"))],
                "ms",
                [(f"target {E2E_TARGET_MS:.0f} ms", E2E_TARGET_MS)],
            ),
            "At the gateway, completed requests; quantiles from histogram buckets. Per day, then per hour over "
            "the last 24 hours (UTC).",
        ),
        _panel(
            "p-load",
            "Rate limits and queue",
            _figure("r429", "429 answers", _n(s["r429"]))
            + _figure("queue_wait_ms", "mean queue wait", _n(s["queue_wait_ms"], "{:,.1f} ms")),
            bar_chart("c-429", "429 answers per day", labels, col("r429"), "429s")
            + line_chart("c-queue", "Mean queue wait per day", labels, [("queue wait", col("queue_wait_ms"))], "ms"),
        ),
        _panel(
            "p-gpu",
            "GPU and KV cache (now)",
            _figure("gpu_util", "GPU utilisation", _n(gpu.get("gpu_util"), "{:.0f}%"))
            + _figure("kv_cache", "KV cache in use", _n(gpu.get("kv_cache"), "{:.0f}%"))
            + _figure("vllm_waiting", "waiting in vLLM", _n(gpu.get("vllm_waiting"))),
            "",
            "vLLM's own metrics and nvidia-smi, re-exported on /metrics; no data when the model server or GPU "
            "does not publish them (the history is in Prometheus: server-kit launch --write-grafana).",
        ),
        _panel(
            "p-cost",
            "Cost per accepted line",
            _figure("cost_per_line", "per accepted line", _n(s["cost_per_line"], "${:,.3f}"))
            + _figure("gpu_cost", f"GPU cost, {data['days']} days", _n(s["gpu_cost"], "${:,.0f}"))
            + _figure("accepted_lines", "accepted lines", _n(s["accepted_lines"])),
            line_chart("c-cost", "Cost per accepted line per day", labels, [("$ per line", col("cost_per_line"))], "$"),
            f"{s['gpus']} × {gpu_name} at {_n(s['usd_per_gpu_hour'], '${:.2f}')}/GPU-hour (plan's prices unless "
            f"set), around the clock; a line is {CHARS_PER_LINE} accepted characters.",
        ),
    ]
    cols = ("user", "requests", "shown", "accepted", "rate", "accepted chars", "429s", "E2E p50")
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"
    body = "".join(
        f"<tr><td>{escape(u['user'])}</td><td>{u['requests']:,}</td><td>{u['shown']:,}</td><td>{u['accepted']:,}</td>"
        f"<td>{_pct(u['acceptance_rate'])}</td><td>{u['accepted_chars']:,}</td><td>{u['r429']:,}</td>"
        f"<td>{_ms(u['e2e_p50'])}</td></tr>"
        for u in data["users"]
    )
    more = data["user_count"] - len(data["users"])
    table = f'<table id="users">{head}{body}</table>' + (
        f'<p class="note">and {more} more users</p>' if more > 0 else ""
    )
    panels.append(
        f'<section class="panel wide" id="p-people"><h2>Per user ({data["user_count"]})</h2>{table}'
        '<p class="note">Pseudonyms (a keyed hash of the user name); ?names=1 shows names.</p></section>'
    )
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(generated))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>codeassist team dashboard</title>'
        '<meta http-equiv="refresh" content="300"><meta name="viewport" content="width=device-width">'
        f"<style>{CSS}</style></head><body><header><h1>codeassist team dashboard</h1>"
        f"<p>last {data['days']} days ({escape(labels[0])} to {escape(labels[-1])}), generated {stamp} · "
        '<a style="color:#93c5fd" href="?days=7">7 d</a> <a style="color:#93c5fd" href="?days=30">30 d</a> '
        '<a style="color:#93c5fd" href="?days=90">90 d</a></p></header>'
        f"<main>{''.join(panels)}</main></body></html>"
    )
