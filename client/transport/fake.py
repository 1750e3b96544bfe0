"""A Transport that answers from a function, for tests and benchmarks (as httpx ships ``MockTransport``).

No sockets: it isolates what the daemon itself does. Anything that is about the wire (timeouts, drops,
streaming) belongs to the scripted stand-in server (``server-kit/standin.py``) over real HTTP instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

from codeassist.client.transport.base import CompletionParams, StreamChunk

__all__ = ["FakeTransport"]

Answer = Callable[[CompletionParams], "str | Iterable[str]"]


class FakeTransport:
    def __init__(
        self,
        answer: Answer | str = "",
        models: Iterable[str] = ("fake-model",),
        on_request: Callable[[CompletionParams], None] | None = None,
    ) -> None:
        self._answer = answer
        self._models = list(models)
        self._on_request = on_request
        self.requests: list[CompletionParams] = []

    async def models(self) -> list[str]:
        return list(self._models)

    async def slots(self) -> int | None:
        return 0

    async def stream(
        self, params: CompletionParams, timings: dict[str, float] | None = None
    ) -> AsyncIterator[StreamChunk]:
        self.requests.append(params)
        if self._on_request is not None:
            self._on_request(params)
        out = self._answer(params) if callable(self._answer) else self._answer
        for piece in [out] if isinstance(out, str) else out:
            if timings is not None:
                timings.setdefault("ttft_ms", 0.0)
            yield StreamChunk(text=piece)
        if timings is not None:
            timings["total_ms"] = 0.0

    async def aclose(self) -> None:
        pass
