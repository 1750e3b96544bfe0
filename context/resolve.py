"""Name resolution over the repo index for one file: what its imports bind, where a name imported from a
module is really defined (following re-exports such as ``from .case import TestCase`` in ``__init__.py`` and
star imports), and the base classes of a class (for ``self.method``).

All lookups are memoised in a cache that the engine clears whenever the index changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from codeassist.context import golang, rust
from codeassist.context.imports import ImportRef, resolve
from codeassist.context.index import RepoIndex
from codeassist.context.symbols import Definition

__all__ = ["Bindings", "Resolver"]

_CLASS_HEAD = re.compile(r"^\s*class\s+\w+\s*\((.*)\)\s*:", re.S)
_TYPE_KINDS = frozenset(
    {
        "class_definition",
        "class_declaration",
        "struct_item",
        "impl_item",
        "trait_item",
        "interface_declaration",
        "class_specifier",
        "struct_specifier",
        "type_spec",
    }
)


@dataclass
class Bindings:
    """What a file's imports bind locally."""

    modules: dict[str, list[str]] = field(default_factory=dict)  # local module name/chain -> target files
    names: dict[str, list[tuple[list[str], str]]] = field(default_factory=dict)  # local -> [(targets, original)]
    star: list[str] = field(default_factory=list)  # targets whose names are all visible (star, #include, Java)


