"""End to end against the real local model server (llama.cpp + Gemma 3 270M) through the gateway."""

from __future__ import annotations

import json
import os
import stat

import httpx
from gwhelpers import auth, body

FAKE_SMI = """#!/bin/sh
echo "0, NVIDIA H100 80GB HBM3, 37, 61000, 81559, 45, 310.5"
"""


def test_completion_metrics_health_stats_through_gateway(keys, gateway_factory, local_model_url, tmp_path, monkeypatch):
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text(FAKE_SMI)
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{smi.parent}{os.pathsep}{os.environ['PATH']}")
    key = keys.add("real-user")
    audit = tmp_path / "audit.jsonl"
    gw = gateway_factory(keys.config(upstreams=(local_model_url,), audit_file=audit))
    req = body(prompt="def fibonacci(n):\n    ", max_tokens=12, temperature=0)
    req["model"] = "gemma-3-270m"
    text, events = "", 0
    with httpx.stream("POST", gw.url + "/v1/completions", json=req, headers=auth(key), timeout=60) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                events += 1
                text += "".join(c.get("text", "") for c in json.loads(line[6:]).get("choices", []))
    assert events >= 2 and text.strip()
    models = httpx.get(gw.url + "/v1/models", headers=auth(key)).json()
    assert any(m["id"] == "gemma-3-270m" for m in models["data"])
    h = httpx.get(gw.url + "/health")
    assert h.status_code == 200 and h.json() == {"status": "ok"}  # the real llama-server answered its probe
    m = httpx.get(gw.url + "/metrics").text
    assert 'codeassist_gateway_requests_total{class="interactive",status="200"} 1' in m
    assert "codeassist_gateway_request_seconds_bucket" in m and "codeassist_gateway_queue_depth" in m
    assert f'replica="{local_model_url.removesuffix("/v1")}"' in m and "llamacpp:" in m  # re-exported upstream
    assert 'codeassist_gpu_utilization_percent{gpu="0",name="NVIDIA H100 80GB HBM3"} 37' in m
    stats = httpx.get(gw.url + "/stats", headers=auth(key)).json()
    (user,) = stats["users"].values()
    assert user["completed"] == 1 and user["completion_tokens"] >= 2
    line = json.loads(audit.read_text().splitlines()[-1])
    assert line["status"] == 200 and line["model"] == "gemma-3-270m" and line["completion_tokens"] >= 2
    assert "fibonacci" not in audit.read_text() and "real-user" not in audit.read_text()
