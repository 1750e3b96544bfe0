"""The one shape every filter has: ``(completion, FilterContext) -> completion`` — pure and sync."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "BRACKETS",
    "OPENERS",
    "Filter",
    "FilterContext",
    "indent_of",
    "line_after",
    "line_before",
    "scan_brackets",
    "scan_brackets_state",
]

BRACKETS = {")": "(", "]": "[", "}": "{"}
OPENERS = {v: k for k, v in BRACKETS.items()}
_WS = re.compile(r"[ \t]*")


@dataclass(frozen=True)
class FilterContext:
    prefix: str  # text before the cursor (may be a window)
    suffix: str  # text after the cursor (may be a window)
    multiline: bool
    language: str = ""
    scaffold: str | None = None  # the prompt's snippet header marker, e.g. "# Path: " (None: no headers)
    # the editor's LSP FormattingOptions, when it sent them (None: unknown)
    tab_size: int | None = None
    insert_spaces: bool | None = None


Filter = Callable[[str, FilterContext], str]


def line_before(ctx: FilterContext) -> str:
    return ctx.prefix[ctx.prefix.rfind("\n") + 1 :]


def line_after(ctx: FilterContext) -> str:
    eol = ctx.suffix.find("\n")
    return ctx.suffix if eol < 0 else ctx.suffix[:eol]


def indent_of(line: str) -> str:
    m = _WS.match(line)
    return m.group(0) if m else ""


def scan_brackets(text: str) -> tuple[list[str], list[int]]:
    """Unclosed openers (in order) and the positions of closers with no opener, skipping string bodies."""
    stack, orphans, _ = scan_brackets_state(text)
    return stack, orphans


def scan_brackets_state(text: str) -> tuple[list[str], list[int], bool]:
    """:func:`scan_brackets`, and whether a string is left open on the last line."""
    stack: list[str] = []
    orphans: list[int] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote or ch == "\n":
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch in OPENERS:
            stack.append(ch)
        elif ch in BRACKETS:
            if stack and stack[-1] == BRACKETS[ch]:
                stack.pop()
            else:
                orphans.append(i)
        i += 1
    return stack, orphans, quote is not None
