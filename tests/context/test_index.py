from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from codeassist.context.index import RepoIndex
from codeassist.context.watch import IndexWatcher


def test_gitignore_exclude_binary_large_and_vendored(make_repo, caplog: pytest.LogCaptureFixture) -> None:
    root: Path = make_repo("python")
    (root / ".gitignore").write_text("generated/\n*_pb2.py\n")
    (root / ".git" / "info" / "exclude").write_text("secret.py\n")
    (root / "generated").mkdir()
    (root / "generated" / "x.py").write_text("def gen(): pass\n")
    (root / "shop" / "api_pb2.py").write_text("def proto(): pass\n")
    (root / "secret.py").write_text("def hidden(): pass\n")
    (root / "node_modules" / "lib").mkdir(parents=True)
    (root / "node_modules" / "lib" / "dep.js").write_text("function dep() {}\n")
    (root / "blob.py").write_bytes(b"def x():\x00\x01\x02 pass\n")
    (root / "big.py").write_text("x = 1\n" * (5 * 1024 * 1024 // 6 + 1))
    assert (root / "big.py").stat().st_size >= 5 * 1024 * 1024
    sub = root / "shop" / "sub"
    sub.mkdir()
    (sub / ".gitignore").write_text("local_*.py\n")
    (sub / "local_tmp.py").write_text("def tmp(): pass\n")
    (sub / "kept.py").write_text("def kept(): pass\n")
    with caplog.at_level(logging.INFO, logger="codeassist.context"):
        index = RepoIndex(root)
        index.index_all()
    assert set(index.files) == {"shop/__init__.py", "shop/cart.py", "shop/pricing.py", "shop/sub/kept.py"}
    assert index.skipped["blob.py"].startswith("binary")
    assert index.skipped["big.py"].startswith("too large")
    assert index.skipped["shop/api_pb2.py"] == "ignored by .gitignore"
    assert index.skipped["secret.py"] == "ignored by .gitignore"
    assert index.skipped["shop/sub/local_tmp.py"] == "ignored by .gitignore"
    logged = caplog.text
    assert "skip blob.py: binary" in logged and "skip big.py: too large" in logged
    assert "gen" not in index.symbols and "dep" not in index.symbols
    assert [d.path for d in index.symbols["apply_discount"]] == ["shop/pricing.py"]
    assert index.state == "ready"


def test_background_index_does_not_block(make_repo) -> None:
    root = make_repo("python")
    index = RepoIndex(root)
    thread = index.start()
    thread.join(timeout=10)
    assert index.state == "ready" and "PriceBook" in index.symbols


def test_reindex_and_remove(make_repo) -> None:
    root = make_repo("python")
    index = RepoIndex(root)
    index.index_all()
    gen = index.generation
    (root / "shop" / "pricing.py").write_text("def renamed(x):\n    return x\n")
    index.index_file("shop/pricing.py")
    assert "renamed" in index.symbols and "apply_discount" not in index.symbols and index.generation > gen
    index.remove_file("shop/pricing.py")
    assert "renamed" not in index.symbols and "shop/pricing.py" not in index.files


def test_watchfiles_reindexes_within_a_second(make_repo) -> None:
    root = make_repo("python")
    index = RepoIndex(root)
    index.index_all()
    watcher = IndexWatcher(index).start()
    try:
        watcher.ready.wait(2)
        time.sleep(0.3)  # let the OS watch settle
        target = root / "shop" / "pricing.py"
        target.write_text(target.read_text() + "\n\ndef freshly_added(n: int) -> int:\n    return n\n")
        t0 = time.monotonic()
        while "freshly_added" not in index.symbols and time.monotonic() - t0 < 1.0:
            time.sleep(0.01)
        assert "freshly_added" in index.symbols, "not re-indexed within a second"
        os.remove(root / "shop" / "cart.py")
        t0 = time.monotonic()
        while "shop/cart.py" in index.files and time.monotonic() - t0 < 1.0:
            time.sleep(0.01)
        assert "shop/cart.py" not in index.files
    finally:
        watcher.stop()


def test_index_is_bounded_by_bytes(make_repo) -> None:
    root = make_repo("python")
    index = RepoIndex(root, max_bytes=(root / "shop/cart.py").stat().st_size + 10)
    index.index_all()
    assert index.indexed_bytes <= index.max_bytes
    full = [rel for rel, why in index.skipped.items() if why.startswith("index full")]
    assert full and len(index.files) + len(full) == 3


def test_parallel_cold_index_matches_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from codeassist.context import index as index_mod

    from .conftest import FIXTURES

    inline = RepoIndex(FIXTURES, workers=1)
    inline.index_all()
    monkeypatch.setattr(index_mod, "POOL_MIN_FILES", 1)
    pooled = RepoIndex(FIXTURES, workers=2)
    pooled.index_all()
    assert set(pooled.files) == set(inline.files) and len(inline.files) > 10

    def summary(ix: RepoIndex) -> list[tuple[str, int, str]]:
        return sorted((d.path, d.line, d.text) for defs in ix.symbols.values() for d in defs)

    assert summary(pooled) == summary(inline)
    assert sorted(pooled.postings) == sorted(inline.postings) and len(pooled.chunks) == len(inline.chunks)


def test_binary_skipped_with_reason_by_the_worker_pool(make_repo, monkeypatch: pytest.MonkeyPatch) -> None:
    from codeassist.context import index as index_mod

    root = make_repo("python")
    (root / "blob.py").write_bytes(b"def x():\x00\x01\x02 pass\n")
    monkeypatch.setattr(index_mod, "POOL_MIN_FILES", 1)
    index = RepoIndex(root, workers=2)
    index.index_all()
    assert index.skipped["blob.py"].startswith("binary") and "blob.py" not in index.files
    assert "shop/cart.py" in index.files


def test_walk_past_max_files_lists_the_rest_as_index_full(make_repo) -> None:
    root = make_repo("python")
    index = RepoIndex(root, max_files=1)
    index.index_all()
    full = [rel for rel, why in index.skipped.items() if why == "index full (1 files)"]
    assert len(index.files) == 1 and len(full) == 2


def test_cpp_headers_use_the_cpp_grammar(tmp_path: Path) -> None:
    from codeassist.context.index import grammar_for

    assert grammar_for("c", b"namespace geo {\nclass Shape {};\n}\n") == "cpp"
    assert grammar_for("c", b"struct point { int x; };\nint area(struct point p);\n") == "c"
    assert grammar_for("python", b"a::b") == "python"
    (tmp_path / "shape.h").write_text("namespace geo {\nclass Shape {\n public:\n  double area() const;\n};\n}\n")
    index = RepoIndex(tmp_path)
    index.index_all()
    assert [d.kind for d in index.symbols["Shape"]] == ["class_specifier"]


def test_common_terms_share_one_capped_posting(tmp_path: Path) -> None:
    from codeassist.context.index import COMMON, MAX_POSTINGS, posting_ids
    from codeassist.context.retrieve import similar_snippets

    index = RepoIndex(tmp_path)
    for i in range(MAX_POSTINGS + 5):
        terms = ("everywhere", f"only_in_{i}", "pair" if i < 2 else "x")
        index.add_parsed(f"f{i}.py", 0.0, 10, [], [], [(0, 1, terms)])
    assert index.postings["everywhere"] is COMMON and len(COMMON) > MAX_POSTINGS
    assert list(posting_ids(index.postings["only_in_7"])) == [7]
    assert list(posting_ids(index.postings["pair"])) == [0, 1]
    (tmp_path / "f7.py").write_text("only_in_7 = everywhere\n")
    hits = similar_snippets(index, "only_in_7 everywhere", exclude=None, k=1)
    assert [s.path for s in hits] == ["f7.py"]
    index.remove_file("f7.py")
    assert "only_in_7" in index.postings  # one removal leaves its postings for a later compaction
    index.compact()
    assert "only_in_7" not in index.postings and index.postings["everywhere"] is COMMON
