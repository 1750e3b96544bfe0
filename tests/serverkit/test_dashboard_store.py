"""The gateway's usage time series: one row per user per 5 minutes (and per day), fed by the proxy's accounting
and by the daemons' reports; retention; the team totals on /metrics."""

from __future__ import annotations

import sqlite3

import httpx
from codeassist.serverkit.gateway.usage_store import BUCKET_S, DAY_S, UsageStore, hist_quantile
from gwhelpers import auth, body


def test_requests_and_reports_land_in_5_minute_rows(keys, standin, gateway_factory, tmp_path):
    alice, bob = keys.add("alice"), keys.add("bob")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,), requests_per_minute=1, request_burst=3))
    for _ in range(5):  # the burst is 3: two answered 429
        httpx.post(gw.url + "/v1/completions", json=body(), headers=auth(alice))
    httpx.post(gw.url + "/v1/completions", json=body(), headers=auth(bob))
    report = {"counters": {"shown": 10, "accepted": 3, "partially_accepted": 1, "accepted_chars": 120}}
    assert httpx.get(gw.url + "/v1/codeassist/telemetry", headers=auth(alice)).json()["collect"] is True
    assert httpx.post(gw.url + "/v1/codeassist/telemetry", json=report, headers=auth(alice)).status_code == 200
    assert httpx.post(gw.url + "/v1/codeassist/telemetry", json=report).status_code == 401
    bad = {"counters": {"shown": "def secret():"}}
    assert httpx.post(gw.url + "/v1/codeassist/telemetry", json=bad, headers=auth(alice)).status_code == 400

    store = gw.state.usage
    assert store is not None and store.path == tmp_path / "usage.sqlite3"  # beside the keys: the state dir
    users = dict(store.per_user(0))
    a, b = users[gw.state.user_id("alice")], users[gw.state.user_id("bob")]
    assert (a["requests"], a["completed"], a["r429"]) == (5, 3, 2)
    assert (b["requests"], b["completed"]) == (1, 1)
    assert (a["shown"], a["accepted"], a["partially_accepted"], a["accepted_chars"]) == (10, 3, 1, 120)
    assert sum(a[f"e2e_{i}"] for i in range(13)) == 3 and a["completion_tokens"] > 0
    with sqlite3.connect(store.path) as db:
        buckets = db.execute("SELECT bucket, user FROM usage").fetchall()
    assert all(bk % BUCKET_S == 0 for bk, _ in buckets) and len({u for _, u in buckets}) == 2
    assert "alice" not in {u for _, u in buckets}  # pseudonyms only

    m = httpx.get(gw.url + "/metrics").text
    assert "codeassist_team_accepted_chars_total 120" in m
    assert "codeassist_team_active_users 2" in m


def test_retention_and_quantiles(tmp_path):
    now = [100 * DAY_S + 3600.0]
    store = UsageStore(tmp_path / "u.sqlite3", keep_days=7, keep_daily_days=30, now=lambda: now[0])
    store.add_rows([(now[0] - d * DAY_S, "u1", {"requests": 1}) for d in range(60)])
    assert store.bucket_count() == 8  # today and the 7 days before
    assert len(store.days(0)) == 31
    store.close()
    assert hist_quantile([0, 10, 0], 0.5) == 37.5  # half way through the 25..50 ms bucket
    assert hist_quantile([0] * 13, 0.5) is None


def test_gpu_figures_from_reexported_vllm_and_nvidia_smi_metrics():
    from codeassist.serverkit.gateway.dashboard import gpu_figures, gpu_names, price_key

    text = (
        'vllm:gpu_cache_usage_perc{replica="http://a:8000",model_name="m"} 0.25\n'
        'vllm:kv_cache_usage_perc{replica="http://b:8000",model_name="m"} 0.75\n'
        'vllm:num_requests_waiting{replica="http://a:8000",model_name="m"} 3\n'
        'codeassist_gpu_utilization_percent{gpu="0",name="NVIDIA H100"} 80\n'
        'codeassist_gpu_utilization_percent{gpu="1",name="NVIDIA H100"} 60\n'
    )
    assert gpu_figures(text) == {"gpu_util": 70.0, "kv_cache": 50.0, "vllm_waiting": 3.0}
    assert gpu_figures("") == {"gpu_util": None, "kv_cache": None, "vllm_waiting": None}
    # The cost model's cards come from nvidia-smi's names when the gateway runs on the GPU box.
    assert gpu_names(text) == ["NVIDIA H100", "NVIDIA H100"]
    assert [price_key(n) for n in ("NVIDIA H100 80GB HBM3", "NVIDIA L40S", "NVIDIA A100-SXM4-80GB", "Tesla T4")] == [
        "H100",
        "L40S",
        "A100-80GB",
        None,
    ]
