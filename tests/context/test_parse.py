from __future__ import annotations

import pytest
from codeassist.context.langs import language_for_path
from codeassist.context.parse import ParsedDoc

from .conftest import FIXTURES


def test_language_from_extension() -> None:
    assert language_for_path("a/b.py") == "python"
    assert language_for_path("x.tsx") == "tsx"
    assert language_for_path("x.hpp") == "cpp"
    assert language_for_path("notes.txt") is None
    assert language_for_path(None, "typescriptreact") == "tsx"


def test_unknown_language_has_no_tree() -> None:
    doc = ParsedDoc("just some words\n", None)
    assert doc.tree is None and doc.root is None


@pytest.mark.parametrize(
    "edits",
    [
        [(0, 0, "import os\n")],
        [(30, 35, "")],
        [(10, 10, "é😀ü"), (14, 14, "\n# naïve ☃\n")],
        [(5, 9, "x"), (0, 3, ""), (50, 50, "  # tail")],
    ],
)
def test_incremental_reparse_matches_full_parse(edits: list[tuple[int, int, str]]) -> None:
    text = (FIXTURES / "python" / "shop" / "cart.py").read_text()
    doc = ParsedDoc(text, "python")
    assert doc.tree is not None and doc.reparses == 1
    expected = text
    for start, end, new in edits:
        doc.edit(start, end, new)
        expected = expected[:start] + new + expected[end:]
    assert doc.text == expected
    tree = doc.tree
    assert doc.incremental == 1 and doc.reparses == 2  # one re-parse for several edits, reusing the old tree
    fresh = ParsedDoc(expected, "python").root
    assert tree is not None and fresh is not None
    assert str(tree.root_node) == str(fresh)
    assert tree.root_node.end_byte == len(expected.encode("utf-8"))


def test_no_reparse_without_edits() -> None:
    doc = ParsedDoc("x = 1\n", "python")
    first = doc.tree
    assert doc.tree is first and doc.reparses == 1
