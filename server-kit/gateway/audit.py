"""JSON audit log, one line per request, size-rotated. Never holds prompt text, completions or keys."""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from pathlib import Path

__all__ = ["AuditLog"]

FIELDS = ("user", "key_id", "model", "class", "status", "prompt_tokens", "completion_tokens", "latency_ms",
          "ttft_ms", "replica", "reason")


class AuditLog:
    def __init__(self, path: Path | None, max_bytes: int = 20 * 1024 * 1024, backups: int = 5) -> None:
        self._log = logging.getLogger(f"codeassist.serverkit.audit.{id(self)}")
        self._log.propagate = False
        self._log.setLevel(logging.INFO)
        self._handler: logging.Handler | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups)
            self._handler.setFormatter(logging.Formatter("%(message)s"))
            self._log.addHandler(self._handler)

    def record(self, **fields: object) -> None:
        if self._handler is None:
            return
        entry = {"ts": round(time.time(), 3)}
        entry.update((k, v) for k, v in fields.items() if k in FIELDS and v is not None)
        self._log.info(json.dumps(entry, separators=(",", ":")))

    def close(self) -> None:
        if self._handler is not None:
            self._log.removeHandler(self._handler)
            self._handler.close()
