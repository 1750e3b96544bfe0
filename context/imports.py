"""Import statements per language, and their resolution to files of the repo (best effort for C/C++).

``extract_imports`` reads a syntax tree; ``resolve`` maps one import to repo-relative paths using the index's
file tables (``basenames``: file name -> paths, and the set of all paths).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from codeassist.context import golang, rust
from tree_sitter import Node

__all__ = ["ImportRef", "extract_imports", "resolve"]

_JS_EXTS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".d.ts")
_NESTED = frozenset(
    {
        "if_statement",
        "try_statement",
        "block",
        "else_clause",
        "except_clause",
        "export_statement",
        "preproc_ifdef",
        "preproc_if",
        "preproc_else",
        "import_declaration",
        "import_spec_list",
        "declaration_list",
        "linkage_specification",
    }
)


@dataclass(slots=True)
class ImportRef:
    module: str  # "a.b", "./foo", "fmt", "crate::a::b", "foo.h", "java.util.List"
    names: tuple[str, ...] = ()  # names brought in; empty = the module itself (used as alias.name)
    alias: str | None = None  # local name of the module (Go: None = the package clause's name)
    level: int = 0  # Python relative-import dots
    bound: tuple[str, ...] = ()  # local names of ``names`` where they differ (``from m import a as b``)

    def local_names(self) -> tuple[str, ...]:
        return self.bound or self.names


def _t(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text else ""


def _python(node: Node, out: list[ImportRef]) -> None:
    if node.type == "import_statement":
        for n in node.named_children:
            if n.type == "aliased_import":
                out.append(ImportRef(_t(n.child_by_field_name("name")), alias=_t(n.child_by_field_name("alias"))))
            elif n.type == "dotted_name":
                out.append(ImportRef(_t(n), alias=_t(n).split(".")[0]))
    elif node.type == "import_from_statement":
        mod = node.child_by_field_name("module_name")
        level, module = 0, _t(mod)
        if mod is not None and mod.type == "relative_import":
            level = len(module) - len(module.lstrip("."))
            module = module.lstrip(".")
        names, bound = [], []
        for n in node.children_by_field_name("name"):
            aliased = n.type == "aliased_import"
            names.append(_t(n.child_by_field_name("name")) if aliased else _t(n))
            bound.append(_t(n.child_by_field_name("alias")) if aliased else names[-1])
        out.append(ImportRef(module, tuple(names), level=level, bound=tuple(bound) if bound != names else ()))


def _js(node: Node, out: list[ImportRef]) -> None:
    if node.type != "import_statement":
        return
    src = _t(node.child_by_field_name("source")).strip("'\"`")
    names: list[str] = []
    alias = None
    for clause in node.named_children:
        if clause.type != "import_clause":
            continue
        for c in clause.named_children:
            if c.type == "identifier":
                names.append(_t(c))
            elif c.type == "namespace_import":
                alias = _t(c.named_children[-1]) if c.named_child_count else None
            elif c.type == "named_imports":
                names += [_t(s.child_by_field_name("name")) for s in c.named_children if s.type == "import_specifier"]
    out.append(ImportRef(src, tuple(names), alias=alias))


def _other(lang: str, node: Node, out: list[ImportRef]) -> None:
    t = node.type
    if lang == "go" and t == "import_spec":
        # The local name: the explicit one (``g``, ``.``, ``_``), else (None) the package clause of the target,
        # which the resolver reads.
        path = _t(node.child_by_field_name("path")).strip('"`')
        out.append(ImportRef(path, alias=_t(node.child_by_field_name("name")) or None))
    elif lang == "rust" and t == "use_declaration":
        out += rust.use_refs(node, ImportRef)
    elif lang == "rust" and t == "mod_item" and node.child_by_field_name("body") is None:
        name = _t(node.child_by_field_name("name"))  # `mod foo;`: the module `foo` (a file beside this one)
        out.append(ImportRef("self::" + name, alias=name))
    elif lang == "java" and t == "import_declaration":
        text = _t(node).removeprefix("import").removesuffix(";").replace("static ", "").strip()
        out.append(ImportRef(text))
    elif lang in ("c", "cpp") and t == "preproc_include":
        out.append(ImportRef(_t(node.child_by_field_name("path")).strip('"<>')))


def extract_imports(root: Node, lang: str) -> list[ImportRef]:
    out: list[ImportRef] = []

    def visit(node: Node, depth: int) -> None:
        for child in node.named_children:
            if lang == "python":
                _python(child, out)
            elif lang in ("javascript", "typescript", "tsx"):
                _js(child, out)
            else:
                _other(lang, child, out)
            if child.type in _NESTED and depth < 3:
                visit(child, depth + 1)

    visit(root, 0)
    return out


def _by_suffix(suffix: str, basenames: Mapping[str, list[str]]) -> list[str]:
    name = suffix.rsplit("/", 1)[-1]
    return [p for p in basenames.get(name, ()) if p == suffix or p.endswith("/" + suffix)]


def resolve(
    ref: ImportRef,
    from_rel: str,
    lang: str,
    files: Collection[str],
    basenames: Mapping[str, list[str]],
    root: Path | None = None,
    crates: Callable[[], Mapping[str, str]] | None = None,
) -> list[str]:
    """Repo-relative files ``ref`` names, seen from ``from_rel``. Go: the package's files (``root`` locates the
    ``go.mod``); Rust: the module's file (for ``use a::b::C``, the file of ``a::b``; ``crates``: the repo's
    library crates by name, asked only for a path that starts with another crate's name)."""
    here = posixpath.dirname(from_rel)
    if lang == "python":
        base = here
        for _ in range(ref.level - 1):
            base = posixpath.dirname(base)
        if ref.level and not ref.module and posixpath.join(base, "__init__.py") in files:
            found_pkg = [posixpath.join(base, "__init__.py")]  # `from . import x`: the package itself
        else:
            found_pkg = []
        mods = [ref.module] if ref.module else []
        if ref.names:  # `from pkg import sub` may name submodules
            mods += [f"{ref.module}.{n}" if ref.module else n for n in ref.names]
        found: list[str] = found_pkg
        for mod in mods:
            path = mod.replace(".", "/")
            if ref.level:
                cands = [posixpath.join(base, path + ".py"), posixpath.join(base, path, "__init__.py")]
                found += [c for c in cands if c in files]
            else:
                # The shortest leftover prefix wins: `test/support/__init__.py` over `tkinter/test/support.py`.
                hits = [(len(p) - len(path) - 3, p) for p in _by_suffix(path + ".py", basenames)]
                hits += [(len(p) - len(path) - 12, p) for p in _by_suffix(path + "/__init__.py", basenames)]
                found += [p for _, p in sorted(hits)[:2]]
        return list(dict.fromkeys(found))
    if lang in ("javascript", "typescript", "tsx"):
        if not ref.module.startswith("."):
            return []
        base = posixpath.normpath(posixpath.join(here, ref.module))
        cands = [base] + [base + e for e in _JS_EXTS] + [f"{base}/index{e}" for e in _JS_EXTS]
        return [c for c in cands if c in files][:1]
    if lang == "go":
        return golang.resolve_import(ref.module, from_rel, files, root)
    if lang == "rust":
        return rust.resolve_module(ref.module, from_rel, files, crates)
    if lang == "java":
        path = ref.module.replace(".", "/")
        if path.endswith("/*"):
            d = path[:-2]
            return sorted(f for f in files if posixpath.dirname(f).endswith(d) and f.endswith(".java"))[:20]
        return sorted(_by_suffix(path + ".java", basenames), key=len)[:1]
    if lang in ("c", "cpp"):
        local = posixpath.normpath(posixpath.join(here, ref.module))
        if local in files:
            return [local]
        return sorted(_by_suffix(ref.module, basenames), key=len)[:1]
    return []
