"""Cross-file snippets: definitions through imports in each language, recent edits, dedup."""

from __future__ import annotations

import pytest
from codeassist.context.engine import ContextEngine
from codeassist.context.templates import template_for

# (fixture repo, file, cursor before, expected definition path, text that must be in that snippet)
CASES = [
    ("python", "shop/cart.py", "return apply_discount", "shop/pricing.py", "def apply_discount(amount: float"),
    ("ts", "src/route.ts", "const leg", "src/geometry.ts", "export function distance(a: Point"),
    ("go", "main.go", "a := geom.Area", "geom/area.go", "func Area(r Rect) float64"),
    ("rust", "src/main.rs", "let mut pushed", "src/stack.rs", "pub fn with_capacity(cap: usize)"),
    ("java", "com/acme/App.java", "String line", "com/acme/Greeter.java", "public String greet(String name)"),
    ("c", "main.c", "vec_push(&v", "include/vec.h", "int vec_push(struct vec *self, int v);"),
]


@pytest.mark.parametrize(("repo", "rel", "anchor", "def_path", "needle"), CASES, ids=[c[0] for c in CASES])
def test_imported_definition_is_in_context(
    make_repo, repo: str, rel: str, anchor: str, def_path: str, needle: str
) -> None:
    root = make_repo(repo)
    engine = ContextEngine(budget=1024)
    engine.add_root(root, background=False, watch=False)
    text = (root / rel).read_text()
    parts = engine.build(text, text.index(anchor), template_for("starcoder2"), path=root / rel)
    hits = [s for s in parts.snippets if s["path"] == def_path and needle in str(s["text"])]
    assert hits, [(s["path"], s["reason"]) for s in parts.snippets]
    assert f"<file_sep>{def_path}\n" in parts.prompt
    assert all(s["path"] != rel for s in parts.snippets)  # the current file is never repeated
    assert parts.tokens <= 1024
    assert len({(s["path"], s["text"]) for s in parts.snippets}) == len(parts.snippets)


def test_comment_path_header_without_repo_format(make_repo) -> None:
    root = make_repo("python")
    engine = ContextEngine(sources=("imports", "symbols"))
    engine.add_root(root, background=False, watch=False)
    text = (root / "shop/cart.py").read_text()
    parts = engine.build(
        text, text.index("return apply_discount"), template_for("deepseek"), path=root / "shop/cart.py"
    )
    assert "# Path: shop/pricing.py\n" in parts.prompt
    assert parts.prompt.startswith("<｜fim▁begin｜>")
    assert "return amount * (1 - percent" not in parts.prompt  # signatures, not whole bodies


def test_recent_edits_of_other_open_documents(make_repo) -> None:
    root = make_repo("python")
    engine = ContextEngine()
    engine.add_root(root, background=False, watch=False)
    other = (root / "shop/pricing.py").as_uri()
    engine.open_document(other, (root / "shop/pricing.py").read_text(), "python")
    pos = engine.docs[other].text.index("TAX_RATE = 0.2") + len("TAX_RATE = 0.2")
    engine.change_document(other, [(pos, pos, "\nSHIPPING_FLAT_FEE_EUR = 4.99")])
    cur = (root / "shop/cart.py").as_uri()
    text = (root / "shop/cart.py").read_text()
    engine.open_document(cur, text, "python")
    parts = engine.build(text, text.index("return apply_discount"), template_for("qwen"), uri=cur)
    recent = [s for s in parts.snippets if s["kind"] == "recent"]
    assert recent and "SHIPPING_FLAT_FEE_EUR" in str(recent[0]["text"])
    assert "recently edited" in str(recent[0]["reason"])


def test_similar_chunks_fill_when_nothing_is_imported(make_repo) -> None:
    root = make_repo("python")
    (root / "report.py").write_text("def report(book):\n    unit = book.price_of(code)\n    subtotal = 0\n")
    engine = ContextEngine(sources=("similar",))
    engine.add_root(root, background=False, watch=False)
    text = (root / "report.py").read_text()
    parts = engine.build(text, len(text), template_for("qwen"), path=root / "report.py")
    assert any(s["kind"] == "similar" and s["path"] == "shop/cart.py" for s in parts.snippets)


def test_far_uses_resolve_through_base_classes_reexports_and_relative_submodules(make_repo) -> None:
    """`self.fetch_all` comes from the base class, itself re-exported by the package's `__init__`; `text.slugify`
    from `from .util import text`. Both are used ~80 lines above the cursor, and only imports may find them."""
    root = make_repo("pyresolve")
    engine = ContextEngine(sources=("imports",))
    engine.add_root(root, background=False, watch=False)
    text = (root / "app/service.py").read_text()
    parts = engine.build(text, text.index("        return value"), template_for("qwen"), path=root / "app/service.py")
    base = [s for s in parts.snippets if "base class Repository" in str(s["reason"])]
    assert base and base[0]["path"] == "app/models.py", [(s["path"], s["reason"]) for s in parts.snippets]
    assert "def fetch_all(self, limit: int = 10)" in str(base[0]["text"])
    sub = [s for s in parts.snippets if s["path"] == "app/util/text.py" and "text.slugify" in str(s["reason"])]
    assert sub and "def slugify(title: str" in str(sub[0]["text"])


def test_pack_falls_back_to_signatures_when_full_summaries_do_not_fit() -> None:
    from codeassist.context.budget import pack
    from codeassist.context.retrieve import Snippet
    from codeassist.context.tokens import chars4_counter

    doc = "\n".join(f'    """Line {i} of a long docstring."""' for i in range(12))
    cands = [
        Snippet(f"m{i}.py", f"def f{i}(x):\n{doc}", "r", 1.0 - i / 10, 0, 13, short=f"def f{i}(x):") for i in range(5)
    ]
    chosen, costs = pack(cands, lambda s: f"# {s.path}\n{s.text}\n", chars4_counter(), 400)
    assert len(chosen) == 5 and sum(costs) <= 400
    assert chosen[0].text == cands[0].text  # the best one whole
    assert [s.text for s in chosen[1:]] == [f"def f{i}(x):" for i in range(1, 5)]
    assert all("signature only" in s.reason for s in chosen[1:])


def test_occurrences_rank_every_use_in_the_file_by_distance() -> None:
    from codeassist.context.occur import occurrences

    text = "import os\n" + "x = 1\n" * 50 + "os.path.join(a)\n\nfoo()\n"
    lines = text.split("\n")
    occ = occurrences(text, lines, 52)
    assert occ.near["os"] == 1 and occ.near["foo"] == 1 and occ.near["import"] == 52 and occ.near["x"] == 2
    assert occ.qual["os.path.join"] == 1 and occ.members["os.path"] == {"join": 1}
