"""Rust: ``use`` trees read leaf by leaf (``use crate::a::{b::C, d as e, self, f::*}``), module paths resolved
to the module's file (``crate::a::b`` -> ``<crate src>/a/b.rs`` or ``a/b/mod.rs``; ``self::`` / ``super::`` from
the current module), and outlines of what an imported item offers: a struct / enum / trait with the signatures
of its public methods (``pub fn`` of its inherent impls, the methods of its trait impls after them), a module's
``pub`` items. Paths into other crates (``std::``, dependencies) resolve to nothing: their source is elsewhere."""

from __future__ import annotations

import posixpath
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from codeassist.context.safe_read import SkipFile, read_beneath
from tree_sitter import Node

if TYPE_CHECKING:
    from codeassist.context.imports import ImportRef
    from codeassist.context.resolve import Resolver
    from codeassist.context.symbols import Definition

__all__ = ["module_outline", "public", "resolve_module", "type_outline", "use_refs", "workspace_crates"]

_ROOTS = ("lib.rs", "main.rs")
_SPECIAL = frozenset({"crate", "self", "super"})
_STD = frozenset({"std", "core", "alloc", "proc_macro", "test"})
_TYPES = frozenset({"struct_item", "enum_item", "trait_item", "union_item", "type_item"})
MAX_METHODS = 24


