"""What the engine answers for one completion request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CompletionResult"]


@dataclass
class CompletionResult:
    text: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    source: str = "model"  # model | cache | prefetch | none | cancelled
    multiline: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    typed: int = 0  # characters of a cached completion the user typed through before this answer
    replace_suffix_chars: int = 0  # characters right after the cursor the text replaces (the editor's closers)
    partial: bool = False  # the first line of a multi-line answer whose rest is still streaming into the cache

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "id": self.id,
            "source": self.source,
            "multiline": self.multiline,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "error": self.error,
            "replace_suffix_chars": self.replace_suffix_chars,
        }
