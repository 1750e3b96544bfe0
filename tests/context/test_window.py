"""The prefix/suffix window is cut at syntax boundaries and keeps the enclosing signature, per language."""

from __future__ import annotations

from pathlib import Path

import pytest
from codeassist.context.langs import language_for_path
from codeassist.context.parse import ParsedDoc
from codeassist.context.syntax_window import CONTAINERS, syntax_window
from codeassist.context.tokens import default_counter

from .conftest import FIXTURES

# (file, text the cursor is placed before, the enclosing header that must survive, filler statement)
CASES = [
    (
        "python/shop/cart.py",
        "return apply_discount",
        "    def total(self, percent: float = 0.0) -> float:",
        "        subtotal += 0.0\n",
    ),
    ("ts/src/route.ts", "return total;", "  length(): number {", "    total += 0;\n"),
    ("go/main.go", "return sum", "func report(rs []geom.Rect) float64 {", "\tsum += 0\n"),
    (
        "rust/src/stack.rs",
        "self.items.push(v);",
        "    pub fn push(&mut self, v: i64) -> bool {",
        "        let _ = 0;\n",
    ),
    (
        "java/com/acme/App.java",
        "System.out.println(line);",
        "    public static void main(String[] args) {",
        "            int unused = 0;\n",
    ),
    ("c/main.c", "printf(", "int main(void) {", "    v.len += 0;\n"),
    ("cpp_shapes.cpp", "return pi * rr;", "  double area() const {", "    rr += 0;\n"),
]


def _boundary_starts(doc: ParsedDoc) -> set[int]:
    """Byte offsets of line starts where a child of a block-like node begins."""
    out: set[int] = {0}
    data = doc.data
    stack = [doc.root]
    while stack:
        node = stack.pop()
        assert node is not None
        if node.type in CONTAINERS:
            for child in node.children:
                ls = data.rfind(b"\n", 0, child.start_byte) + 1
                if not data[ls : child.start_byte].strip():
                    out.add(ls)
        stack.extend(node.children)
    return out


@pytest.mark.parametrize(("rel", "anchor", "header", "filler"), CASES, ids=[c[0] for c in CASES])
def test_cut_at_statement_boundary_keeps_signature(rel: str, anchor: str, header: str, filler: str) -> None:
    src = (FIXTURES / rel).read_text()
    # Push the signature far above the cursor with many statements inside the same body.
    cut_at = src.index(anchor)
    line_start = src.rfind("\n", 0, cut_at) + 1
    text = src[:line_start] + filler * 400 + src[line_start:]
    offset = text.index(anchor)
    doc = ParsedDoc(text, language_for_path(Path(rel)))
    assert doc.root is not None and not doc.root.has_error
    counter = default_counter()
    w = syntax_window(doc, offset, counter, prefix_budget=200, suffix_budget=60)
    assert w.headers and w.headers[-1].rstrip("\n") == header, w.headers
    assert header not in w.prefix  # the header is far above: it survives only through `headers`
    start = offset - len(w.prefix)
    assert text[start:offset] == w.prefix
    assert len(text[:start].encode()) in _boundary_starts(doc)  # cut where a whole statement starts
    assert counter.count("".join(w.headers) + w.prefix) <= 200
    assert counter.count(w.suffix) <= 60
    end = offset + len(w.suffix)
    assert text[offset:end] == w.suffix and (end == len(text) or text[end - 1] == "\n")


def test_plain_text_window_cuts_at_lines() -> None:
    text = "".join(f"line {i} of some notes\n" for i in range(500))
    offset = text.index("line 250")
    w = syntax_window(ParsedDoc(text, None), offset, default_counter(), 100, 30)
    assert w.headers == []
    assert w.prefix.startswith("line ") and text[offset - len(w.prefix) - 1] == "\n"
    assert 0 < len(w.prefix) < offset


def test_whole_small_file_fits() -> None:
    text = (FIXTURES / "python/shop/pricing.py").read_text()
    offset = text.index("return self.prices")
    w = syntax_window(ParsedDoc(text, "python"), offset, default_counter(), 1000, 300)
    assert w.prefix == text[:offset] and w.suffix == text[offset:] and w.headers == []


def test_minified_line_is_cut_between_tokens() -> None:
    text = "var " + ",".join(f"alpha{i}={i}" for i in range(3000)) + ";"
    offset = len(text) - 1
    w = syntax_window(ParsedDoc(text, "javascript"), offset, default_counter(), 100, 20)
    assert 0 < len(w.prefix) < offset
    before = text[offset - len(w.prefix) - 1]
    assert not (before.isalnum() and w.prefix[0].isalnum())
