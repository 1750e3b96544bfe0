"""Per-keystroke builds: cross-file context reused on the cursor line, no parse per keystroke, and a speculative
(hypothetical-text) build that leaves the live document alone."""

from __future__ import annotations

from pathlib import Path

from codeassist.context.engine import ContextEngine
from codeassist.context.parse import STALE_EDIT_CHARS, ParsedDoc
from codeassist.context.syntax_window import syntax_window
from codeassist.context.templates import template_for
from codeassist.context.tokens import default_counter

from .conftest import FIXTURES

ANCHOR = "return apply_discount"


def _typing_engine(root: Path) -> tuple[ContextEngine, str, str, int]:
    engine = ContextEngine(budget=2048)
    engine.add_root(root, background=False, watch=False)
    uri = (root / "shop/cart.py").as_uri()
    text = (root / "shop/cart.py").read_text()
    engine.open_document(uri, text, "python")
    return engine, uri, text, text.index(ANCHOR) + len(ANCHOR)


def _type(engine: ContextEngine, uri: str, text: str, offset: int, chars: str) -> tuple[str, int]:
    for ch in chars:
        engine.change_document(uri, [(offset, offset, ch)])
        text = text[:offset] + ch + text[offset:]
        offset += 1
    return text, offset


def test_second_keystroke_on_the_line_reuses_cross_file_context(make_repo) -> None:
    engine, uri, text, offset = _typing_engine(make_repo("python"))
    qwen = template_for("qwen")
    first = engine.build(text, offset, qwen, uri=uri)
    assert any(s["path"] == "shop/pricing.py" for s in first.snippets)
    assert (engine.cross_misses, engine.cross_hits) == (1, 0)

    text, offset = _type(engine, uri, text, offset, "(tot")
    second = engine.build(text, offset, qwen, uri=uri)
    assert (engine.cross_misses, engine.cross_hits) == (1, 1)  # the same line: reused, not recomputed
    assert second.snippets == first.snippets
    assert second.prefix.endswith(f"{ANCHOR}(tot") and text[:offset].endswith(second.prefix)
    assert text[offset:].startswith(second.suffix)
    assert second.tokens == engine.counter.count(second.prompt) <= 2048

    nl = text.index("\n", offset)  # the next line: recomputed
    engine.build(text, nl + 1, qwen, uri=uri)
    assert engine.cross_misses == 2


def test_cross_file_context_follows_index_and_other_documents(make_repo) -> None:
    root = make_repo("python")
    engine, uri, text, offset = _typing_engine(root)
    qwen = template_for("qwen")
    engine.build(text, offset, qwen, uri=uri)
    index = next(iter(engine.indexes.values()))
    index.generation += 1  # the repo changed on disk
    engine.build(text, offset, qwen, uri=uri)
    assert engine.cross_misses == 2
    other = (root / "shop/pricing.py").as_uri()
    engine.open_document(other, (root / "shop/pricing.py").read_text(), "python")
    engine.change_document(other, [(0, 0, "SHIPPING_FEE = 4.99\n")])
    parts = engine.build(text, offset, qwen, uri=uri)
    assert engine.cross_misses == 3
    assert any(s["kind"] == "recent" and "SHIPPING_FEE" in str(s["text"]) for s in parts.snippets)


def test_typing_does_not_reparse_per_keystroke_and_idle_refresh_does() -> None:
    text = (FIXTURES / "python/shop/cart.py").read_text() * 3
    uri = "file:///tmp/cart_x3.py"
    engine = ContextEngine()
    engine.open_document(uri, text, "python")
    offset = text.index(ANCHOR) + len(ANCHOR)
    engine.build(text, offset, template_for("qwen"), uri=uri)
    doc = engine.docs[uri]
    assert doc.reparses == 1
    for _ in range(5):
        text, offset = _type(engine, uri, text, offset, "x")
        parts = engine.build(text, offset, template_for("qwen"), uri=uri)
        assert text[:offset].endswith(parts.prefix) and parts.prefix.endswith(ANCHOR + "x" * (_ + 1))
    assert doc.reparses == 1 and doc.stale_chars == 5  # the shifted tree served every keystroke
    assert engine.refresh(uri) and doc.reparses == 2 and doc.stale_chars == 0
    assert not engine.refresh(uri)  # nothing new: no parse
    # Past STALE_EDIT_CHARS of edits the window wants a real tree again, even without an idle moment.
    text, offset = _type(engine, uri, text, offset, "y" * (STALE_EDIT_CHARS + 1))
    engine.build(text, offset, template_for("qwen"), uri=uri)
    assert doc.reparses == 3


