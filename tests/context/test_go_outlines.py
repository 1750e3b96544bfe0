"""Go: a package-qualified call (``geom.Area(...)``) on a blanked line gets the imported package's outline — its
exported types with their methods (declared in any file of the package) and functions — resolved through
``go.mod`` to the package's directory; a real Go module in a tmp dir, built through the ContextEngine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from codeassist.context.engine import ContextEngine
from codeassist.context.templates import template_for

from tests.context.conftest import build_at_marker, write_tree

GO_MOD = "module example.com/shop\n\ngo 1.21\n"

# Package geom in directory geom/, spread over two files (methods beside the type, in another file).
GEOM = """package geom

// Rect is an axis-aligned rectangle.
type Rect struct {
	W, H float64 // size
	label string
}

// Area returns the area of r.
func Area(r Rect) float64 {
	return r.W * r.H
}

func clamp(v float64) float64 {
	return v
}
"""
SCALE = """package geom

// Scale grows r by k.
func (r *Rect) Scale(k float64) Rect {
	return Rect{W: r.W * k, H: r.H * k}
}

func (r Rect) hidden() {}
"""
# A package whose directory name differs from its package clause: used as `money.`.
MONEY = """package money

type Cents int64

func Format(c Cents, currency string) string {
	return currency
}
"""
# Same last path element as the real package, elsewhere in the repo: not what the import names.
DECOY = """package geom

func Perimeter(sides int) int {
	return sides
}
"""
INVOICE = """package billing

import (
	"fmt"

	"example.com/shop/geom"
	"example.com/shop/internal/currency"
)

func Total(rects []geom.Rect) string {
	sum := 0.0
	for _, r := range rects {
		@@
	}
	return money.Format(money.Cents(sum), "EUR") + fmt.Sprint(len(rects))
}
"""
# The same file without the geom import (and without the call's package).
NO_IMPORT = """package billing

import (
	"fmt"
)

func Total(rects []float64) string {
	sum := 0.0
	for _, r := range rects {
		@@
	}
	return fmt.Sprint(sum, len(rects))
}
"""
AREA_SIG = "func Area(r Rect) float64"
SCALE_SIG = "func (r *Rect) Scale(k float64) Rect"


def _module(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    files = {
        "go.mod": GO_MOD,
        "geom/geom.go": GEOM,
        "geom/scale.go": SCALE,
        "geom/geom_test.go": "package geom\n\nfunc TestOnlyHelper() {}\n",
        "internal/currency/money.go": MONEY,
        "legacy/geom/geom.go": DECOY,
        "billing/invoice.go": INVOICE,
    }
    return write_tree(root, files)


def _build(root: Path, text: str, sources: tuple[str, ...] = ("imports", "symbols")) -> dict:
    """Build for a cursor on the blanked line of the loop body (``@@``, where ``a := geom.Area(r)`` goes); one
    test below runs with all sources."""
    return build_at_marker(root, "billing/invoice.go", text, sources)


def test_an_imported_package_brings_its_exported_signatures(tmp_path: Path) -> None:
    out = _build(_module(tmp_path), INVOICE)
    prompt = out["prompt"]
    assert AREA_SIG in prompt  # the callee of the blanked line
    assert SCALE_SIG in prompt  # a method of an exported type, declared in another file of the package
    assert "type Rect struct { W, H float64 }" in prompt  # exported fields only
    assert "clamp" not in prompt and "hidden" not in prompt and "label" not in prompt  # unexported
    assert "TestOnlyHelper" not in prompt  # _test.go files are not the package's API
    assert "Perimeter" not in prompt  # legacy/geom is another package: go.mod says which directory
    rect = [s for s in out["snippets"] if "uses geom.Rect" in str(s["reason"])]
    assert rect and str(rect[0]["text"]).startswith(
        "// Rect is an axis-aligned rectangle.\ntype Rect struct { W, H float64 }\n\t" + SCALE_SIG
    )
    reasons = [str(s["reason"]) for s in out["snippets"] if s["path"] == "geom/geom.go"]
    assert any("imports module geom" in r for r in reasons), [(s["path"], s["reason"]) for s in out["snippets"]]


def test_the_package_clause_names_the_import_not_the_directory(tmp_path: Path) -> None:
    out = _build(_module(tmp_path), INVOICE)
    outline = [s for s in out["snippets"] if "imports module money" in str(s["reason"])]
    assert outline, [(s["path"], s["reason"]) for s in out["snippets"]]
    assert outline[0]["path"] == "internal/currency/money.go"
    assert "func Format(c Cents, currency string) string" in str(outline[0]["text"])
    assert "type Cents int64" in str(outline[0]["text"])


def test_without_the_import_the_signature_is_not_there(tmp_path: Path) -> None:
    out = _build(_module(tmp_path), NO_IMPORT)
    assert AREA_SIG not in out["prompt"] and SCALE_SIG not in out["prompt"]
    assert not any(s["path"].startswith("geom/") for s in out["snippets"])


def test_an_aliased_import_and_the_default_sources(tmp_path: Path) -> None:
    text = INVOICE.replace('"example.com/shop/geom"', 'g "example.com/shop/geom"').replace("geom.Rect", "g.Rect")
    out = _build(_module(tmp_path), text, sources=("imports", "symbols", "recent", "similar"))
    assert AREA_SIG in out["prompt"] and SCALE_SIG in out["prompt"]
    assert any("imports module g" in str(s["reason"]) for s in out["snippets"])


def test_codeassist_context_shows_the_package_outline(tmp_path: Path) -> None:
    root = _module(tmp_path)
    (root / "billing/invoice.go").write_text(INVOICE.replace("@@", ""))
    line = INVOICE[: INVOICE.index("@@")].count("\n") + 1
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "codeassist.client.cli",
            "context",
            f"billing/invoice.go:{line}:3",
            "--json",
            "--family",
            "qwen",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    outline = [s for s in out["snippets"] if "imports module geom" in s["reason"]]
    assert outline and AREA_SIG in outline[0]["text"] and AREA_SIG in out["prompt"]


def test_a_nested_module_reaches_the_repo_module_and_its_local_replacements(tmp_path: Path) -> None:
    """An example kept as a module of its own imports the repo's module (the root go.mod) and a library that a
    ``replace`` directive points at a directory of the repo."""
    root = _module(tmp_path)
    files = {
        "kit/go.mod": "module example.com/kit\n\ngo 1.21\n",
        "kit/strs/strs.go": "package strs\n\n// Slug makes s URL-safe.\nfunc Slug(s string) string {\n\treturn s\n}\n",
        "examples/demo/go.mod": (
            "module demo\n\ngo 1.21\n\nrequire (\n\texample.com/shop v0.0.0\n\texample.com/kit v0.1.0\n)\n\n"
            "replace example.com/kit v0.1.0 => ../../kit\n"
        ),
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    main = (
        'package main\n\nimport (\n\t"example.com/kit/strs"\n\t"example.com/shop/geom"\n)\n\nfunc main() {\n\t@@\n}\n'
    )
    rel = "examples/demo/main.go"
    offset = main.index("@@")
    text = main.replace("@@", "")
    (root / rel).write_text(text)
    engine = ContextEngine(budget=2048, sources=("imports",))
    try:
        engine.add_root(root, background=False, watch=False)
        parts = engine.build(text, offset, template_for("qwen"), path=root / rel)
    finally:
        engine.close()
    assert AREA_SIG in parts.prompt and "func Slug(s string) string" in parts.prompt
    assert {s["path"] for s in parts.snippets} >= {"kit/strs/strs.go"}
