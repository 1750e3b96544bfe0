"""Single-line or multi-line? Decided from the syntax at the cursor.

* text after the cursor on the same line (other than closing brackets/quotes) → single-line;
* the cursor right after a block header (tree-sitter: a ``:``/``{`` whose block is still empty) →
  multi-line, with a larger ``max_tokens``;
* an empty line → multi-line; otherwise (end of a statement) → single-line. At the end of a line the one line may
  be the next one (``next_line``): a line that looks finished gets what follows it, as Copilot does, instead of
  nothing (the model's answer starts with a newline); the client reads the stream up to the first complete line.

Only a window of text before the cursor is parsed, so the cost stays flat in the file size. A
``codeassist.context.parse`` module, when present, supplies the parser; otherwise a small local
loader is used.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from codeassist.context import langs

__all__ = ["LineMode", "cut_at_stops", "decide", "stops_for"]

WINDOW_CHARS = 2000
CLOSERS = frozenset(")]}\"'`;:,")


@dataclass(frozen=True)
class LineMode:
    multiline: bool
    reason: str
    next_line: bool = False  # single-line, nothing after the cursor: the line may be the next one


@functools.cache
def _parser(language: str) -> Any | None:
    # Editors send LSP language ids, the CLI a file extension: the context engine's table knows both.
    return langs.parser_for(langs.language_for_path(f"file.{language}", language))


def _after_block_header(before: str, language: str) -> bool:
    stripped = before.rstrip()
    if not stripped or stripped[-1] not in ":{":
        return False
    parser = _parser(language)
    if parser is None:
        # No grammar: the textual rule (a line ending in ':' or '{').
        return True
    src = stripped.encode("utf-8", "surrogatepass")
    tree = parser.parse(src)
    node = tree.root_node.descendant_for_byte_range(len(src) - 1, len(src))
    if node is None:
        return False
    parent = node.parent
    if parent is None:
        return False
    if node.type == "{":
        # An empty block — or an empty object literal, as JS error recovery reads ``if (a) {``: both
        # open lines that the completion should fill. A callback opened on the cursor line
        # (``on('data', (d) => {``, ``go func() {``, ``for_each(|x| {``) parses, cut there, as an ERROR node.
        return parent.named_child_count == 0 or parent.type == "ERROR"
    if node.type == ":":
        body = parent.child_by_field_name("body") or parent.child_by_field_name("consequence")
        return body is not None and body.named_child_count == 0 and body.end_byte <= len(src)
    return False


def decide(text: str, offset: int, language: str = "") -> LineMode:
    line_start = text.rfind("\n", 0, offset) + 1
    eol = text.find("\n", offset)
    after = text[offset : eol if eol >= 0 else len(text)]
    if any(ch not in CLOSERS for ch in after.strip()):
        return LineMode(False, "mid-line")
    before_line = text[line_start:offset]
    window = text[max(0, offset - WINDOW_CHARS) : offset]
    if before_line.strip() == "":
        if _after_block_header(window, language):
            return LineMode(True, "block-header")
        return LineMode(True, "blank-line")
    if _after_block_header(window, language):
        return LineMode(True, "block-header")
    return LineMode(False, "end-of-statement", next_line=not after.strip())


def stops_for(mode: LineMode, template_stops: tuple[str, ...]) -> tuple[str, ...]:
    if mode.multiline or mode.next_line:  # next line: the client stops reading after the line that follows
        return (*template_stops, "\n\n\n")
    return (*template_stops, "\n")


def cut_at_stops(raw: str, stops: tuple[str, ...]) -> str:
    """The server honours ``stop`` too; this keeps a server that ignores it from leaking sentinels."""
    for s in stops:
        cut = raw.find(s)
        if cut >= 0:
            raw = raw[:cut]
    return raw
