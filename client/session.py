"""Everything the completion engine keeps for one open document, in one object.

Closing the document drops this object (after cancelling what it holds); nothing about a document lives
anywhere else in the engine except its speculation (owned by the ``Prefetcher``) and the completions shown
from it (kept by completion id, for accepts).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from codeassist.client.clock import Timer
from codeassist.client.upstream import Upstream

__all__ = ["DocSession"]


@dataclass
class DocSession:
    uri: str
    waiting: asyncio.Task[Any] | None = None  # the request in its debounce (or joining the one on the wire)
    upstream: Upstream | None = None  # the interactive request on the wire
    idle_parse: Timer | None = None  # the context re-parse armed for the next pause
    partly_taken: bool = False  # its shown completion was accepted only in part

    def drop_upstream(self) -> None:
        if (up := self.upstream) is not None:
            self.upstream = None
            if up.grace is not None:
                up.grace.cancel()
            up.task.cancel()

    def close(self) -> None:
        """Cancel everything in flight for the document."""
        if self.idle_parse is not None:
            self.idle_parse.cancel()
            self.idle_parse = None
        if self.waiting is not None:
            self.waiting.cancel()
            self.waiting = None
        self.drop_upstream()