def test_window_from_the_shifted_tree_matches_a_fresh_parse() -> None:
    text = (FIXTURES / "python/shop/cart.py").read_text() * 4
    live = ParsedDoc(text, "python")
    assert live.root is not None
    call = ANCHOR + "(taxed, percent)"
    offset = text.index(call, len(text) // 2) + len(call)
    live.edit(offset, offset, " + 0")  # typing that keeps the file valid: a fresh parse has the same shape
    new_text = text[:offset] + " + 0" + text[offset:]
    c = default_counter()
    shifted = syntax_window(live, offset + 4, c, 300, 80)
    fresh = syntax_window(ParsedDoc(new_text, "python"), offset + 4, c, 300, 80)
    assert live.reparses == 1  # no parse for the window
    assert (shifted.prefix, shifted.suffix, shifted.headers) == (fresh.prefix, fresh.suffix, fresh.headers)


def test_speculative_build_leaves_the_live_document_alone(make_repo) -> None:
    engine, uri, text, offset = _typing_engine(make_repo("python"))
    qwen = template_for("qwen")
    engine.build(text, offset, qwen, uri=uri)
    doc = engine.docs[uri]
    tree, reparses = doc.tree, doc.reparses
    guess = "(total, percent)"
    hypo = text[:offset] + guess + text[offset:]
    parts = engine.build(hypo, offset + len(guess), qwen, uri=uri)  # what the prefetch does
    assert parts.prefix.endswith(ANCHOR + guess) and hypo[: offset + len(guess)].endswith(parts.prefix)
    assert doc.text == text and doc.tree is tree and doc.reparses == reparses  # untouched, not re-parsed
    again = engine.build(text, offset, qwen, uri=uri)  # the real document builds with no parse either
    assert doc.reparses == reparses and again.prefix.endswith(ANCHOR)


def test_derived_document_matches_its_text() -> None:
    text = (FIXTURES / "python/shop/cart.py").read_text()
    doc = ParsedDoc(text, "python")
    assert doc.root is not None
    for new in (text + "x", "y" + text, text.replace("return", "yield", 1), "", text[: len(text) // 2]):
        derived = doc.derive(new)
        assert derived.text == new and doc.text == text
        tree = derived.tree
        fresh = ParsedDoc(new, "python").root
        assert tree is not None and fresh is not None and str(tree.root_node) == str(fresh)


def test_texts_not_open_in_an_editor_never_share_cross_file_context(make_repo) -> None:
    root = make_repo("python")
    engine = ContextEngine(budget=2048)
    engine.add_root(root, background=False, watch=False)
    text = (root / "shop/cart.py").read_text()
    offset = text.index(ANCHOR) + len(ANCHOR)
    first = engine.build(text, offset, template_for("qwen"), path=root / "shop/cart.py")
    assert any(s["path"] == "shop/pricing.py" for s in first.snippets)
    line_start = text.rfind("\n", 0, offset) + 1
    other = text[:line_start] + "        return 0\n" + text[text.index("\n", offset) + 1 :]  # no pricing use there
    other = other.replace("from shop.pricing import PriceBook, apply_discount\n", "import os\n")
    line = text.count("\n", 0, offset)
    at = len("\n".join(other.split("\n")[:line])) + 1 + 8  # the same line as before
    second = engine.build(other, at, template_for("qwen"), path=root / "shop/cart.py")
    assert engine.cross_misses == 2 and second.snippets != first.snippets


def test_prompt_says_which_snippet_header_it_wrote(make_repo) -> None:
    """The scaffold filter cuts only what the prompt really had: ``# Path: `` headers for the plain and FIM
    templates with snippets, none for templates that separate files with a token."""
    engine, uri, text, offset = _typing_engine(make_repo("python"))
    plain = engine.build(text, offset, template_for("plain"), uri=uri)
    assert plain.snippets and plain.header == "# Path: " and "\n# Path: shop/pricing.py\n" in "\n" + plain.prompt
    qwen = engine.build(text, offset, template_for("qwen"), uri=uri)
    assert qwen.snippets and qwen.header is None and "# Path: " not in qwen.prompt
