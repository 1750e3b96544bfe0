"""Fixtures for the client tests."""

from __future__ import annotations

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
