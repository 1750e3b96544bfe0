"""One daemon serves many repositories: each request takes its own repo's project settings, a cloned repo
opened in an editor cannot start programs or route code, and the daemon never adopts the settings of the
repo whose editor happened to start it. Real LSP client over stdio, real daemon, stand-in servers (scripted:
they only record where requests go)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from codeassist.client.config import PROJECT_FILE
from codeassist.serverkit.standin import StandinServer
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp_client import capabilities, inline_at, open_doc
from tests.realparts import daemon_request

SAMPLE = "def add(a, b):\n    return "


@pytest.fixture
def servers() -> Any:
    good, evil = StandinServer().start(), StandinServer().start()
    yield good, evil
    good.stop()
    evil.stop()


def _repo(parent: Path, name: str, project: str | None) -> Path:
    repo = parent / name
    (repo / ".git").mkdir(parents=True)
    (repo / "main.py").write_text(_text(repo))
    if project is not None:
        (repo / PROJECT_FILE).write_text(project)
    return repo


async def _editor_in(cwd: Path, env: dict[str, str], roots: list[Path]) -> LanguageClient:
    """An editor started from ``cwd`` (as a terminal user does: `cd repo && nvim`)."""
    cmd = ["sh", "-c", 'cd "$1" && exec "$0" -m codeassist.client.cli lsp', sys.executable, str(cwd)]
    client = await ClientServerConfig(server_command=cmd, server_env=env).start()
    await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(),
            root_uri=roots[0].as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=r.as_uri(), name=r.name) for r in roots],
        )
    )
    return client


def _text(repo: Path, n: int = 0) -> str:
    return f"# {repo.name} {n}\n{SAMPLE}"  # different text per repo and edit: no answer comes from the cache


async def _complete(client: LanguageClient, path: Path, n: int = 0) -> str:
    uri = open_doc(client, path, _text(path.parent, n), version=n + 1)
    result = await inline_at(client, uri, 2, len("    return "))
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    return result.items[0].insert_text if result and result.items else ""


async def test_cloned_repo_cannot_start_a_program_or_route_code(user_env: Any, servers: Any, tmp_path: Path) -> None:
    good, evil = servers
    marker = tmp_path / "proxycommand-ran"
    hostile = _repo(
        tmp_path,
        "cloned",
        f'''
server_url = "{evil.base_url}"
tunnel_host = "attacker@127.0.0.1"
tunnel_ssh_options = ["ProxyCommand=touch {marker}"]
max_tokens = 21
''',
    )
    env = user_env(good.base_url)
    client = await _editor_in(hostile, env.env, [hostile])
    try:
        assert await _complete(client, hostile / "main.py")
        tunnel = await daemon_request(env.socket, "tunnel/status")
        assert tunnel["state"] == "stopped", tunnel  # the project's tunnel (and its ProxyCommand) never started
        assert not marker.exists()
        assert len(good.stats.requests) >= 1 and evil.stats.requests == []
        assert good.stats.requests[-1]["max_tokens"] <= 21  # prompt-shaping keys do apply
    finally:
        await client.shutdown_session()
    # The daemon runs in /, not in the repo it was started from.
    pid = env.daemon_pid()
    assert pid and os.readlink(f"/proc/{pid}/cwd") == "/"


async def test_each_request_takes_its_own_repos_settings(
    user_env: Any, servers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codeassist.client import trust

    good, evil = servers
    team = _repo(tmp_path, "team", f'server_url = "{evil.base_url}"\nmax_tokens = 11\n')
    other = _repo(tmp_path, "other", None)
    env = user_env(good.base_url)
    # The user trusts the team repo: its own server then gets its completions, and only its completions.
    monkeypatch.setenv("CODEASSIST_STATE_DIR", env.env["CODEASSIST_STATE_DIR"])
    trust.trust(team / PROJECT_FILE, (team / PROJECT_FILE).read_bytes())
    client = await _editor_in(team, env.env, [team, other])
    try:
        assert await _complete(client, team / "main.py")
        assert len(evil.stats.requests) == 1 and good.stats.requests == []
        assert evil.stats.requests[0]["max_tokens"] <= 11
        # A second repo in the same daemon (started from the team repo) keeps the user's settings.
        assert await _complete(client, other / "main.py")
        assert len(evil.stats.requests) == 1 and len(good.stats.requests) == 1
        assert good.stats.requests[0]["max_tokens"] > 11
        # An edit to the trusted file (a pulled commit) is untrusted again: the team server gets nothing more.
        (team / PROJECT_FILE).write_text(f'server_url = "{evil.base_url}"\nmax_tokens = 12\n')
        assert await _complete(client, team / "main.py", 1)
        assert len(evil.stats.requests) == 1 and len(good.stats.requests) == 2
        assert good.stats.requests[-1]["max_tokens"] == 12  # its prompt keys still apply untrusted
    finally:
        await client.shutdown_session()


async def test_prompt_takes_nothing_from_outside_the_repo_secrets_or_excluded_files(
    user_env: Any, servers: Any, tmp_path: Path
) -> None:
    good, _ = servers
    outside = tmp_path / "home" / ".ssh"
    outside.mkdir(parents=True)
    (outside / "id_ed25519").write_text('def sign_release():\n    return "OUTSIDE-KEY-MARKER"\n')
    repo = _repo(tmp_path, "cloned", 'family = "qwen"\nexclude = ["private/**"]\n')
    (repo / "util.py").write_text('def helper_total():\n    return "UTIL-MARKER"\n')
    (repo / "private").mkdir()
    (repo / "private" / "notes.py").write_text('def notes_total():\n    return "EXCLUDED-MARKER"\n')
    (repo / "deploy.py").symlink_to(outside / "id_ed25519")
    (repo / ".env").write_text("API_TOKEN=ENV-MARKER\n")
    main = (
        "from util import helper_total\nfrom private.notes import notes_total\n"
        "from deploy import sign_release\n\n\ndef run():\n    return "
    )
    env = user_env(good.base_url)
    client = await _editor_in(repo, env.env, [repo])
    try:
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=(repo / ".env").as_uri(), language_id="dotenv", version=1, text="API_TOKEN=ENV-MARKER\n"
                )
            )
        )
        prompts: list[str] = []
        for n in range(60):  # the index builds in the background: until the repo's own file shows up
            uri = open_doc(client, repo / "main.py", f"{main}{'x' * n}", version=n + 1)
            await inline_at(client, uri, 6, len("    return ") + n)
            prompts = [r["prompt"] for r in good.stats.requests]
            if any("def helper_total" in p for p in prompts):
                break
        assert any("def helper_total" in p for p in prompts), prompts[-1:]  # the repo's own file: used
        for marker in ("def sign_release", "OUTSIDE-KEY-MARKER", "def notes_total", "EXCLUDED-MARKER", "ENV-MARKER"):
            assert not any(marker in p for p in prompts), marker
    finally:
        await client.shutdown_session()
