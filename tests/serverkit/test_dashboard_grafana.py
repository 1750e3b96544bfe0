"""`server-kit launch --write-grafana FILE`: a Grafana dashboard whose queries name only metrics the gateway
exports (its own, the team's, and vLLM's / nvidia-smi's re-exported), with the same panels as /dashboard."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
from gwhelpers import auth, body

PANELS = {
    "Active users (today)",
    "Acceptance rate",
    "Accepted characters per day",
    "Time to first token",
    "End-to-end latency",
    "429 answers",
    "Queue wait",
    "GPU utilisation",
    "KV cache in use",
    "Cost per accepted line",
}


def test_write_grafana_names_metrics_the_gateway_exports(tmp_path, keys, standin, gateway_factory):
    out = tmp_path / "grafana.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "codeassist.serverkit.cli",
            "launch",
            "--gpus",
            "NVIDIA H100 80GB HBM3:81559",
            "--write-grafana",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    dash = json.loads(out.read_text())
    titles = {p["title"] for p in dash["panels"]}
    assert titles >= PANELS
    assert dash["__inputs"][0]["pluginId"] == "prometheus"
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    cost = next(p for p in dash["panels"] if p["title"] == "Cost per accepted line")
    assert "0.00125" in cost["targets"][0]["expr"]  # 1 × H100 at plan's $4.50/h, per second
    ttft = next(p for p in dash["panels"] if p["title"] == "Time to first token")
    assert ttft["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.1

    # Every codeassist_* metric a query names is on a live gateway's /metrics (after some traffic and a report).
    key = keys.add("dev")
    gw = gateway_factory(keys.config(upstreams=(standin.base_url,)))
    assert httpx.post(gw.url + "/v1/completions", json=body(), headers=auth(key)).status_code == 200
    report = {"counters": {"shown": 2, "accepted": 1, "partially_accepted": 1, "accepted_chars": 50}}
    assert httpx.post(gw.url + "/v1/codeassist/telemetry", json=report, headers=auth(key)).status_code == 200
    exported = set(
        re.findall(r"^(codeassist_\w+?)(?:_bucket|_count|_sum)?[{ ]", httpx.get(gw.url + "/metrics").text, re.M)
    )
    named = {m for e in exprs for m in re.findall(r"\b(codeassist_\w+)", e)}
    named = {m.removesuffix("_bucket") for m in named}
    missing = {m for m in named - exported if not m.startswith("codeassist_gpu_")}  # nvidia-smi: GPU hosts only
    assert not missing, missing
