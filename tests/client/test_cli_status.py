"""`codeassist status` is a readable block (no Python dicts, no epoch floats); `--json` stays machine-readable."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from codeassist.serverkit.standin import StandinServer

from tests.realparts import write_sample


def _fields(out: str) -> dict[str, str]:
    """``key: value`` lines at the left margin (indented lines belong to the field above)."""
    return {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in out.splitlines() if ln[:1].isalpha())}


def test_status_is_a_readable_block_and_json_stays_json(daemon_env_factory: Any, tmp_path: Path) -> None:
    server = StandinServer().start()
    env = daemon_env_factory(server.base_url)
    _, loc = write_sample(tmp_path)
    try:
        assert env.run("complete", loc).returncode == 0
    finally:
        server.stop()  # the next request finds it down: status then has a "down since" time to show
    r = env.run("complete", loc.replace(":2:12", ":2:5"))
    assert "error" in r.stderr or r.returncode == 1, (r.stdout, r.stderr)

    out = env.run("status")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert not re.search(r"[{}\[\]]|'\w+':|None", text), text  # no Python reprs
    assert not re.search(r"\b1\d{9}(\.\d+)?\b", text), text  # no epoch seconds
    lines = [ln for ln in text.splitlines() if ln.strip()]
    colons = {ln.index(":") for ln in lines if ln[:1].isalpha()}
    assert len(colons) == 1, text  # aligned key: value lines
    fields = _fields(text)
    assert re.fullmatch(r"\d+(\.\d)? s", fields["uptime"]), text
    assert fields["requests"].startswith("2 ") and "1 completion" in fields["requests"], text
    assert fields["connectivity"].startswith("down"), text
    assert fields["telemetry"].startswith("on: aggregate counts only"), text  # issue 18: shown in status too
    assert re.search(r"down since\s*: [\d.]+ (s|min) ago", text), text
    assert server.base_url in text and "connect" in text  # the endpoint and why it is down

    data = json.loads(env.run("status", "--json").stdout)
    assert data["running"] is True and isinstance(data["connectivity"], dict)
    assert isinstance(data["connectivity"]["down_since"], float)


def test_status_without_a_daemon(daemon_env_factory: Any) -> None:
    env = daemon_env_factory("http://127.0.0.1:9/v1")
    r = env.run("status")
    assert r.returncode == 3 and r.stdout.strip() == "daemon: not running"
    assert json.loads(env.run("status", "--json").stdout) == {"running": False}
