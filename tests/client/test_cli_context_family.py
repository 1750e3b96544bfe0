"""`codeassist context` shows the prompt the daemon would send: the model family the daemon's ModelResolver picks
(from the configured server's /v1/models, or a `family` the config or project file sets), the project's budget,
and a stated guess when the server does not answer. Real loopback servers (the stand-in answering /v1/models with
a given model name), real isolated daemon environments, the real CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from codeassist.serverkit.standin import StandinBehaviour, StandinServer

from tests.conftest import free_port

TEXT = "def add(a, b):\n    total = a + b\n    return total\n"
QWEN = "qwen2.5-coder-1.5b-instruct-q8_0.gguf"
GEMMA = "gemma-3-270m-it-Q8_0.gguf"


@pytest.fixture
def serve() -> Iterator[Any]:
    """A stand-in server whose /v1/models serves the model named."""
    made: list[StandinServer] = []

    def make(model: str) -> StandinServer:
        server = StandinServer(behaviour=StandinBehaviour(model=model, tokens=["x"])).start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def _repo(tmp_path: Path, project: str = "", text: str = TEXT) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.py").write_text(text)
    if project:
        (root / ".codeassist.toml").write_text(project)
    return root


def _context(env: Any, root: Path, *extra: str, line: int = 3) -> dict[str, Any]:
    r = env.run("context", f"{root / 'a.py'}:{line}:5", "--root", str(root), "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_qwen_coder_server_gives_the_qwen_family(daemon_env_factory: Any, serve: Any, tmp_path: Path) -> None:
    env = daemon_env_factory(serve(QWEN).base_url)
    out = _context(env, _repo(tmp_path))
    assert out["family"] == "qwen" and out["model"] == QWEN and not out["family_fallback"]
    assert QWEN in out["family_why"] and "/v1/models" in out["family_why"]
    assert out["prompt"].startswith("<|file_sep|>a.py\n<|fim_prefix|>")


def test_a_gemma_server_gives_a_plain_prompt(daemon_env_factory: Any, serve: Any, tmp_path: Path) -> None:
    env = daemon_env_factory(serve(GEMMA).base_url)
    out = _context(env, _repo(tmp_path))
    assert out["family"] == "plain" and out["model"] == GEMMA
    assert "plain prefix completion" in out["family_why"]
    assert "<|fim_prefix|>" not in out["prompt"] and "<|file_sep|>" not in out["prompt"]
    assert out["prompt"].endswith("def add(a, b):\n    total = a + b\n    ")


def test_the_project_file_sets_budget_and_family(daemon_env_factory: Any, serve: Any, tmp_path: Path) -> None:
    env = daemon_env_factory(serve(QWEN).base_url)
    root = _repo(tmp_path, 'budget = 3072\nfamily = "starcoder2"\n')
    out = _context(env, root)
    assert out["budget"] == 3072
    assert str(root / ".codeassist.toml") in out["budget_why"]
    assert out["family"] == "starcoder2" and str(root / ".codeassist.toml") in out["family_why"]
    assert out["prompt"].startswith("<repo_name>") or "<fim_prefix>" in out["prompt"]
    # --budget and --family still override, and say so
    out = _context(env, root, "--budget", "1024", "--family", "deepseek")
    assert out["budget"] == 1024 and "--budget" in out["budget_why"] and "3072" in out["budget_why"]
    assert out["family"] == "deepseek" and out["family_why"] == "--family"


def test_human_output_says_which_family_and_budget_and_why(daemon_env_factory: Any, serve: Any, tmp_path: Path) -> None:
    env = daemon_env_factory(serve(GEMMA).base_url)
    root = _repo(tmp_path, "budget = 1536\n")
    r = env.run("context", f"{root / 'a.py'}:3:5", "--root", str(root))
    assert r.returncode == 0, r.stderr
    assert f"# family plain: the server serves {GEMMA!r}" in r.stdout
    assert f"# budget 1536: budget = 1536 from {root / '.codeassist.toml'}" in r.stdout


def test_an_unreachable_server_falls_back_and_says_so(daemon_env_factory: Any, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    env = daemon_env_factory(url)
    out = _context(env, _repo(tmp_path))
    assert out["family_fallback"] and out["family"] == "qwen" and out["model"] is None
    assert out["family_why"].startswith("FALLBACK") and url in out["family_why"]
    r = env.run("context", f"{tmp_path / 'repo' / 'a.py'}:3:5", "--root", str(tmp_path / "repo"))
    assert r.returncode == 0 and "FALLBACK, a guess" in r.stdout and "Traceback" not in r.stderr
    assert not env.socket.exists()  # no daemon was started to find out


@pytest.mark.parametrize("model", [QWEN, GEMMA])
def test_the_prompt_is_the_one_the_daemon_sends(
    daemon_env_factory: Any, serve: Any, tmp_path: Path, model: str
) -> None:
    server = serve(model)
    env = daemon_env_factory(server.base_url)
    header = '"""Sums, for the tests of `codeassist context`: long enough for the daemon to time the server."""\n\n'
    root = _repo(tmp_path, "budget = 1024\n", header + TEXT)
    done = env.run("complete", f"{root / 'a.py'}:5:5", "--json")
    assert done.returncode == 0, done.stderr
    sent = server.stats.requests[-1]
    out = _context(env, root, line=5)
    assert out["prompt"] == sent["prompt"]
    assert out["model"] == sent["model"] == model
    # the daemon still runs and has timed the server: its measure is the one the budget rule used
    assert out["budget"] == 1024 and "as the running daemon measured it" in out["budget_why"]
