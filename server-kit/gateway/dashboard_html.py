"""The page of ``/dashboard``: :func:`render` turns :func:`.dashboard_data.collect`'s dict (and the GPU figures)
into one server-rendered HTML page, charts as inline SVG. No script, no external resource: nothing leaves the
box."""

from __future__ import annotations

import time
from html import escape
from typing import Any

from codeassist.serverkit.gateway.dashboard_data import CHARS_PER_LINE, E2E_TARGET_MS, TTFT_TARGET_MS
from codeassist.serverkit.gateway.svg import bar_chart, line_chart


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


def _column(rows: list[dict[str, Any]], name: str, scale: float = 1.0) -> list[float | None]:
    return [None if r.get(name) is None else r[name] * scale for r in rows]


def _latency_panel(data: dict[str, Any], key: str, title: str, chart: str, target: float, note: str) -> str:
    """The TTFT or end-to-end panel: p50 and p99 of the whole span (p99 against ``target``), then per day and per
    hour over the last 24 hours, both against the target line."""
    p50, p99 = data["summary"][f"{key}_p50"], data["summary"][f"{key}_p99"]
    lines = [(f"target {target:.0f} ms", target)]
    by_day, by_hour = data["per_day"], data["by_hour"]
    return _panel(
        f"p-{key}",
        title,
        _figure(f"{key}_p50", "p50", _ms(p50))
        + _figure(f"{key}_p99", f"p99 (target ≤ {target:.0f} ms)", _ms(p99), None if p99 is None else p99 <= target),
        line_chart(
            f"c-{key}",
            f"{chart} p50 and p99 per day",
            data["labels"],
            [("p50", _column(by_day, f"{key}_p50")), ("p99", _column(by_day, f"{key}_p99"))],
            "ms",
            lines,
        )
        + line_chart(
            f"c-{key}-24h",
            f"{chart} p50 and p99 per hour, last 24 hours",
            data["hour_labels"],
            [("p50 (24 h)", _column(by_hour, f"{key}_p50")), ("p99 (24 h)", _column(by_hour, f"{key}_p99"))],
            "ms",
            lines,
        ),
        note,
    )


def render(data: dict[str, Any], gpu: dict[str, float | None], gpu_name: str, generated: float) -> str:
    s, pd, labels = data["summary"], data["per_day"], data["labels"]

    def col(name: str, scale: float = 1.0) -> list[float | None]:
        return _column(pd, name, scale)

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
        _latency_panel(
            data,
            "ttft",
            "Time to first token",
            "TTFT",
            TTFT_TARGET_MS,
            "Per day, then per hour over the last 24 hours (UTC).",
        ),
        _latency_panel(
            data,
            "e2e",
            "End-to-end latency",
            "End-to-end",
            E2E_TARGET_MS,
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
