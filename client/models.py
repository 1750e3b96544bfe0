"""Which model a request goes to and its FIM family: asked of the server's ``/v1/models`` once per
transport (the user's server, or a trusted project's own) and remembered until the server changes."""

from __future__ import annotations

import asyncio
import logging

from codeassist.client.project import Route
from codeassist.client.transport.base import Transport, TransportError
from codeassist.context.templates import detect_family

__all__ = ["ModelResolver"]

log = logging.getLogger(__name__)


class ModelResolver:
    def __init__(self) -> None:
        self._served: dict[int, str] = {}  # id(transport) -> the first model it serves
        self._lock = asyncio.Lock()
        self.last: tuple[str, str] | None = None  # the latest (model, family), for `codeassist status`

    async def resolve(self, route: Route) -> tuple[str, str]:
        """(model, family): the config's own when set (``model``, ``family``), else what the server says."""
        model = route.config.model or await self._served_model(route.transport)
        family = route.config.family if route.config.family != "auto" else detect_family(model)
        if self.last != (model, family):
            log.info("model %s, family %s", model, family)
            self.last = (model, family)
        return model, family

    async def _served_model(self, transport: Transport) -> str:
        if (model := self._served.get(id(transport))) is not None:
            return model
        async with self._lock:
            if (model := self._served.get(id(transport))) is None:
                models = await transport.models()
                if not models:
                    raise TransportError("protocol", "the server serves no model")
                model = self._served[id(transport)] = models[0]
            return model

    def forget(self) -> None:
        """The server changed: ask again."""
        self._served.clear()
        self.last = None
