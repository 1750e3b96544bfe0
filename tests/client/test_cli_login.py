"""`codeassist login` in a developer's first hour: a key-less server, a URL without /v1, https:// to a plain-HTTP
server, and a key piped in with the lines around it (`server-kit keys add ... | codeassist login --key-stdin`)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from codeassist.client.auth import redact
from codeassist.serverkit.standin import StandinServer

from tests.realparts import AuthProxy

KEY = "ca-" + secrets.token_hex(6) + "." + secrets.token_urlsafe(24)


@pytest.fixture
def upstream() -> Iterator[StandinServer]:
    server = StandinServer().start()
    yield server
    server.stop()


@pytest.fixture
def gate(upstream: StandinServer) -> Iterator[AuthProxy]:
    proxy = AuthProxy(upstream.base_url, token=KEY).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def open_gate(upstream: StandinServer) -> Iterator[AuthProxy]:
    proxy = AuthProxy(upstream.base_url).start()  # checks no key: any key "works"
    yield proxy
    proxy.stop()


def _env(daemon_env_factory: Any, url: str) -> Any:
    env = daemon_env_factory(url)
    env.env["CODEASSIST_KEYRING"] = "file"
    return env


def _creds(env: Any) -> dict[str, str]:
    path = Path(env.env["CODEASSIST_CONFIG_DIR"]) / "credentials.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_a_keyless_server_is_said_to_need_no_key_and_nothing_is_stored(
    daemon_env_factory: Any, open_gate: AuthProxy
) -> None:
    env = _env(daemon_env_factory, open_gate.url)
    r = env.run("login", "--key-stdin", input="sk-anything-at-all-1234\n")
    assert r.returncode == 0, r.stderr
    assert "key accepted" not in r.stdout
    assert "needs no API key" in r.stdout and "nothing stored" in r.stdout and "--force" in r.stdout
    assert _creds(env) == {}
    assert all(a == "" for a in open_gate.seen_auth)  # the key never went to a server that needs none

    r = env.run("login", "--key-stdin", "--force", input="sk-anything-at-all-1234\n")
    assert r.returncode == 0, r.stderr
    assert "stored" in r.stdout and list(_creds(env).values()) == ["sk-anything-at-all-1234"]


def test_a_url_without_v1_gets_the_v1_url_suggested(daemon_env_factory: Any, gate: AuthProxy) -> None:
    base = gate.url.removesuffix("/v1")
    env = _env(daemon_env_factory, gate.url)
    r = env.run("login", base, "--key-stdin", input=KEY + "\n")
    assert r.returncode == 2
    assert f"{base}/models answered HTTP 404" in r.stderr
    assert f"{base}/v1/models answers" in r.stderr and f"codeassist login {base}/v1" in r.stderr
    assert "nothing stored" in r.stderr and _creds(env) == {}
    assert KEY not in r.stdout + r.stderr and f"Bearer {KEY}" not in gate.seen_auth


def test_https_to_a_plain_http_server_says_so(daemon_env_factory: Any, upstream: StandinServer) -> None:
    url = f"https://127.0.0.1:{upstream.port}/v1"
    env = _env(daemon_env_factory, url)
    r = env.run("login", url, "--key-stdin", input=KEY + "\n")
    assert r.returncode == 2
    assert "WRONG_VERSION_NUMBER" not in r.stderr and "Traceback" not in r.stderr
    assert f"this server speaks plain HTTP; use http://127.0.0.1:{upstream.port}/v1" in r.stderr
    assert "trusted network" in r.stderr and "TLS in front" in r.stderr
    assert _creds(env) == {}


@pytest.mark.parametrize(
    ("stdin", "line"),
    [
        (
            f"key for carol (id 0a1b2c3d4e5f, class ≤ interactive, expires never).\n"
            f"Shown once; store it in the developer's keyring (`codeassist login`):\n{KEY}\n",
            3,
        ),
        (f"key for carol: {KEY}\n", 1),
        (f"\n  {KEY}  \n", 2),
    ],
    ids=["keys-add-output", "labelled-line", "blank-line-first"],
)
def test_key_stdin_takes_the_first_key_looking_token(
    daemon_env_factory: Any, gate: AuthProxy, stdin: str, line: int
) -> None:
    env = _env(daemon_env_factory, gate.url)
    r = env.run("login", "--key-stdin", input=stdin)
    assert r.returncode == 0, r.stderr
    assert f"took the API key {redact(KEY)} from line {line} of stdin" in r.stderr
    assert KEY not in r.stdout + r.stderr
    assert list(_creds(env).values()) == [KEY]


def test_key_stdin_without_a_key_stores_nothing(daemon_env_factory: Any, gate: AuthProxy) -> None:
    env = _env(daemon_env_factory, gate.url)
    r = env.run("login", "--key-stdin", input="here is your key\nsee https://gpu.example.com/docs/keys\n")
    assert r.returncode == 2
    assert "no API key on stdin" in r.stderr and "2 lines" in r.stderr and "nothing stored" in r.stderr
    assert all(a == "" for a in gate.seen_auth) and _creds(env) == {}
