"""Which model a request goes to and its FIM family: asked of the server's ``/v1/models`` once per
transport (the user's server, or a trusted project's own) and remembered until the server changes."""

from __future__ import annotations

import asyncio
import logging

from codeassist.client.config import Config
from codeassist.client.project import Route
from codeassist.client.transport.base import Transport, TransportError
from codeassist.context.templates import detect_family

__all__ = ["ModelResolver", "family_reason"]

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


def family_reason(config: Config, model: str) -> str:
    """Why ``ModelResolver.resolve`` gives its family for a route with ``config`` and ``model`` (the same rule, in
    words, for ``codeassist context``): a ``family`` the config sets, else the model's name."""
    if config.family != "auto":
        return f"family = {config.family!r} in {config.sources.get('family', 'the config')}"
    if config.model:
        where = f"model = {model!r} in {config.sources.get('model', 'the config')}"
    else:
        where = f"the server serves {model!r} (its /v1/models)"
    family = detect_family(model)
    if family == "plain":
        return f"{where}: no known FIM family in its name, so plain prefix completion"
    return f"{where}: its name says {family}"
