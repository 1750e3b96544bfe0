"""Rust: ``use crate::…`` / ``use super::…`` paths resolve to the module's file (``a/b.rs`` or ``a/b/mod.rs``), and a
call on a blanked line gets what the imported item offers: a struct with its ``pub fn`` methods (generic impls
too), a trait with its methods, a module's ``pub`` items — never private ones. A real Cargo crate in a tmp dir,
built through the ContextEngine."""

from __future__ import annotations

from pathlib import Path

from tests.context.conftest import build_at_marker, write_tree

CARGO = '[package]\nname = "geo"\nversion = "0.1.0"\nedition = "2021"\n'
LIB = "pub mod shapes;\npub mod store;\npub mod report;\n"
SHAPES = "pub mod circle;\n\npub use self::circle::Circle;\n"
CIRCLE = """use std::fmt;

/// Anything with an area.
pub trait Shape {
    fn area(&self) -> f64;
    fn name(&self) -> String {
        String::from("shape")
    }
}

/// A circle.
/// Centred on the origin.
#[derive(Debug, Clone)]
pub struct Circle {
    pub radius: f64,
}

impl Circle {
    /// Makes a circle of radius `radius`.
    pub fn new(radius: f64) -> Self {
        Circle { radius }
    }

    pub fn scaled(&self, k: f64) -> Circle {
        Circle::new(self.radius * k)
    }

    fn secret_tuning(&self) -> u8 {
        7
    }
}

impl fmt::Display for Circle {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "circle({})", self.radius)
    }
}

pub fn unit_circle() -> Circle {
    Circle::new(1.0)
}

fn private_helper() -> u8 {
    0
}
"""
STORE = """pub struct Stack<T> {
    items: Vec<T>,
}

impl<T: Clone> Stack<T> {
    pub fn with_capacity(cap: usize) -> Self {
        Stack { items: Vec::with_capacity(cap) }
    }

    pub fn push_all(&mut self, xs: &[T]) -> usize {
        self.items.extend_from_slice(xs);
        self.items.len()
    }
}
"""
# A file of the same name elsewhere: `crate::shapes::circle` is not it.
DECOY = "pub fn legacy_circle_area(r: f32) -> f32 {\n    r\n}\n"
REPORT = """use crate::shapes::circle::{Circle, Shape};
use crate::store::Stack;

pub fn summary(r: f64) -> String {
    let mut stack = Stack::with_capacity(2);
    @@
    format!("{}", r)
}
"""
NESTED = """use super::super::shapes::circle;

pub fn unit_area() -> f64 {
    @@
    0.0
}
"""
NO_IMPORT = """pub fn summary(r: f64) -> String {
    let mut total = 0.0;
    @@
    format!("{}", r)
}
"""
NEW_SIG = "pub fn new(radius: f64) -> Self"


def _crate(tmp_path: Path) -> Path:
    root = tmp_path / "geo"
    files = {
        "Cargo.toml": CARGO,
        "src/lib.rs": LIB,
        "src/shapes/mod.rs": SHAPES,
        "src/shapes/circle.rs": CIRCLE,
        "src/store.rs": STORE,
        "src/legacy/circle.rs": DECOY,
        "src/report.rs": REPORT,
    }
    return write_tree(root, files)


def _build(root: Path, rel: str, text: str) -> dict:
    """Build for a cursor on the blanked line (``@@`` marks the cursor, the line is otherwise blank)."""
    return build_at_marker(root, rel, text)


def _reasons(out: dict) -> list[tuple[str, str]]:
    return [(str(s["path"]), str(s["reason"])) for s in out["snippets"]]


