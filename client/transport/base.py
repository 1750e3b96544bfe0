"""The seam between the completion pipeline and a model server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["CompletionParams", "StreamChunk", "Transport", "TransportError"]


class TransportError(Exception):
    """A request to the model server failed; ``kind`` says how (for doctor and stats)."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # connect | first_token_timeout | total_timeout | http | protocol | auth
        self.status = status


@dataclass(frozen=True)
class CompletionParams:
    prompt: str
    model: str
    max_tokens: int = 64
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    # Gateway priority class, one of priority.CLASSES
    priority: str = "interactive"
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamChunk:
    text: str
    finish_reason: str | None = None


class Transport(Protocol):
    def stream(self, params: CompletionParams, timings: dict[str, float] | None = None) -> AsyncIterator[StreamChunk]:
        """The completion's chunks; fills ``timings`` (the caller's dict: ttft_ms, total_ms, ...) if given."""
        ...

    async def models(self) -> list[str]: ...

    async def slots(self) -> int | None:
        """llama-server's slot count on this machine (its ``/props``); 0: none to pin to (another server, or a
        shared one: its slots are everyone's); None: not known now (unreachable: ask again later)."""
        ...

    async def aclose(self) -> None: ...
