"""Gateway fixtures: a hashed key store in tmp, and the gateway on a real loopback socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from codeassist.serverkit.gateway.config import GatewayConfig
from codeassist.serverkit.gateway.server import GatewayServer
from gwhelpers import Keys


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


@pytest.fixture
def gateway_factory() -> Iterator[Callable[..., GatewayServer]]:
    made: list[GatewayServer] = []

    def make(cfg: GatewayConfig, **kw) -> GatewayServer:
        g = GatewayServer(cfg, **kw).start()
        made.append(g)
        return g

    yield make
    for g in made:
        g.stop()