def _t(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text else ""


def use_refs(node: Node, make: type[ImportRef]) -> list[ImportRef]:
    """One import per leaf of a ``use`` declaration: ``(module path, name, local name)``; a ``self`` leaf binds the
    module itself (``alias``), a ``*`` leaf makes all of a module's names visible (no names, no alias)."""
    out: list[ImportRef] = []

    def path_of(n: Node | None) -> list[str]:
        return [s for s in _t(n).replace(" ", "").replace("\n", "").split("::") if s] if n is not None else []

    def leaf(prefix: list[str], n: Node) -> None:
        t = n.type
        if t == "scoped_use_list":
            sub = n.child_by_field_name("list")
            if sub is not None:
                leaf(prefix + path_of(n.child_by_field_name("path")), sub)
        elif t == "use_list":
            for c in n.named_children:
                leaf(prefix, c)
        elif t == "use_wildcard":
            inner = [c for c in n.named_children if c.type not in ("*",)]
            out.append(make("::".join(prefix + (path_of(inner[0]) if inner else []))))
        elif t == "self":
            if prefix:
                out.append(make("::".join(prefix), alias=prefix[-1]))
        elif t in ("use_as_clause", "identifier", "scoped_identifier", "crate", "super"):
            alias = _t(n.child_by_field_name("alias")) if t == "use_as_clause" else ""
            full = prefix + path_of(n.child_by_field_name("path") if t == "use_as_clause" else n)
            if not full:
                return
            if full[-1] == "self":  # use a::b::self
                full = full[:-1]
                if full:
                    out.append(make("::".join(full), alias=alias or full[-1]))
                return
            if alias == "_":  # use a::Trait as _: brings no name
                return
            name = full[-1]
            out.append(make("::".join(full[:-1]), (name,), bound=(alias,) if alias and alias != name else ()))

    arg = node.child_by_field_name("argument")
    if arg is not None:
        leaf([], arg)
    return out


def crate_src(from_rel: str, files: Collection[str]) -> str | None:
    """The directory of the crate root (``lib.rs`` / ``main.rs``) at or above the file's directory."""
    d = posixpath.dirname(from_rel)
    while True:
        if any(posixpath.join(d, n) in files for n in _ROOTS):
            return d
        if not d:
            return None
        d = posixpath.dirname(d)


def module_dir(rel: str) -> str:
    """Where the children of the module that file ``rel`` holds live: ``src/a/mod.rs`` -> ``src/a``,
    ``src/a/b.rs`` -> ``src/a/b``, ``src/lib.rs`` -> ``src``."""
    base = posixpath.basename(rel)
    if base in (*_ROOTS, "mod.rs"):
        return posixpath.dirname(rel)
    return rel.removesuffix(".rs")


def _module_file(directory: str, src: str | None, files: Collection[str]) -> list[str]:
    if directory == src:
        return [p for n in _ROOTS if (p := posixpath.join(directory, n)) in files][:1]
    cands = (directory + ".rs", posixpath.join(directory, "mod.rs"))
    return [c for c in cands if c in files][:1]


def resolve_module(
    module: str,
    from_rel: str,
    files: Collection[str],
    crates: Callable[[], Mapping[str, str]] | None = None,
) -> list[str]:
    """The file of module path ``module`` (``crate::a::b``, ``super::x``, ``self::y``, ``a::b`` relative to this
    module or to the crate root, ``other_crate::a`` for a library crate of the same repo: ``crates`` gives them),
    seen from file ``from_rel``; [] for a module of a crate outside the repo (``std``, dependencies)."""
    if not module or module.startswith("::"):
        return []
    segs = module.split("::")
    src = crate_src(from_rel, files)
    here = module_dir(from_rel)
    if segs[0] == "crate":
        if src is None:
            return _by_path(segs[1:], files)
        bases, rest = [src], segs[1:]
    elif segs[0] in ("self", "super"):
        base, i = here, 1 if segs[0] == "self" else 0
        while i < len(segs) and segs[i] == "super":
            base, i = posixpath.dirname(base), i + 1
        bases, rest = [base], segs[i:]
    else:  # a child module of this one, or (a 2018 path from the crate root's scope) of the crate root
        bases, rest = [here] + ([src] if src is not None and src != here else []), segs
    for base in bases:
        found = _module_file(posixpath.join(base, *rest) if rest else base, src, files)
        if found:
            return found
    if segs[0] not in _SPECIAL and segs[0] not in _STD and crates is not None:
        other = crates().get(segs[0])
        if other is not None:
            return _module_file(posixpath.join(other, *segs[1:]) if segs[1:] else other, other, files)
    return []


def workspace_crates(root: Path, files: Collection[str]) -> dict[str, str]:
    """The repo's library crates: name as ``use`` spells it (``geo-core`` -> ``geo_core``, or ``[lib] name``) ->
    the directory of its ``lib.rs``, for each ``Cargo.toml`` beside a ``src/lib.rs``."""
    out: dict[str, str] = {}
    for f in sorted(files, key=len):
        if f != "src/lib.rs" and not f.endswith("/src/lib.rs"):
            continue
        crate_dir = posixpath.dirname(posixpath.dirname(f))
        try:
            manifest_rel = posixpath.join(crate_dir, "Cargo.toml") if crate_dir else "Cargo.toml"
            data, _ = read_beneath(root, manifest_rel, 1 << 20)
            manifest = tomllib.loads(data.decode("utf-8"))
        except (SkipFile, OSError, ValueError, UnicodeDecodeError):
            continue
        lib, package = manifest.get("lib"), manifest.get("package")
        name = (lib.get("name") if isinstance(lib, dict) else None) or (
            package.get("name") if isinstance(package, dict) else None
        )
        if isinstance(name, str) and name:
            out.setdefault(name.replace("-", "_"), posixpath.dirname(f))
    return out


def _by_path(segs: list[str], files: Collection[str]) -> list[str]:
    """No crate root found: the shortest file whose path ends with the module path."""
    if not segs:
        return []
    tail = "/".join(segs)
    hits = [f for f in files if f.endswith((f"/{tail}.rs", f"/{tail}/mod.rs")) or f in (f"{tail}.rs", f"{tail}/mod.rs")]
    return sorted(hits, key=len)[:1]


def public(m: Definition) -> bool:
    """A member others can call: ``pub`` (any visibility modifier), a trait's method, a trait impl's method."""
    from codeassist.context.outline import signature

    owner_line = m.text.split("\n", 1)[0] if m.owner else ""
    return signature(m).startswith("pub") or " for " in owner_line or re.search(r"\btrait\b", owner_line) is not None


def _line(sig: str) -> str:
    return sig.removesuffix("{").rstrip().removesuffix(";")


def _doc(d: Definition) -> str:
    a, _ = d.sig
    for ln in d.text.split("\n")[:a]:
        ln = ln.strip()
        if ln.startswith(("///", "//!")):
            return ln
    return ""


def _head(r: Resolver, d: Definition) -> list[str]:
    """A type's doc line and its declaration: a short struct / enum whole (its fields), a long one's first line."""
    from codeassist.context.outline import doc_above, signature

    doc = _doc(d) or doc_above(r, d)
    lines = d.text.split("\n")
    a, _ = d.sig
    body = [ln.rstrip() for ln in lines[a:]]
    if d.kind == "trait_item" or len(body) > 8:
        decl = [_line(signature(d)) + (" { ... }" if d.kind != "trait_item" and len(body) > 8 else "")]
    else:
        decl = body
    return ([doc] if doc else []) + decl


def _methods(r: Resolver, d: Definition, first: tuple[str, ...]) -> list[Definition]:
    from codeassist.context.outline import popularity

    wanted = {name: i for i, name in enumerate(first)}
    seen: set[str] = set()
    ranked = []
    for i, m in enumerate(r.members(d.path).get(d.name, ())):
        if m.name in seen or not (m.name in wanted or public(m)):
            continue
        seen.add(m.name)
        trait_impl = " for " in m.text.split("\n", 1)[0]
        ctor = m.name in ("new", "default") or m.name.startswith(("new_", "with_", "from_"))
        rank = (wanted.get(m.name, len(wanted)), trait_impl, not ctor, -popularity(r.index, m.name), i)
        ranked.append((rank, m))
    ranked.sort(key=lambda t: t[0])
    return [m for _, m in ranked[:MAX_METHODS]]


def type_outline(r: Resolver, d: Definition, first: tuple[str, ...] = ()) -> str:
    """``pub struct X { .. }`` + doc line + the signatures of its public methods, the ones the file uses first."""
    from codeassist.context.outline import signature

    key = ("rs-type", d.path, d.line, first)
    hit = r.cache.get(key)
    if hit is None:
        lines = _head(r, d) + ["    " + _line(signature(m)) for m in _methods(r, d, first)]
        hit = r.cache[key] = "\n".join(lines)
    return hit


def is_type(d: Definition) -> bool:
    return d.kind in _TYPES


def module_outline(r: Resolver, targets: list[str], limit: int) -> str:
    """A module's ``pub`` items: functions' signatures, types with their public methods; re-exports followed."""
    from codeassist.context.outline import popularity, signature

    found: dict[str, Definition] = {}
    for target in targets:
        for name, defs in r.top_defs(target).items():
            d = next((x for x in defs if x.kind != "impl_item"), defs[0])
            if d.kind not in ("impl_item", "mod_item", "variable") and signature(d).startswith("pub"):
                found.setdefault(name, d)
        for local, pairs in r.bindings(target).names.items():
            if local in found:
                continue
            for sub, orig in pairs:
                defs = [x for x in r.lookup(sub, orig) if x.kind not in ("impl_item", "variable")]
                if defs:
                    found[local] = defs[0]
                    break
    ranked = sorted(found.items(), key=lambda kv: (-popularity(r.index, kv[0]), kv[0]))[:limit]
    lines: list[str] = []
    for _, d in ranked:
        if is_type(d):
            lines.append(_line(signature(d)))
            lines += ["    " + _line(signature(m)) for m in _methods(r, d, ())[:8]]
        else:
            lines.append(_line(signature(d)))
    return "\n".join(lines)
