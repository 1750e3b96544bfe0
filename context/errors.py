"""The context engine's exceptions, in one tree.

ContextError            anything the engine reports to a caller as a clear message
 └── PositionError      a cursor that is not inside the document (past end of line/file, mid character)
"""

from __future__ import annotations

__all__ = ["ContextError", "PositionError"]


class ContextError(ValueError):
    pass


class PositionError(ContextError):
    pass
