"""The daemon builds its prompts with the context engine: a document of a small git repo opened over the daemon
socket gets a cross-file definition (found through the repo index) in the prompt sent to the model server.

The model server here is the stand-in (server-kit/standin.py), which records every request body, so the test
can read the exact prompt the daemon sent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from codeassist.client.daemon_client import connect


async def test_daemon_prompt_carries_cross_file_definition(
    daemon_env_factory, standin, make_repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = daemon_env_factory(standin.base_url)
    env.env["CODEASSIST_ENGINE_MODE"] = "direct"
    for key, value in env.env.items():
        if key.startswith("CODEASSIST_"):
            monkeypatch.setenv(key, value)
    root = make_repo("pyresolve")
    path = root / "app" / "service.py"
    text = path.read_text()
    offset = text.index("        return value")
    conn = await connect()  # spawns the isolated daemon
    try:
        await asyncio.wait_for(conn.request("workspace/roots", {"roots": [str(root)]}), 30)
        uri = path.as_uri()
        deadline = time.monotonic() + 30
        prompts: list[str] = []
        n = 0
        while time.monotonic() < deadline:
            # A new line just above the cursor each time: no completion cache can answer instead of the server
            # (the first request of a session, before the server's speed is known, has a small budget)
            n += 1
            line = f"        step = {n}\n"
            body = text[:offset] + line + text[offset:]
            await conn.request("doc/open", {"uri": uri, "text": body, "language": "python"})
            result: dict[str, Any] = await asyncio.wait_for(
                conn.request("complete", {"uri": uri, "offset": offset + len(line)}), 30
            )
            assert "text" in result
            prompts = [str(r.get("prompt", "")) for r in standin.stats.requests]
            if any("def fetch_all(self, limit: int = 10)" in p for p in prompts):
                break
            await asyncio.sleep(0.2)  # the cold index runs in the background
    finally:
        await conn.aclose()
    assert prompts, "the daemon sent nothing to the model server"
    sent = next((p for p in prompts if "def fetch_all(self, limit: int = 10)" in p), None)
    assert sent is not None, prompts[-1][:2000]
    assert "app/models.py" in sent  # the snippet's path header
    assert "def slugify(title: str" in sent  # `text.slugify` through `from .util import text`
    assert "def label(self, title):" in sent  # and the document's own window around the cursor
