"""``FILE:LINE:COL`` on the command line: one parser and one set of messages for every CLI command.

Users count lines and columns from 1 (as editors show them); the LSP helpers count from 0. Everything a user
reads here is 1-based, and a location that does not exist is always exit status 2 (like any other bad argument).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from codeassist.lsp.positions import PositionError, line_bounds, position_to_offset

__all__ = [
    "EXIT_BAD_LOCATION",
    "Location",
    "LocationError",
    "add_location_arguments",
    "location_error",
    "parse_location",
]

EXIT_BAD_LOCATION = 2


class LocationError(ValueError):
    """A ``FILE:LINE:COL`` that cannot be used; the message is for the user (1-based)."""


@dataclass(frozen=True)
class Location:
    path: Path
    line: int  # 1-based
    col: int  # 1-based, in characters (or UTF-16 code units with ``utf16``)
    utf16: bool = False

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"

    def read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LocationError(f"cannot read {self.path}: {exc}") from None

    def offset(self, text: str) -> int:
        """The string offset of this location in ``text``, or a :class:`LocationError` saying why there is none."""
        try:
            return _offset(text, self.line, self.col, self.utf16)
        except LocationError as exc:
            raise LocationError(f"{self}: {exc}") from None


def parse_location(spec: str, root: Path | None = None, utf16: bool = False) -> Location:
    """``FILE:LINE:COL`` (1-based); a relative FILE is taken from ``root`` when given."""
    try:
        file, line, col = spec.rsplit(":", 2)
        location = Location(Path(file), int(line), int(col), utf16)
    except ValueError:
        raise LocationError(f"expected FILE:LINE:COL (1-based), got {spec!r}") from None
    if not file:
        raise LocationError(f"expected FILE:LINE:COL (1-based), got {spec!r}")
    if root is not None and not location.path.is_absolute():
        location = Location(root / location.path, location.line, location.col, utf16)
    return location


def _width(text: str, start: int, end: int, utf16: bool) -> int:
    return sum(2 if utf16 and ord(c) > 0xFFFF else 1 for c in text[start:end])


def _offset(text: str, line: int, col: int, utf16: bool) -> int:
    if line < 1:
        raise LocationError(f"line {line} does not exist (lines and columns are 1-based)")
    if col < 1:
        raise LocationError(f"column {col} does not exist (lines and columns are 1-based)")
    lines = text.count("\n") + 1
    if line > lines:
        raise LocationError(f"line {line} is past the end of the file ({lines} lines)")
    encoding = "utf-16" if utf16 else "utf-32"
    try:
        return position_to_offset(text, line - 1, col - 1, encoding=encoding)
    except PositionError:
        pass  # say it again in the user's terms: 1-based, characters
    start, end = line_bounds(text, line - 1)
    width = _width(text, start, end, utf16)
    if col - 1 > width:
        unit = "UTF-16 units" if utf16 else "characters"
        raise LocationError(
            f"column {col} is past the end of line {line} (it has {width} {unit}: columns 1 to {width + 1})"
        )
    raise LocationError(f"column {col} on line {line} falls inside a surrogate pair (UTF-16)")


def add_location_arguments(parser: argparse.ArgumentParser) -> None:
    """The same ``location`` and ``--utf16`` for every command that takes a position."""
    parser.add_argument("location", help="FILE:LINE:COL, 1-based (as editors show them)")
    parser.add_argument("--utf16", action="store_true", help="COL counts UTF-16 code units (as LSP does)")


def location_error(command: str, message: str, as_json: bool = False) -> int:
    """Report a location (or other argument) a command cannot use, the same way for every command: exit 2."""
    print(json.dumps({"error": message}) if as_json else f"codeassist {command}: {message}", file=sys.stderr)
    return EXIT_BAD_LOCATION
