"""`codeassist doctor` says what prompt budget the daemon uses for the server, and why (its probes teach the
daemon the server's speed): a real daemon, the scripted stand-in over real HTTP."""

from __future__ import annotations

import json
from typing import Any

from codeassist.serverkit.standin import StandinBehaviour, StandinServer


def test_doctor_shows_the_effective_budget_and_why(daemon_env_factory: Any) -> None:
    server = StandinServer(behaviour=StandinBehaviour(tokens=["a + b", "\n"])).start()
    try:
        env = daemon_env_factory(server.base_url)
        text = env.run("doctor", "-n", "2").stdout
        report = json.loads(env.run("doctor", "-n", "1", "--json").stdout)
    finally:
        server.stop()
    line = next(ln for ln in text.splitlines() if "] prompt" in ln)
    # The probes taught the daemon the stand-in's speed (answers at once: a fast server keeps the configured budget)
    assert line.startswith("[ ok ]") and "prompt budget 2048 tokens" in line and "tokens/s" in line, text
    assert report["latency"]["server"]["effective_budget"] == 2048
    assert report["latency"]["server"]["slow"] is False
