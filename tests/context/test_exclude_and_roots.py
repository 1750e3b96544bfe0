"""User exclude globs (gitignore syntax) keep files out of the index and out of prompts; "recently edited" regions
come only from documents under the same workspace root as the document being completed."""

from __future__ import annotations

from pathlib import Path

from codeassist.context.engine import ContextEngine
from codeassist.context.index import RepoIndex
from codeassist.context.templates import template_for

MARKER = "EXCLUDED_MARKER_9c1d"


def _cart(engine: ContextEngine, root: Path) -> tuple[str, str, int]:
    uri = (root / "shop" / "cart.py").as_uri()
    text = (root / "shop" / "cart.py").read_text()
    engine.open_document(uri, text, "python")
    return uri, text, text.index("return apply_discount")


def _open_and_edit(engine: ContextEngine, path: Path, marker: str) -> None:
    uri = path.as_uri()
    text = path.read_text() if path.exists() else ""
    engine.open_document(uri, text, "python")
    engine.change_document(uri, [(0, 0, f"LATEST = '{marker}'\n")])


def test_exclude_globs_from_constructor_and_add_root(make_repo) -> None:
    root = make_repo("python")
    (root / "internal").mkdir()
    (root / "internal" / "keys.py").write_text(f"def price_of(code):\n    return '{MARKER}'\n")
    (root / "shop" / "models_gen.py").write_text(f"TAX_RATE = '{MARKER}'\n")
    (root / "shop" / "kept_gen.py").write_text("def kept(): pass\n")
    engine = ContextEngine(exclude=["internal/"])
    index = engine.add_root(root, background=False, watch=False, exclude=["*_gen.py", "!kept_gen.py"])
    assert set(index.files) == {"shop/__init__.py", "shop/cart.py", "shop/pricing.py", "shop/kept_gen.py"}
    assert index.skipped["shop/models_gen.py"] == "excluded by configuration"
    assert not index.index_file("internal/keys.py")  # the watcher's path
    _open_and_edit(engine, root / "internal" / "keys.py", MARKER)
    uri, text, offset = _cart(engine, root)
    parts = engine.build(text, offset, template_for("qwen"), uri=uri)
    assert MARKER not in parts.prompt and any(s["path"] == "shop/pricing.py" for s in parts.snippets)


def test_changing_a_roots_excludes_reindexes_it(make_repo) -> None:
    root = make_repo("python")
    engine = ContextEngine()
    first = engine.add_root(root, background=False, watch=False)
    assert "shop/pricing.py" in first.files and engine.add_root(root, background=False, watch=False) is first
    second = engine.add_root(root, background=False, watch=False, exclude=["pricing.py"])
    assert second is not first and "shop/pricing.py" not in second.files
    assert first.state == "stopped"


def test_index_level_exclude(make_repo) -> None:
    root = make_repo("python")
    index = RepoIndex(root, exclude=["shop/pricing.py"])
    index.index_all()
    assert "shop/pricing.py" not in index.files and "shop/cart.py" in index.files


def test_recent_edits_come_only_from_the_same_workspace_root(make_repo, tmp_path: Path) -> None:
    a = make_repo("python")
    b = make_repo("pyresolve")
    engine = ContextEngine()
    engine.add_root(a, background=False, watch=False)
    engine.add_root(b, background=False, watch=False)
    _open_and_edit(engine, b / "app" / "models.py", "FROM_REPO_B")
    loose = tmp_path / "scratch.py"
    loose.write_text("x = 1\n")
    _open_and_edit(engine, loose, "FROM_NO_ROOT")
    _open_and_edit(engine, a / "shop" / "pricing.py", "FROM_REPO_A")
    uri, text, offset = _cart(engine, a)
    prompt = engine.build(text, offset, template_for("qwen"), uri=uri).prompt
    assert "FROM_REPO_A" in prompt  # the same root still gives its recent edits
    assert "FROM_REPO_B" not in prompt and "FROM_NO_ROOT" not in prompt
    # ... and a document outside every root takes none.
    scratch = loose.as_uri()
    stext = engine.docs[scratch].text
    assert engine.build(stext, len(stext), template_for("qwen"), uri=scratch).snippets == []
