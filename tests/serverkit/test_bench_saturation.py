"""`server-kit bench` against a server that cannot keep up: a progress line, a stop when it is clearly saturated
(said so), defaults scaled to the server (a llama.cpp server gets small requests), and --png checked up front."""

from __future__ import annotations

import builtins
import json
import sys
import time
import tomllib
from pathlib import Path

import pytest
from codeassist.serverkit.cli import main
from codeassist.serverkit.loadtest import BenchConfig, run_bench, summarize
from codeassist.serverkit.standin import StandinBehaviour, StandinServer


def slow_server(**kw) -> StandinServer:
    """One request at a time, 0.3 s each: about 3 req/s, whatever is offered (requests queue for the slot)."""
    return StandinServer(behaviour=StandinBehaviour(ttft_s=0.1, gap_s=0.05, tokens=["a"] * 5, slots=1, **kw))


async def test_saturation_stops_sending_and_says_why():
    with slow_server() as up:
        cfg = BenchConfig(url=up.base_url, rate=20, duration_s=30, max_tokens=5, progress=False, drain_s=2)
        t0 = time.monotonic()
        results = await run_bench(cfg)
        took = time.monotonic() - t0
        s = summarize(results, cfg)
    assert s["saturated"] is not None, s
    assert s["saturated"]["after_s"] < 15 and s["saturated"]["reason"]
    assert s["sent"] < s["planned"]  # it stopped sending
    assert took < 25  # not the 30 s window plus a 30 s drain
    assert s["wall_s"] == pytest.approx(took, abs=1.0)


async def test_a_server_that_keeps_up_is_not_called_saturated():
    with StandinServer(behaviour=StandinBehaviour(ttft_s=0.02, gap_s=0.005, tokens=["a"] * 5)) as up:
        cfg = BenchConfig(url=up.base_url, rate=20, duration_s=4, max_tokens=5, progress=False)
        s = summarize(await run_bench(cfg), cfg)
    assert s["saturated"] is None and s["sent"] == s["planned"] == s["requests"] and s["ok"] == s["requests"]


def test_cli_reports_saturation_and_progress(capsys, monkeypatch):
    monkeypatch.delenv("CODEASSIST_API_KEY", raising=False)
    with slow_server() as up:
        rc = main(
            ["bench", "--url", up.base_url, "--rate", "20", "--duration", "30", "--max-tokens", "5", "--profile", "gpu"]
        )
    out, err = capsys.readouterr()
    assert rc == 0
    assert "in flight" in err  # the progress line, on stderr
    summary = json.loads(out.splitlines()[0])
    assert summary["saturated"]["reason"]
    assert "saturated" in out.lower() and "--rate" in out  # said so, with what to do


def test_llama_cpp_server_gets_the_cpu_profile(capsys, monkeypatch):
    monkeypatch.delenv("CODEASSIST_API_KEY", raising=False)
    fast = StandinBehaviour(ttft_s=0.01, tokens=["a"] * 4, owned_by="llamacpp")
    with StandinServer(behaviour=fast) as up:
        assert main(["bench", "--url", up.base_url, "--duration", "2", "--quiet"]) == 0
        sent = list(up.stats.requests)
    out, err = capsys.readouterr()
    assert "profile cpu" in err and "llama.cpp" in err
    assert sent and all(r["max_tokens"] <= 32 and len(r["prompt"]) < 1200 for r in sent)
    summary = json.loads(out.splitlines()[0])
    assert summary["profile"] == "cpu" and summary["rate"] <= 2


def test_vllm_server_gets_the_gpu_profile_and_flags_win(capsys, monkeypatch):
    monkeypatch.delenv("CODEASSIST_API_KEY", raising=False)
    with StandinServer(behaviour=StandinBehaviour(ttft_s=0.01, tokens=["a"] * 4, owned_by="vllm")) as up:
        assert (
            main(["bench", "--url", up.base_url, "--duration", "0.5", "--rate", "10", "--max-tokens", "3", "--quiet"])
            == 0
        )
        sent = list(up.stats.requests)
    assert sent and all(r["max_tokens"] == 3 and len(r["prompt"]) > 2000 for r in sent)  # 700-token prompts
    assert json.loads(capsys.readouterr().out.splitlines()[0])["profile"] == "gpu"


def test_png_without_matplotlib_fails_before_the_run(capsys, monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kw):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    with StandinServer() as up:
        rc = main(["bench", "--url", up.base_url, "--duration", "5", "--png", str(tmp_path / "b.png")])
        assert up.stats.requests == []  # nothing was sent
    err = capsys.readouterr().err
    assert rc == 2 and "matplotlib" in err and "codeassist[bench]" in err


def test_matplotlib_is_in_a_bench_extra_and_in_test():
    extras = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(d.startswith("matplotlib") for d in extras["bench"])
    assert any(d.startswith("matplotlib") for d in extras["test"])
