"""Request priority classes, shared by the client (what it asks for) and the gateway (what it enforces).

Lower value = served first; the value is what vLLM's ``--scheduling-policy priority`` takes.
"""

from __future__ import annotations

__all__ = ["CLASSES", "VALUE"]

CLASSES: tuple[str, ...] = ("interactive", "chat", "prefetch", "batch")
VALUE: dict[str, int] = {"interactive": 0, "chat": 5, "prefetch": 10, "batch": 20}
