"""Gateway fixtures: a hashed key store in tmp, and the gateway on a real loopback socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from codeassist.serverkit.gateway.server import GatewayServer
from gwhelpers import Keys

from tests.conftest import made_and_closed


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


@pytest.fixture
def gateway_factory() -> Iterator[Callable[..., GatewayServer]]:
    """``make(cfg, **kw)``: a started gateway on a loopback port; each stopped after the test."""
    yield from made_and_closed(lambda cfg, **kw: GatewayServer(cfg, **kw).start(), GatewayServer.stop)
