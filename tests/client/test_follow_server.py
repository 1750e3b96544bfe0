"""A running daemon follows a changed server: `codeassist login NEW_URL` (or an edit of the user config)
moves the next completion to the new server, and `status` shows the server actually in use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codeassist.serverkit.standin import StandinServer

from tests.realparts import AuthProxy, write_sample


def test_login_moves_the_running_daemon_to_the_new_server(user_env: Any, tmp_path: Path) -> None:
    old, new = StandinServer().start(), StandinServer().start()
    gate = AuthProxy(new.base_url, token="sk-new-server-0123456789").start()
    try:
        env = user_env(old.base_url)
        cfg = env.user_config
        path, loc = write_sample(tmp_path)
        r = env.run("complete", loc)
        assert r.returncode == 0, r.stderr
        assert len(old.stats.requests) == 1

        r = env.run("login", gate.url, "--key-stdin", input="sk-new-server-0123456789\n")
        assert r.returncode == 0, r.stderr
        path.write_text("# second\n" + path.read_text())  # another text: not answered from the cache
        r = env.run("complete", f"{path}:3:12")
        assert r.returncode == 0, r.stderr
        assert len(old.stats.requests) == 1 and len(new.stats.requests) == 1
        assert new.stats.headers[-1].get("authorization") is None  # the gate took it; the key reached the gate
        status = json.loads(env.run("status", "--json").stdout)
        assert status["server_url"] == gate.url and status["server_in_use"] == gate.url

        # An edit of the user config alone (no login) is followed too.
        cfg.write_text(f'server_url = "{old.base_url}"\n')
        path.write_text("# third\n" + path.read_text())
        r = env.run("complete", f"{path}:4:12")
        assert len(old.stats.requests) == 2, (r.stdout, r.stderr)
        status = json.loads(env.run("status", "--json").stdout)
        assert status["server_in_use"] == old.base_url
    finally:
        gate.stop()
        old.stop()
        new.stop()