def test_a_used_struct_comes_with_its_public_methods(tmp_path: Path) -> None:
    out = _build(_crate(tmp_path), "src/report.rs", REPORT)
    circle = [s for s in out["snippets"] if s["path"] == "src/shapes/circle.rs" and "pub struct Circle" in s["text"]]
    assert circle, _reasons(out)
    text = str(circle[0]["text"])
    assert text.startswith("/// A circle.\npub struct Circle {")  # its doc line, above #[derive] and all
    assert NEW_SIG in text and "pub fn scaled(&self, k: f64) -> Circle" in text
    assert "fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result" in text  # a trait impl's method, after
    assert text.index(NEW_SIG) < text.index("fn fmt(")
    assert "secret_tuning" not in out["prompt"] and "private_helper" not in out["prompt"]
    assert "legacy_circle_area" not in out["prompt"]
    assert NEW_SIG in out["prompt"]


def test_a_trait_lists_its_methods_and_a_generic_impl_its_owner(tmp_path: Path) -> None:
    out = _build(_crate(tmp_path), "src/report.rs", REPORT)
    shape = [s for s in out["snippets"] if "pub trait Shape" in str(s["text"])]
    assert shape and "fn area(&self) -> f64" in str(shape[0]["text"]), _reasons(out)
    stack = [s for s in out["snippets"] if "pub struct Stack<T>" in str(s["text"])]
    assert stack, _reasons(out)
    assert "pub fn with_capacity(cap: usize) -> Self" in str(stack[0]["text"])  # impl<T: Clone> Stack<T>
    assert "pub fn push_all(&mut self, xs: &[T]) -> usize" in str(stack[0]["text"])


def test_a_super_path_to_a_module_brings_its_pub_items(tmp_path: Path) -> None:
    root = _crate(tmp_path)
    (root / "src/report/mod.rs").parent.mkdir(parents=True)
    (root / "src/report.rs").unlink()
    (root / "src/report/mod.rs").write_text("pub mod nested;\n")
    out = _build(root, "src/report/nested.rs", NESTED)
    outline = [s for s in out["snippets"] if "imports module circle" in str(s["reason"])]
    assert outline and outline[0]["path"] == "src/shapes/circle.rs", _reasons(out)
    text = str(outline[0]["text"])
    assert "pub fn unit_circle() -> Circle" in text and NEW_SIG in text and "pub trait Shape" in text
    assert "private_helper" not in text and "secret_tuning" not in text


def test_without_the_import_the_signatures_are_not_there(tmp_path: Path) -> None:
    out = _build(_crate(tmp_path), "src/report.rs", NO_IMPORT)
    assert NEW_SIG not in out["prompt"] and "with_capacity" not in out["prompt"]
    assert not any(s["path"] in ("src/shapes/circle.rs", "src/store.rs") for s in out["snippets"])


def test_a_workspace_crate_is_reached_by_its_name(tmp_path: Path) -> None:
    """``use geo_core::Circle`` in one crate of a Cargo workspace names the library crate ``geo-core`` beside
    it (its Cargo.toml's name, ``-`` spelled ``_``), and its ``pub use`` re-export is followed to the struct."""
    root = tmp_path / "ws"
    files = {
        "Cargo.toml": '[workspace]\nmembers = ["crates/*"]\n',
        "crates/geo-core/Cargo.toml": '[package]\nname = "geo-core"\nversion = "0.1.0"\n',
        "crates/geo-core/src/lib.rs": "pub mod shapes;\n\npub use shapes::circle::Circle;\n",
        "crates/geo-core/src/shapes/mod.rs": "pub mod circle;\n",
        "crates/geo-core/src/shapes/circle.rs": CIRCLE,
        "crates/app/Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\n',
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    main = "use geo_core::Circle;\nuse std::fmt;\n\nfn main() {\n    @@\n}\n"
    out = _build(root, "crates/app/src/main.rs", main)
    circle = [s for s in out["snippets"] if "pub struct Circle" in str(s["text"])]
    assert circle and circle[0]["path"] == "crates/geo-core/src/shapes/circle.rs", _reasons(out)
    assert NEW_SIG in str(circle[0]["text"]) and "imports Circle" in str(circle[0]["reason"])
