"""Fixtures for the client tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def user_env(daemon_env_factory: Any) -> Any:
    """An isolated daemon environment whose server comes from the user's own config file (not the environment:
    the environment would override every project file, and these tests are about project files and config)."""

    def make(server_url: str) -> Any:
        env = daemon_env_factory(server_url)
        env.env.pop("CODEASSIST_SERVER_URL")
        env.env["CODEASSIST_KEYRING"] = "file"
        env.user_config = Path(env.env["CODEASSIST_CONFIG_DIR"]) / "config.toml"
        env.user_config.parent.mkdir(parents=True, exist_ok=True)
        env.user_config.write_text(f'server_url = "{server_url}"\n')
        return env

    return make


@pytest.fixture
async def make_engine(standin: Any) -> AsyncIterator[Callable[..., Any]]:
    """Engines over real HTTP to the scripted stand-in, closed after the test: ``make_engine(debounce_ms,
    clock=None, **config)`` (a fixed debounce of ``debounce_ms``; other ``Config`` fields as given)."""
    from codeassist.client.config import Config
    from codeassist.client.engine import CompletionEngine
    from codeassist.client.transport.http import HttpTransport

    made: list[CompletionEngine] = []

    def make(debounce_ms: float = 0.0, clock: Any = None, **config: Any) -> CompletionEngine:
        cfg = Config(
            server_url=standin.base_url,
            debounce_min_ms=debounce_ms,
            debounce_max_ms=debounce_ms,
            family="plain",
            **config,
        )
        engine = CompletionEngine(cfg, HttpTransport(standin.base_url), clock=clock)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        await engine.aclose()
        await engine.transport.aclose()
