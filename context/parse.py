"""tree-sitter parsing of one document, with incremental re-parse on edits.

Offsets in the public API are code points (Python ``str`` indexes); tree-sitter works in UTF-8 bytes and
(row, byte-column) points, so edits are converted here. Several edits between two reads cost one re-parse.

Typing must not pay for a parse per keystroke: ``window_root`` serves the last tree shifted by the edits since
(``Tree.edit`` keeps node positions in step with the text) while those edits are small, and ``refresh`` re-parses
when the editor is idle. A parse holds the GIL, so it cannot move to a thread; it moves to idle time instead.
"""

from __future__ import annotations

from codeassist.context.langs import parser_for
from tree_sitter import Node, Parser, Tree

__all__ = ["STALE_EDIT_CHARS", "ParsedDoc", "byte_offset", "char_offset"]

STALE_EDIT_CHARS = 400  # edited chars since the last parse beyond which the window wants a fresh tree


def byte_offset(text: str, offset: int) -> int:
    return offset if text.isascii() else len(text[:offset].encode("utf-8"))


def char_offset(data: bytes, byte: int) -> int:
    return len(data[:byte].decode("utf-8", errors="replace"))


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix, by bisection over C-level slice compares (no per-character Python loop)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


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
        self.stale_chars = 0  # chars inserted + removed since the tree was last parsed

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
            self.stale_chars = 0
        return self._tree

    @property
    def root(self) -> Node | None:
        tree = self.tree
        return tree.root_node if tree is not None else None

    def window_root(self) -> Node | None:
        """The tree as of the last parse, shifted by the edits since, while they are small (else a re-parse).

        Good enough to cut a window at statement boundaries and find the enclosing definitions: the cuts lie
        lines away from what is being typed, and ``Tree.edit`` keeps every node's span in step with the text."""
        if self._tree is not None and (not self._dirty or self.stale_chars <= STALE_EDIT_CHARS):
            return self._tree.root_node
        return self.root

    @property
    def fresh(self) -> bool:
        return self._parser is None or (self._tree is not None and not self._dirty)

    def refresh(self) -> bool:
        """Re-parse now if edited since the last parse (idle time); True if it parsed."""
        if self.fresh:
            return False
        self.tree  # noqa: B018  # the property parses
        return True

    def derive(self, text: str) -> ParsedDoc:
        """A scratch copy holding ``text`` (a hypothetical edit of this document: a speculation), sharing this
        document's tree (copied, then edited) so that neither document is re-parsed."""
        other = ParsedDoc.__new__(ParsedDoc)
        other.lang, other._parser = self.lang, self._parser
        other._text, other._data, other._lines, other.memo = self._text, self._data, self._lines, {}
        other._tree = self._tree.copy() if self._tree is not None else None
        other._dirty, other.reparses, other.incremental, other.stale_chars = self._dirty, 0, 0, self.stale_chars
        old = self._text
        a = _common_prefix(old, text)
        b = _common_prefix(old[a:][::-1], text[a:][::-1])
        if a < len(old) - b or a < len(text) - b:
            other.edit(a, len(old) - b, text[a : len(text) - b])
        return other

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
        self.stale_chars += (end - start) + len(new_text)
