"""tree-sitter parsing of one document, with incremental re-parse on edits.

Offsets in the public API are code points (Python ``str`` indexes); tree-sitter works in UTF-8 bytes and
(row, byte-column) points, so edits are converted here. Several edits between two reads cost one re-parse.
"""

from __future__ import annotations

from codeassist.context.langs import parser_for
from tree_sitter import Node, Parser, Tree

__all__ = ["ParsedDoc", "byte_offset", "char_offset"]


def byte_offset(text: str, offset: int) -> int:
    return offset if text.isascii() else len(text[:offset].encode("utf-8"))


def char_offset(data: bytes, byte: int) -> int:
    return len(data[:byte].decode("utf-8", errors="replace"))


def _point(text: str, offset: int) -> tuple[int, int]:
    row = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    return row, len(text[line_start:offset].encode("utf-8"))


class ParsedDoc:
    """A document's text and (when its language has a grammar) its syntax tree, kept in step with edits."""

    def __init__(self, text: str, lang: str | None) -> None:
        self.lang = lang
        self._parser: Parser | None = parser_for(lang)
        self._text = text
        self._data: bytes | None = None
        self._tree: Tree | None = None
        self._dirty = True
        self._lines: list[str] | None = None
        self.memo: dict[str, object] = {}  # values derived from this text version (imports...); reset on change
        self.reparses = 0  # full parses + incremental re-parses, for tests and stats
        self.incremental = 0

    @property
    def text(self) -> str:
        return self._text

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self._text.split("\n")
        return self._lines

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self._text.encode("utf-8", errors="surrogatepass")
        return self._data

    @property
    def tree(self) -> Tree | None:
        if self._parser is None:
            return None
        if self._dirty or self._tree is None:
            old = self._tree
            self._tree = self._parser.parse(self.data, old) if old is not None else self._parser.parse(self.data)
            self.reparses += 1
            self.incremental += old is not None
            self._dirty = False
        return self._tree

    @property
    def root(self) -> Node | None:
        tree = self.tree
        return tree.root_node if tree is not None else None

    def set_text(self, text: str) -> None:
        self._text, self._data, self._tree, self._dirty = text, None, None, True
        self._lines, self.memo = None, {}

    def edit(self, start: int, end: int, new_text: str) -> None:
        """Replace code points ``start..end`` (clamped like LSP) and tell the tree, without re-parsing yet."""
        text = self._text
        n = len(text)
        start = max(0, min(start, n))
        end = max(start, min(end, n))
        updated = text[:start] + new_text + text[end:]
        if self._tree is not None and self._parser is not None:
            sb, eb = byte_offset(text, start), byte_offset(text, end)
            self._tree.edit(
                start_byte=sb,
                old_end_byte=eb,
                new_end_byte=sb + len(new_text.encode("utf-8", errors="surrogatepass")),
                start_point=_point(text, start),
                old_end_point=_point(text, end),
                new_end_point=_point(updated, start + len(new_text)),
            )
        self._text, self._data, self._dirty = updated, None, True
        self._lines, self.memo = None, {}
