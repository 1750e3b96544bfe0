"""`server-kit launch --write-grafana FILE`: a Grafana dashboard over the gateway's Prometheus metrics.

The same panels as the gateway's ``/dashboard`` (active users, acceptance rate and accepted characters, TTFT and
end-to-end p50/p99 against the targets, 429s and queue wait, GPU utilisation and KV-cache use, cost per
accepted line), as PromQL over what ``/metrics`` exports: the gateway's ``codeassist_gateway_*`` histograms and
counters, the team's ``codeassist_team_*`` acceptance counters, vLLM's ``vllm:*`` and nvidia-smi's
``codeassist_gpu_*`` re-exported. The data source is an input (``DS_PROMETHEUS``), picked at import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codeassist.serverkit.gateway.dashboard import price_key

__all__ = ["dashboard_json", "price_key", "write_grafana"]

TTFT_TARGET_S = 0.1
E2E_TARGET_S = 0.7
CHARS_PER_LINE = 40  # as the gateway's /dashboard counts a line
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def _quantiles(metric: str) -> list[dict[str, Any]]:
    return [
        {
            "expr": f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket[5m])))",
            "legendFormat": f"p{int(q * 100)}",
            "refId": ref,
            "datasource": DS,
        }
        for q, ref in ((0.5, "A"), (0.99, "B"))
    ]


def _panel(
    pid: int,
    title: str,
    targets: list[dict[str, Any]],
    x: int,
    y: int,
    unit: str = "short",
    threshold: float | None = None,
    kind: str = "timeseries",
    description: str = "",
    w: int = 12,
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    custom: dict[str, Any] = {}
    if threshold is not None:
        steps.append({"color": "red", "value": threshold})
        custom = {"thresholdsStyle": {"mode": "dashed"}}
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"h": 8, "w": w, "x": x, "y": y},
        "targets": [{**t, "datasource": DS} for t in targets],
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}, "custom": custom},
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
    }


def _t(expr: str, legend: str = "", ref: str = "A") -> dict[str, Any]:
    return {"expr": expr, "legendFormat": legend, "refId": ref}


def dashboard_json(gpus: int, usd_per_gpu_hour: float | None, gpu_label: str = "GPU") -> dict[str, Any]:
    taken = "sum(rate(codeassist_team_accepted_total[1h])) + sum(rate(codeassist_team_partially_accepted_total[1h]))"
    by_status = "sum by (status) (rate(codeassist_gateway_requests_total[5m]))"
    panels = [
        _panel(1, "Active users (today)", [_t("codeassist_team_active_users", "users")], 0, 0, "short"),
        _panel(
            2,
            "Acceptance rate",
            [_t(f"({taken}) / sum(rate(codeassist_team_shown_total[1h]))", "accepted / shown")],
            12,
            0,
            "percentunit",
            description="From the developers' daemons (counts only); a partial accept counts as accepted.",
        ),
        _panel(
            3,
            "Accepted characters per day",
            [_t("sum(increase(codeassist_team_accepted_chars_total[1d]))", "characters")],
            0,
            8,
            "short",
        ),
        _panel(
            4,
            "Requests per second by status",
            [_t(by_status, "{{status}}")],
            12,
            8,
            "reqps",
        ),
        _panel(
            5,
            "Time to first token",
            _quantiles("codeassist_gateway_ttft_seconds"),
            0,
            16,
            "s",
            TTFT_TARGET_S,
            description=f"Target p99 ≤ {TTFT_TARGET_S * 1000:.0f} ms (dashed).",
        ),
        _panel(
            6,
            "End-to-end latency",
            _quantiles("codeassist_gateway_request_seconds"),
            12,
            16,
            "s",
            E2E_TARGET_S,
            description=f"Target p99 ≤ {E2E_TARGET_S * 1000:.0f} ms (dashed).",
        ),
        _panel(
            7,
            "429 answers",
            [_t('sum(increase(codeassist_gateway_requests_total{status="429"}[5m]))', "429s / 5 min")],
            0,
            24,
            "short",
        ),
        _panel(8, "Queue wait", _quantiles("codeassist_gateway_queue_wait_seconds"), 12, 24, "s"),
        _panel(
            9,
            "GPU utilisation",
            [_t("avg(codeassist_gpu_utilization_percent)", "GPU %")],
            0,
            32,
            "percent",
            description="nvidia-smi on the gateway's host, re-exported on /metrics.",
        ),
        _panel(
            10,
            "KV cache in use",
            [_t("avg(vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc)", "KV cache")],
            12,
            32,
            "percentunit",
            description="vLLM's own metric, re-exported by the gateway.",
        ),
    ]
    if usd_per_gpu_hour is not None:
        per_s = gpus * usd_per_gpu_hour / 3600
        panels.append(
            _panel(
                11,
                "Cost per accepted line",
                [_t(f"{per_s:.8f} / (sum(rate(codeassist_team_accepted_chars_total[1h])) / {CHARS_PER_LINE})", "$")],
                0,
                40,
                "currencyUSD",
                description=f"{gpus} × {gpu_label} at ${usd_per_gpu_hour:.2f}/GPU-hour (server-kit plan's price), "
                f"over accepted lines ({CHARS_PER_LINE} characters each).",
                w=24,
            )
        )
    return {
        "__inputs": [
            {
                "name": "DS_PROMETHEUS",
                "label": "Prometheus",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "title": "codeassist team",
        "uid": "codeassist-team",
        "tags": ["codeassist"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def write_grafana(path: Path, gpu_names: list[str]) -> Path:
    """The dashboard for these cards (their count and plan's on-demand price) at ``path``."""
    from codeassist.serverkit.plan import PlanInputs

    key = price_key(gpu_names[0]) if gpu_names else None
    price = PlanInputs().prices.get(key)[0] if key and key in PlanInputs().prices else None
    data = dashboard_json(len(gpu_names) or 1, price, key or (gpu_names[0] if gpu_names else "GPU"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path
