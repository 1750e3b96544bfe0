"""Compact outlines of what an imported name offers: a class's signature, its docstring's first line and its
public members' signatures (constructors, classmethods/staticmethods and properties first, then the most used
names of the repo); a module's public functions and classes, re-exports (``from .x import y`` in
``__init__.py``) followed to their definitions. Built lazily from the index's definitions and memoised in the
resolver's cache (cleared when the index changes). Go and Rust have their own (``golang``, ``rust``): a type with
its exported (``pub``) methods, a package's / module's exported items."""

from __future__ import annotations

from codeassist.context import golang, rust
from codeassist.context.index import RepoIndex, posting_ids
from codeassist.context.resolve import Resolver
from codeassist.context.symbols import Definition

__all__ = ["class_outline", "doc_above", "module_outline", "signature"]

MAX_OUTLINE_MEMBERS = 80
_CTOR = frozenset({"__init__", "__new__", "__call__", "constructor", "new"})
_TAG_RANK = {"classmethod": 1, "staticmethod": 1, "property": 2}
_TYPE_KINDS = frozenset(
    {
        "class_definition",
        "class_declaration",
        "abstract_class_declaration",
        "interface_declaration",
        "struct_item",
        "enum_item",
        "trait_item",
        "type_spec",  # Go: a type and the methods declared on it
    }
)


def signature(d: Definition) -> str:
    """The definition's signature on one line (continuation lines joined)."""
    lines = d.text.split("\n")
    a, b = d.sig
    parts = [ln.strip() for ln in lines[a:b]]
    return " ".join(p for p in parts if p) if parts else d.name


def _doc_line(d: Definition) -> str:
    lines = d.text.split("\n")
    _, b = d.sig
    if b < len(lines):
        nxt = lines[b].strip()
        if nxt[:4].lstrip("rRbBuU")[:3] in ('"""', "'''") or nxt[:1] in ('"', "'"):
            return nxt
    return ""


def doc_above(r: Resolver, d: Definition) -> str:
    """The first line of the ``//`` / ``///`` comment block just above a definition, past Rust attributes
    (``#[derive(...)]``): the summary of a Go type or a Rust struct / enum, which their text does not hold."""
    above = r.index.read_lines(d.path, max(0, d.line - 12), d.line).split("\n")
    block: list[str] = []
    for ln in reversed([x.strip() for x in above if x.strip()]):
        if ln.startswith("#[") or (ln.startswith("#") and not block):
            if block:
                break
            continue
        if not ln.startswith("//"):
            break
        block.insert(0, ln)
    return block[0] if block else ""


def popularity(index: RepoIndex, name: str) -> int:
    """In how many chunks of the repo the name occurs: a prior for which member the code calls next."""
    p = index.postings.get(name)
    return 0 if p is None else len(posting_ids(p))


def _public(name: str) -> bool:
    return not name.startswith("_") or name in _CTOR


def class_outline(r: Resolver, d: Definition, first: tuple[str, ...] = ()) -> str:
    """``class X(...):`` + docstring line + member signatures, most useful first (one line each): ``first`` (the
    members the current file uses), constructors, classmethods/staticmethods, properties, then the public
    methods the repo uses most."""
    if r.lang == "go":
        return golang.type_outline(r, d, first)
    if r.lang == "rust":
        return rust.type_outline(r, d, first)
    key = ("co", d.path, d.line, first)
    hit = r.cache.get(key)
    if hit is not None:
        return hit
    indent = "    " if d.path.endswith((".py", ".pyi")) else "  "
    head = [signature(d)]
    doc = _doc_line(d)
    if doc:
        head.append(indent + doc)
    seen: set[str] = set()
    members = []
    wanted = {name: i for i, name in enumerate(first)}
    for i, m in enumerate(r.members(d.path).get(d.name, ())):
        if (not _public(m.name) and m.name not in wanted) or (m.name in seen and m.tag != "property"):
            continue
        seen.add(m.name)
        rank = -1 if m.name in wanted else 0 if m.name in _CTOR else _TAG_RANK.get(m.tag, 3)
        i = wanted.get(m.name, i)
        members.append((rank, -popularity(r.index, m.name), i, m))
    members.sort(key=lambda t: t[:3])
    body = []
    for _, _, _, m in members[:MAX_OUTLINE_MEMBERS]:
        if m.tag and indent == "    ":
            body.append(f"{indent}@{m.tag}")
        body.append(indent + signature(m))
    # No indexed members (a dataclass's fields, an enum): the summary says more.
    hit = d.text if not body and len(d.text.split("\n")) > len(head) else "\n".join(head + body)
    r.cache[key] = hit
    return hit


def module_outline(r: Resolver, targets: list[str]) -> str:
    """Signatures of the public top-level functions and classes of ``targets``, re-exports followed."""
    key = ("mod", tuple(targets))
    hit = r.cache.get(key)
    if hit is not None:
        return hit
    if r.lang in ("go", "rust"):
        hit = r.cache[key] = (golang.package_outline if r.lang == "go" else rust.module_outline)(
            r, targets, MAX_OUTLINE_MEMBERS
        )
        return hit
    found: dict[str, Definition] = {}
    for target in targets:
        for name, defs in r.top_defs(target).items():
            if _public(name) and defs[0].kind != "variable":
                found.setdefault(name, defs[0])
        for local, pairs in r.bindings(target).names.items():
            if local in found or not _public(local):
                continue
            for sub, orig in pairs:
                defs = [x for x in r.lookup(sub, orig) if x.kind != "variable"]
                if defs:
                    found[local] = defs[0]
                    break
    ranked = sorted(found.items(), key=lambda kv: (-popularity(r.index, kv[0]), kv[0]))[:MAX_OUTLINE_MEMBERS]
    lines = []
    for local, d in ranked:
        sig = signature(d)
        lines.append(sig if local == d.name else f"{local} = {d.name}  # {sig}")
    hit = "\n".join(lines)
    r.cache[key] = hit
    return hit


def is_type(d: Definition) -> bool:
    return d.kind in _TYPE_KINDS
