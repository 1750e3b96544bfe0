"""The completion pipeline inside the daemon: document -> prompt -> model server -> clean text."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from codeassist.client.config import Config
from codeassist.client.documents import Document
from codeassist.client.transport.base import CompletionParams, Transport, TransportError
from codeassist.context.templates import detect_family, template_for
from codeassist.context.window import PromptParts, simple_window

__all__ = ["CompletionEngine", "CompletionResult"]

log = logging.getLogger(__name__)


@dataclass
class CompletionResult:
    text: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    source: str = "model"  # model | cache | prefetch | none
    multiline: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "id": self.id,
            "source": self.source,
            "multiline": self.multiline,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "error": self.error,
        }


class CompletionEngine:
    def __init__(self, config: Config, transport: Transport) -> None:
        self.config = config
        self.transport = transport
        self._model: str | None = config.model or None
        self._family: str | None = None if config.family == "auto" else config.family
        self._resolve_lock = asyncio.Lock()

    async def resolve_model(self) -> tuple[str, str]:
        """Served model id and FIM family, asked of ``/v1/models`` once and then remembered."""
        if self._model and self._family:
            return self._model, self._family
        async with self._resolve_lock:
            if not self._model:
                models = await self.transport.models()
                if not models:
                    raise TransportError("protocol", "the server serves no model")
                self._model = models[0]
            if not self._family:
                self._family = detect_family(self._model)
            log.info("model %s, family %s", self._model, self._family)
            return self._model, self._family

    def build_prompt(self, doc: Document, offset: int, family: str) -> PromptParts:
        return simple_window(doc.text, offset, template_for(family))

    @staticmethod
    def wants_multiline(text: str, offset: int) -> bool:
        """Multi-line only when the rest of the line is blank (not mid-line)."""
        eol = text.find("\n", offset)
        rest = text[offset : eol if eol >= 0 else len(text)]
        return rest.strip() == ""

    async def complete(self, doc: Document, offset: int, priority: str = "interactive") -> CompletionResult:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        try:
            model, family = await self.resolve_model()
        except TransportError as exc:
            return CompletionResult(text="", source="none", error=f"{exc.kind}: {exc}",
                                    timings={"total_ms": (time.perf_counter() - t0) * 1000})
        parts = self.build_prompt(doc, offset, family)
        multiline = self.wants_multiline(doc.text, offset)
        template = template_for(family)
        stop = list(template.stop)
        if not multiline:
            stop.append("\n")
        params = CompletionParams(
            prompt=parts.prompt,
            model=model,
            max_tokens=self.config.max_tokens if multiline else min(self.config.max_tokens, 32),
            temperature=self.config.temperature,
            stop=tuple(stop),
            priority=priority,
        )
        timings["context_ms"] = (time.perf_counter() - t0) * 1000
        t_send = time.perf_counter()
        pieces: list[str] = []
        error = None
        try:
            async for chunk in self.transport.stream(params):
                if "ttft_ms" not in timings:
                    timings["ttft_ms"] = (time.perf_counter() - t_send) * 1000
                pieces.append(chunk.text)
        except TransportError as exc:
            error = f"{exc.kind}: {exc}"
            log.warning("completion failed: %s", error)
        timings["model_ms"] = (time.perf_counter() - t_send) * 1000
        text = self.clean("".join(pieces), doc.text, offset, multiline, template.stop)
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        timings["daemon_ms"] = timings["total_ms"] - timings["model_ms"]
        return CompletionResult(text=text, source="model" if text else "none", multiline=multiline,
                                timings=timings, error=error)

    @staticmethod
    def clean(raw: str, text: str, offset: int, multiline: bool, stops: tuple[str, ...]) -> str:
        for s in stops:
            cut = raw.find(s)
            if cut >= 0:
                raw = raw[:cut]
        if not multiline:
            raw = raw.split("\n", 1)[0]
        return raw.rstrip()
