"""The bridge's log: stderr, one line per record, so malformed input can never flood it with tracebacks."""

from __future__ import annotations

import logging
import os

__all__ = ["OneLineFormatter", "configure_logging", "one_line"]


def one_line(value: object, limit: int = 300) -> str:
    """Client-controlled text for a log line or an error message: line breaks escaped, length capped."""
    text = str(value).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit] + "…"


class OneLineFormatter(logging.Formatter):
    """Escapes line breaks; an exception shows as its type and message, never a traceback."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.replace("\r", "\\r").replace("\n", "\\n")

    def formatException(self, ei: object) -> str:
        exc = ei[1] if isinstance(ei, tuple) else None
        return f"({type(exc).__name__}: {exc})" if exc is not None else ""

    def formatStack(self, stack_info: str) -> str:
        return ""


def configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("CODEASSIST_LOG_LEVEL", "WARNING"))
