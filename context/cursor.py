"""1-based FILE:LINE:COL positions -> code-point offsets, with clear errors for positions that do not exist."""

from __future__ import annotations

from codeassist.context.errors import PositionError

__all__ = ["cursor_offset"]


def cursor_offset(text: str, line: int, col: int, utf16: bool = False) -> int:
    """Offset of 1-based ``line``/``col`` (``col`` in characters, or UTF-16 code units when ``utf16``)."""
    if line < 1 or col < 1:
        raise PositionError(f"line and column are 1-based, got {line}:{col}")
    start = 0
    for n in range(1, line):
        nl = text.find("\n", start)
        if nl < 0:
            raise PositionError(f"line {line} is past the end of the file ({n} lines)")
        start = nl + 1
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    if end > start and text[end - 1] == "\r":
        end -= 1
    want, units, i = col - 1, 0, start
    while i < end and units < want:
        units += 2 if utf16 and ord(text[i]) > 0xFFFF else 1
        i += 1
    if units > want:
        raise PositionError(f"column {col} on line {line} falls inside a surrogate pair (UTF-16)")
    if units < want:
        raise PositionError(f"column {col} is past the end of line {line} (it has {units + 1} columns)")
    return i
