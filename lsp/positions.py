"""LSP positions (line + code units in the negotiated encoding) <-> Python string offsets.

LSP counts columns in UTF-16 code units unless UTF-8/32 was negotiated; Python indexes code points.
Completion requests are converted strictly (a bad position is a clear error, never a guess); document
edits follow the spec and clamp a character past the line end to the line end.
"""

from __future__ import annotations

__all__ = ["PositionError", "line_bounds", "offset_to_position", "position_to_offset"]


class PositionError(ValueError):
    pass


def _units(ch: str, encoding: str) -> int:
    cp = ord(ch)
    if encoding == "utf-16":
        return 2 if cp > 0xFFFF else 1
    if encoding == "utf-8":
        return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4
    return 1


def line_bounds(text: str, line: int) -> tuple[int, int]:
    """Offsets of the start and end (before the newline) of ``line``."""
    if line < 0:
        raise PositionError(f"line {line} is negative")
    start = 0
    for _ in range(line):
        nl = text.find("\n", start)
        if nl < 0:
            total = text.count("\n") + 1
            raise PositionError(f"line {line} is past the end of the document ({total} lines)")
        start = nl + 1
    end = text.find("\n", start)
    if end < 0:
        end = len(text)
    if end > start and text[end - 1] == "\r":
        end -= 1
    return start, end


def position_to_offset(text: str, line: int, character: int, encoding: str = "utf-16", strict: bool = True) -> int:
    start, end = line_bounds(text, line)
    if character < 0:
        raise PositionError(f"character {character} is negative")
    units = 0
    i = start
    while i < end and units < character:
        units += _units(text[i], encoding)
        i += 1
    if units == character:
        return i
    if units > character:
        raise PositionError(f"character {character} on line {line} falls inside a multi-unit character ({encoding})")
    if strict:
        raise PositionError(f"character {character} is past the end of line {line} ({units} {encoding} units)")
    return end


def offset_to_position(text: str, offset: int, encoding: str = "utf-16") -> tuple[int, int]:
    if not 0 <= offset <= len(text):
        raise PositionError(f"offset {offset} outside the document (length {len(text)})")
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return line, sum(_units(c, encoding) for c in text[start:offset])
