"""Prefix/suffix window around the cursor, cut at syntax boundaries.

Cuts fall only between whole statements/definitions (children of block-like nodes on the cursor's ancestor
chain), never mid-token; the headers of the enclosing definitions (class, function, impl...) are kept even
when they lie far above the cut. Documents without a grammar are cut at line boundaries.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from codeassist.context.parse import ParsedDoc, byte_offset
from codeassist.context.tokens import TokenCounter
from tree_sitter import Node

__all__ = ["CONTAINERS", "DEFINITIONS", "Window", "syntax_window"]

CONTAINERS = frozenset(
    {
        "module",
        "block",
        "program",
        "statement_block",
        "class_body",
        "source_file",
        "translation_unit",
        "compilation_unit",
        "compound_statement",
        "declaration_list",
        "field_declaration_list",
        "interface_body",
        "enum_body",
        "enum_body_declarations",
        "constructor_body",
        "statement_list",
        "switch_body",
        "object_type",
    }
)
DEFINITIONS = frozenset(
    {
        "function_definition",
        "class_definition",
        "function_declaration",
        "generator_function_declaration",
        "class_declaration",
        "abstract_class_declaration",
        "method_definition",
        "interface_declaration",
        "method_declaration",
        "function_item",
        "impl_item",
        "trait_item",
        "struct_item",
        "enum_item",
        "mod_item",
        "enum_declaration",
        "constructor_declaration",
        "record_declaration",
        "struct_specifier",
        "class_specifier",
        "namespace_definition",
        "enum_specifier",
        "union_specifier",
    }
)


@dataclass
class Window:
    prefix: str
    suffix: str
    headers: list[str] = field(default_factory=list)
    start_line: int = 0  # first line (0-based) of the verbatim prefix
    end_line: int = 0  # last line of the suffix


def _line_start(data: bytes, b: int) -> int:
    return data.rfind(b"\n", 0, b) + 1


def _snap_start(data: bytes, b: int) -> int | None:
    ls = _line_start(data, b)
    return ls if not data[ls:b].strip() else None


def _snap_end(data: bytes, b: int) -> int | None:
    nl = data.find(b"\n", b)
    eol = len(data) if nl < 0 else nl + 1
    return eol if not data[b:eol].strip() else None


def _header(data: bytes, node: Node) -> tuple[int, int] | None:
    body = node.child_by_field_name("body")
    if body is None:
        return None
    end = body.start_byte + (1 if data[body.start_byte : body.start_byte + 1] == b"{" else 0)
    return _line_start(data, node.start_byte), end


def _boundaries(root: Node, data: bytes, cur: int) -> tuple[list[int], list[int], list[Node]]:
    starts: set[int] = set()
    ends: set[int] = set()
    defs: list[Node] = []
    node: Node | None = root.descendant_for_byte_range(cur, cur)
    while node is not None:
        if node.type in DEFINITIONS and node.start_byte < cur:
            defs.append(node)
        if node.type in CONTAINERS or node.parent is None:
            for child in node.children:
                if child.start_byte <= cur:
                    s = _snap_start(data, child.start_byte)
                    if s is not None:
                        starts.add(s)
                if child.end_byte >= cur:
                    e = _snap_end(data, child.end_byte)
                    if e is not None:
                        ends.add(e)
        node = node.parent
    starts.add(0)
    ends.add(len(data))
    defs.reverse()  # outermost first
    return sorted(starts), sorted(ends), defs


def _earliest_within(data: bytes, cur: int, budget: int, counter: TokenCounter) -> int:
    """Smallest line-start offset whose text up to ``cur`` fits ``budget`` tokens (summed per line)."""
    ls = _line_start(data, cur)
    used = counter.count_piece(data[ls:cur].decode("utf-8", "replace"))
    if used > budget:
        return cur  # not even the cursor line fits; caller trims inside the line
    pos = ls
    while pos > 0:
        prev = _line_start(data, pos - 1)
        used += counter.count_piece(data[prev:pos].decode("utf-8", "replace"))
        if used > budget:
            break
        pos = prev
    return pos


def _latest_within(data: bytes, cur: int, budget: int, counter: TokenCounter) -> int:
    used, pos = 0, cur
    while pos < len(data):
        nl = data.find(b"\n", pos)
        nxt = len(data) if nl < 0 else nl + 1
        used += counter.count_piece(data[pos:nxt].decode("utf-8", "replace"))
        if used > budget:
            break
        pos = nxt
    return pos


def _trim_line_prefix(data: bytes, cur: int, budget: int, counter: TokenCounter) -> int:
    """A cut inside the cursor line (minified code): at a whitespace/punctuation boundary that fits."""
    ls = _line_start(data, cur)
    lo, hi = ls, cur
    while lo < hi:
        mid = (lo + hi) // 2
        if counter.count_piece(data[mid:cur].decode("utf-8", "replace")) <= budget:
            hi = mid
        else:
            lo = mid + 1
    while lo < cur and not (data[lo - 1 : lo].isspace() or not data[lo - 1 : lo].isalnum()):
        lo += 1  # never start mid-identifier
    while lo < cur and (data[lo] & 0xC0) == 0x80:
        lo += 1  # never mid UTF-8 sequence
    return lo


def _anchored(data: bytes, floor: int, cur: int, grid: int) -> int:
    """The first line at or after ``floor`` whose number is a multiple of ``grid`` (at most the cursor's line):
    the prefix then starts at the same place while the cursor moves down ``grid`` lines, and the server's prompt
    cache serves everything before the new text."""
    line = data.count(b"\n", 0, floor)
    pos, limit = floor, _line_start(data, cur)
    lines = data.count(b"\n", floor, limit)
    # At most half the window is given up: a power of two (so the grid itself rarely changes) up to ``grid``.
    while grid > 1 and grid * 2 > lines:
        grid //= 2
    for _ in range(-line % grid):
        nl = data.find(b"\n", pos, limit)
        if nl < 0:
            return limit
        pos = nl + 1
    return pos


def syntax_window(
    doc: ParsedDoc, offset: int, counter: TokenCounter, prefix_budget: int, suffix_budget: int, anchor_lines: int = 1
) -> Window:
    """``anchor_lines`` > 1: the prefix starts on a line grid instead of the nearest statement (for a slow server,
    whose prompt cache needs prompts that share their start)."""
    data = doc.data
    cur = byte_offset(doc.text, offset)
    root = doc.window_root()  # while typing: the last tree, shifted by the edits since (no parse per keystroke)
    if root is not None:
        starts, ends, defs = _boundaries(root, data, cur)
    else:
        starts, ends, defs = [], [], []
    # Headers of enclosing definitions, outermost first, each counted against the prefix budget.
    spans = [h for h in (_header(data, d) for d in defs) if h is not None]
    header_texts = [data[a:b].decode("utf-8", "replace").rstrip() + "\n" for a, b in spans]
    header_cost = [counter.count_piece(t) for t in header_texts]
    while header_cost and sum(header_cost) > prefix_budget // 2:
        spans.pop(0), header_texts.pop(0), header_cost.pop(0)
    body_budget = prefix_budget - sum(header_cost)

    floor = _earliest_within(data, cur, body_budget, counter)
    if floor >= cur:
        cut = _trim_line_prefix(data, cur, body_budget, counter)
    elif anchor_lines > 1:
        cut = _anchored(data, floor, cur, anchor_lines)
    else:
        i = bisect_left(starts, floor)
        cut = starts[i] if i < len(starts) and starts[i] <= cur else floor
        if starts and cut > _line_start(data, cur):
            cut = floor  # the nearest statement start is on the cursor line: use the line grid
    # A cut inside an enclosing header moves to the header's start (the header then is verbatim).
    kept: list[str] = []
    for (a, b), text in zip(spans, header_texts, strict=True):
        if a < cut < b:
            cut = a
        if a < cut:
            kept.append(text)
    ceiling = _latest_within(data, cur, suffix_budget, counter)
    j = bisect_right(ends, ceiling) - 1
    end = ends[j] if j >= 0 and ends[j] >= cur else ceiling
    eol = data.find(b"\n", cur)
    if ends and end < ceiling and end <= (len(data) if eol < 0 else eol):
        end = ceiling
    prefix = data[cut:cur].decode("utf-8", "replace")
    suffix = data[cur:end].decode("utf-8", "replace")
    return Window(
        prefix=prefix,
        suffix=suffix,
        headers=kept,
        start_line=data.count(b"\n", 0, cut),
        end_line=data.count(b"\n", 0, end),
    )
