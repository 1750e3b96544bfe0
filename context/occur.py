"""Where names occur in a document: identifiers and dotted chains (``a.b.c``, ``a::b``, ``a->b``) with their
line numbers, so that retrieval can rank every name of the file by its distance to the cursor line.

Per-line terms are memoised by line text (most lines survive an edit), and a document's term positions are
memoised per text version, so repeated builds on one document do not re-scan it.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field

__all__ = ["Occurrences", "doc_terms", "line_terms", "occurrences"]

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CHAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_LINE_CACHE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
_LINE_CACHE_MAX = 200_000
_EMPTY: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())


def line_terms(line: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(identifiers, dotted-chain prefixes ``a.b``, ``a.b.c`` ...) of one line, each once."""
    hit = _LINE_CACHE.get(line)
    if hit is not None:
        return hit
    if not line.strip():
        return _EMPTY
    words = tuple(set(_WORD.findall(line)))
    chains: tuple[str, ...] = ()
    if "." in line or "::" in line or "->" in line:
        norm = line.replace("::", ".").replace("->", ".") if ("::" in line or "->" in line) else line
        found: set[str] = set()
        for chain in _CHAIN.findall(norm):
            parts = chain.split(".")
            for k in range(2, len(parts) + 1):
                found.add(".".join(parts[:k]))
        chains = tuple(found)
    if len(_LINE_CACHE) >= _LINE_CACHE_MAX:
        _LINE_CACHE.clear()
    _LINE_CACHE[line] = hit = (words, chains)
    return hit


@dataclass
class DocTerms:
    words: dict[str, list[int]] = field(default_factory=dict)  # name -> ascending line numbers
    chains: dict[str, list[int]] = field(default_factory=dict)


_DOC_CACHE: dict[int, tuple[str, DocTerms]] = {}


def doc_terms(text: str, lines: list[str] | None = None) -> DocTerms:
    """Term positions of a whole document, memoised for the last few text versions."""
    key = hash(text)
    hit = _DOC_CACHE.get(key)
    if hit is not None and (hit[0] is text or hit[0] == text):
        return hit[1]
    terms = DocTerms()
    words, chains = terms.words, terms.chains
    for i, line in enumerate(lines if lines is not None else text.split("\n")):
        ws, cs = line_terms(line)
        for found, table in ((ws, words), (cs, chains)):
            for t in found:
                pos = table.get(t)
                if pos is None:
                    table[t] = [i]
                else:
                    pos.append(i)
    while len(_DOC_CACHE) >= 8:
        _DOC_CACHE.pop(next(iter(_DOC_CACHE)))
    _DOC_CACHE[key] = (text, terms)
    return terms


def _nearest(pos: list[int], line: int) -> int:
    """Distance from ``line`` to the nearest entry of ``pos`` (ascending line numbers)."""
    i = bisect_left(pos, line)
    if i == len(pos):
        return line - pos[-1]
    return pos[i] - line if i == 0 else min(pos[i] - line, line - pos[i - 1])


@dataclass
class Occurrences:
    near: dict[str, int]  # identifier -> distance (lines) of its nearest use to the cursor line
    qual: dict[str, int]  # dotted chain -> distance
    members: dict[str, dict[str, int]]  # chain prefix -> {next component: distance}, e.g. "os.path" -> {"join": 3}
    lines: dict[str, int] = field(default_factory=dict)  # identifier -> on how many lines it occurs


def occurrences(text: str, lines: list[str], cursor_line: int) -> Occurrences:
    """Every name of the document with its distance to the cursor line."""
    terms = doc_terms(text, lines)
    near = {w: _nearest(pos, cursor_line) for w, pos in terms.words.items()}
    qual: dict[str, int] = {}
    members: dict[str, dict[str, int]] = {}
    for c, pos in terms.chains.items():
        qual[c] = d = _nearest(pos, cursor_line)
        head, _, tail = c.rpartition(".")
        members.setdefault(head, {})[tail] = d
    return Occurrences(near, qual, members, {w: len(pos) for w, pos in terms.words.items()})
