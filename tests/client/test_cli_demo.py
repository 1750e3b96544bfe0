"""`codeassist demo`: reuses a model server already on its port, names --port when the port is taken by something
else, and ends by saying what happened and what to do next."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from codeassist.serverkit.standin import StandinBehaviour, StandinServer

from tests.conftest import free_port


@pytest.fixture
def not_a_model_server() -> Iterator[int]:
    """An HTTP server on a port that is not an OpenAI-compatible model server (404 everywhere)."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_demo_reuses_the_model_server_on_its_port_and_says_what_next(daemon_env_factory: Any) -> None:
    # The configured server is elsewhere (down); the local one already runs on --port: use it, do not fail.
    server = StandinServer(behaviour=StandinBehaviour(tokens=["width", " * height", "\n"])).start()
    try:
        env = daemon_env_factory(f"http://127.0.0.1:{free_port()}/v1")
        r = env.run("demo", "--port", str(server.port), timeout=120)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert "in use" not in r.stdout + r.stderr
        assert f"using the model server already running at http://127.0.0.1:{server.port}/v1" in r.stdout
        assert len(server.stats.requests) >= 2  # steps 1 and 2 went to it
    finally:
        server.stop()
    tail = r.stdout.rsplit("3. you type", 1)[1]
    assert "plumbing check, not a coding model" in tail and "step 3 came from the cache" in tail
    for next_step in ("codeassist login", "codeassist doctor", "Neovim", "VS Code", "README"):
        assert next_step in tail, tail


def test_demo_names_port_when_something_else_holds_it(daemon_env_factory: Any, not_a_model_server: int) -> None:
    env = daemon_env_factory(f"http://127.0.0.1:{free_port()}/v1")
    r = env.run("demo", "--port", str(not_a_model_server), timeout=60)
    assert r.returncode == 1
    message = r.stderr.strip().splitlines()[-1]
    assert f"port {not_a_model_server}" in message and "not an OpenAI-compatible model server" in message
    assert "--port" in message and "Traceback" not in r.stderr
