"""JSON audit log, one line per request, size-rotated. Never holds prompt text, completions or keys.

Written with one ``os.write`` per request on an ``O_APPEND`` descriptor (a line is complete on disk when
the request finishes), without the logging module's per-record machinery (caller lookup, locks, a
stat and a seek per record in ``RotatingFileHandler``): the size is tracked here.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["AuditLog"]

FIELDS = (
    "user",
    "key_id",
    "model",
    "class",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "ttft_ms",
    "replica",
    "reason",
)
_dumps = json.JSONEncoder(separators=(",", ":")).encode


class AuditLog:
    def __init__(self, path: Path | None, max_bytes: int = 20 * 1024 * 1024, backups: int = 5) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self._fd: int | None = None
        self._size = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._open()

    def _open(self) -> None:
        assert self.path is not None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        assert self.path is not None and self._fd is not None
        os.close(self._fd)
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                src = self.path.with_name(f"{self.path.name}.{i}")
                if src.exists():
                    os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            os.truncate(self.path, 0)
        self._open()

    def record(self, **fields: object) -> None:
        if self._fd is None:
            return
        entry: dict[str, object] = {"ts": round(time.time(), 3)}
        for k in FIELDS:  # only these: never a prompt or a key, whatever the caller passes
            v = fields.get(k)
            if v is not None:
                entry[k] = v
        line = (_dumps(entry) + "\n").encode()
        if self._size and self._size + len(line) > self.max_bytes:
            self._rotate()
        os.write(self._fd, line)
        self._size += len(line)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