class Resolver:
    def __init__(self, index: RepoIndex, lang: str | None, cache: dict[Any, Any]) -> None:
        self.index, self.lang, self.cache = index, lang, cache

    def _targets(self, ref: ImportRef, from_rel: str) -> list[str]:
        key = ("t", from_rel, ref.level, ref.module, ref.names)
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = resolve(
                ref,
                from_rel,
                self.lang or "",
                self.index.files,
                self.index.basenames,
                root=self.index.root,
                crates=self._crates,
            )
        return hit

    def _crates(self) -> dict[str, str]:
        """The repo's Rust library crates by name (read once per index generation)."""
        key = ("rs-crates", self.index.root)
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = rust.workspace_crates(self.index.root, self.index.files)
        return hit

    def bindings(self, rel: str, imports: list[ImportRef] | None = None) -> Bindings:
        """Bindings of ``rel``'s imports (``imports`` given for an open document, else from the index)."""
        key = ("b", rel) if imports is None else None  # an open document's imports may differ from disk
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
            entry = self.index.files.get(rel)
            imports = entry.imports if entry is not None else []
        b = Bindings()
        for ref in imports:
            if self.lang == "python":
                self._python_binding(ref, rel, b)
                continue
            if self.lang == "go":
                self._go_binding(ref, rel, b)
                continue
            if self.lang == "rust":
                self._rust_binding(ref, rel, b)
                continue
            targets = self._targets(ref, rel)
            if not targets:
                continue
            if ref.alias:
                b.modules.setdefault(ref.alias, []).extend(targets)
            if ref.names:
                for name, local in zip(ref.names, ref.local_names(), strict=False):
                    b.names.setdefault(local, []).append((targets, name))
            elif not ref.alias:
                b.star.extend(targets)
        if key is not None:
            self.cache[key] = b
        return b

    def _python_binding(self, ref: ImportRef, rel: str, b: Bindings) -> None:
        if not ref.names:  # import a.b [as m]; from m import *
            targets = self._targets(ImportRef(ref.module, level=ref.level), rel)
            if not targets:
                return
            if ref.alias is None:
                b.star.extend(targets)
            elif ref.alias == ref.module.split(".")[0] and "." in ref.module:
                b.modules.setdefault(ref.module, []).extend(targets)  # used as a.b.name
            else:
                b.modules.setdefault(ref.alias, []).extend(targets)
            return
        base = self._targets(ImportRef(ref.module, level=ref.level), rel) if (ref.module or ref.level) else []
        for name, local in zip(ref.names, ref.local_names(), strict=False):
            sub = f"{ref.module}.{name}" if ref.module else name
            mod = self._targets(ImportRef(sub, level=ref.level), rel)
            if mod:  # `from pkg import submodule`: a module alias
                b.modules.setdefault(local, []).extend(mod)
            if base:
                b.names.setdefault(local, []).append((base, name))

    def _go_binding(self, ref: ImportRef, rel: str, b: Bindings) -> None:
        """``import g "m/geom"`` binds ``g``; ``import "m/geom"`` binds the package clause's name; ``.`` makes the
        package's names visible unqualified; ``_`` binds nothing."""
        if ref.alias == "_":
            return
        targets = self._targets(ref, rel)
        if not targets:
            return
        if ref.alias == ".":
            b.star.extend(targets)
        else:
            local = ref.alias or golang.package_name(self, targets, ref.module)
            b.modules.setdefault(local, []).extend(targets)

    def _rust_binding(self, ref: ImportRef, rel: str, b: Bindings) -> None:
        """``use a::b::c [as d]``: ``c`` is a module (its file exists) or an item of module ``a::b``;
        ``use a::b::{self}`` / ``mod b;`` bind the module; ``use a::b::*`` makes its items visible."""
        if not ref.names:
            targets = self._targets(ImportRef(ref.module), rel)
            if targets and ref.alias:
                b.modules.setdefault(ref.alias, []).extend(targets)
            elif targets:
                b.star.extend(targets)
            return
        for name, local in zip(ref.names, ref.local_names(), strict=False):
            sub = self._targets(ImportRef(f"{ref.module}::{name}" if ref.module else name), rel)
            if sub:
                b.modules.setdefault(local, []).extend(sub)
                continue
            base = self._targets(ImportRef(ref.module), rel) if ref.module else []
            if base:
                b.names.setdefault(local, []).append((base, name))

    # -- definitions ---------------------------------------------------------------------------------
    def top_defs(self, rel: str) -> dict[str, list[Definition]]:
        key = ("d", rel)
        hit = self.cache.get(key)
        if hit is None:
            hit = {}
            entry = self.index.files.get(rel)
            for d in entry.defs if entry is not None else ():
                if not d.owner:
                    hit.setdefault(d.name, []).append(d)
            self.cache[key] = hit
        return hit

    def members(self, rel: str) -> dict[str, list[Definition]]:
        """Owner (class/impl/namespace) -> its members in source order, for file ``rel``."""
        key = ("mo", rel)
        hit = self.cache.get(key)
        if hit is None:
            hit = {}
            entry = self.index.files.get(rel)
            for d in entry.defs if entry is not None else ():
                if d.owner:
                    hit.setdefault(d.owner, []).append(d)
            self.cache[key] = hit
        return hit

    def member(self, rel: str, owner: str, name: str) -> list[Definition]:
        """Definitions of ``name`` inside class/impl/namespace ``owner`` of file ``rel``."""
        return [d for d in self.members(rel).get(owner, ()) if d.name == name]

    def lookup(self, targets: list[str], name: str, depth: int = 0) -> list[Definition]:
        """Top-level definitions of ``name`` in ``targets``, following re-exports and star imports."""
        out: list[Definition] = []
        for target in targets:
            key = ("l", target, name)
            hit = self.cache.get(key)
            if hit is None:
                hit = self.top_defs(target).get(name, [])
                if not hit and depth < 2:
                    self.cache[key] = []  # guards import cycles
                    b = self.bindings(target)
                    for sub, orig in b.names.get(name, ()):
                        hit = self.lookup(sub, orig, depth + 1)
                        if hit:
                            break
                    if not hit and b.star:
                        hit = self.lookup(b.star, name, depth + 1)
                self.cache[key] = hit
            out += hit
        return out

    def resolve_name(self, rel: str, b: Bindings, expr: str) -> list[Definition]:
        """Definitions an expression such as ``Base`` or ``mod.Base`` names, seen from file ``rel``."""
        head, _, tail = expr.strip().rpartition(".")
        if head:
            targets = b.modules.get(head)
            return self.lookup(targets, tail) if targets else []
        found: list[Definition] = []
        for targets, orig in b.names.get(tail, ()):
            found += self.lookup(targets, orig)
        if not found:
            found = self.top_defs(rel).get(tail, []) or (self.lookup(b.star, tail) if b.star else [])
        if not found:
            defs = self.index.symbols.get(tail, [])
            found = defs if len(defs) == 1 else []
        return [d for d in found if d.kind in _TYPE_KINDS]

    def base_classes(self, rel: str, bases: list[str], b: Bindings, limit: int = 8) -> list[Definition]:
        """Base classes (breadth first, their own bases too) of a class with base expressions ``bases``."""
        out: list[Definition] = []
        todo = [(rel, expr, b) for expr in bases]
        seen: set[tuple[str, str]] = set()
        while todo and len(out) < limit:
            where, expr, binds = todo.pop(0)
            for d in self.resolve_name(where, binds, expr):
                if (d.path, d.name) in seen:
                    continue
                seen.add((d.path, d.name))
                out.append(d)
                todo += [(d.path, e, self.bindings(d.path)) for e in class_bases(d.text)]
        return out


def class_bases(header: str) -> list[str]:
    """Base expressions of a Python class header (``class A(b.B, C, metaclass=M):`` -> ``["b.B", "C"]``)."""
    for line_no, line in enumerate(header.split("\n")):
        if line.lstrip().startswith("class "):
            m = _CLASS_HEAD.match("\n".join(header.split("\n")[line_no : line_no + 3]))
            if not m:
                return []
            inner = m.group(1).split(")")[0]
            return [p.strip() for p in inner.split(",") if p.strip() and "=" not in p and p.strip() != "object"]
    return []
