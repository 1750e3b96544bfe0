"""`server-kit bench`: open-loop Poisson load, percentiles, errors by kind, JSON/PNG outputs."""

from __future__ import annotations

import json

import pytest
from codeassist.serverkit.cli import main
from codeassist.serverkit.loadtest import BenchConfig, make_prompt, percentile, run_bench, summarize
from codeassist.serverkit.standin import StandinBehaviour, StandinServer


def test_percentile_nearest_rank_and_prompt_size():
    xs = list(range(1, 101))
    assert percentile(xs, 50) == 50 and percentile(xs, 99) == 99 and percentile([], 50) is None
    p = make_prompt(700)
    assert 2600 <= len(p) <= 3000 and p.endswith("def compute_")


async def test_bench_measures_ttft_itl_and_open_loop_rate():
    with StandinServer(behaviour=StandinBehaviour(ttft_s=0.05, gap_s=0.01, tokens=[f" t{i}" for i in range(5)])) as up:
        cfg = BenchConfig(
            url=up.base_url, rate=40, duration_s=1.5, max_tokens=5, progress=False, slo_ttft_ms=200, slo_e2e_ms=400
        )
        results = await run_bench(cfg)
        s = summarize(results, cfg)
    assert 35 <= s["requests"] <= 95 and s["ok"] == s["requests"] and not s["errors"]
    assert 45 <= s["ttft_ms"]["p50"] <= 150
    assert 8 <= s["itl_ms"]["p50"] <= 40
    assert s["e2e_ms"]["p99"] >= s["e2e_ms"]["p50"] >= 85
    # Goodput is the share within the SLO, recomputed from the raw results (timing itself is a benchmark's job).
    within = [r for r in results if r.error is None and r.ttft_ms <= 200 and r.e2e_ms <= 400]
    assert s["goodput_fraction"] == round(len(within) / len(results), 3) and len(within) > len(results) / 2
    starts = sorted(r.start for r in results)
    assert starts[-1] > 1.0  # arrivals spread over the window, not a closed loop


async def test_bench_counts_errors_by_kind():
    with StandinServer(behaviour=StandinBehaviour(fault="500")) as up:
        cfg = BenchConfig(url=up.base_url, rate=30, duration_s=0.5, progress=False)
        s = summarize(await run_bench(cfg), cfg)
    assert s["ok"] == 0 and s["errors"] == {"http_500": s["requests"]} and s["goodput_rps"] == 0


def test_bench_cli_writes_json_and_png(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("CODEASSIST_API_KEY", "ca-x.y")
    with StandinServer(behaviour=StandinBehaviour(ttft_s=0.01, tokens=["a", "b"])) as up:
        rc = main(
            [
                "bench",
                "--url",
                up.base_url,
                "--rate",
                "20",
                "--duration",
                "1",
                "--quiet",
                "--json",
                str(tmp_path / "b.json"),
                "--png",
                str(tmp_path / "b.png"),
            ]
        )
        assert rc == 0
        assert all(h.get("authorization") == "Bearer ca-x.y" for h in up.stats.headers)
    out = capsys.readouterr().out
    first = json.loads(out.splitlines()[0])
    assert first["bench"] == "server_kit" and "ttft_ms" in out and "goodput" in out
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["summary"]["requests"] == len(data["requests"]) > 5
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
