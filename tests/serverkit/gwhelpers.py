"""Helpers shared by the server-kit tests (imported as `gwhelpers`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from codeassist.serverkit.gateway.config import GatewayConfig
from codeassist.serverkit.gateway.keys import KeyStore

PEPPER = b"test-pepper-0123456789"


class Keys:
    def __init__(self, root: Path) -> None:
        self.path = root / "keys.json"
        self.store = KeyStore(self.path, PEPPER)

    def add(self, user: str, **kw) -> str:
        key, _ = self.store.add(user, **kw)
        return key

    def config(self, **kw) -> GatewayConfig:
        return replace(GatewayConfig(keys_file=self.path, pepper=PEPPER), **kw)


def auth(key: str, priority: str | None = None) -> dict[str, str]:
    h = {"authorization": f"Bearer {key}"}
    if priority:
        h["x-priority"] = priority
    return h


def body(prompt: str = "def f():", max_tokens: int = 8, stream: bool = True, **kw) -> dict:
    return {"model": "m", "prompt": prompt, "max_tokens": max_tokens, "stream": stream, **kw}


def wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()
