"""Go: an import path resolved through the nearest ``go.mod`` to a package directory of the same module (or of
``vendor/``), the package's local name (its ``package`` clause, which need not be the directory's name), and
outlines of what a package offers: its exported types, each with the signatures of its exported methods (Go
declares methods beside the type, in any file of the package), and its exported functions.

Imports of the standard library and of other modules resolve to nothing: their source is not in the repo."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from codeassist.context.safe_read import SkipFile, read_beneath

if TYPE_CHECKING:
    from codeassist.context.resolve import Resolver
    from codeassist.context.symbols import Definition

__all__ = ["exported", "package_name", "package_outline", "receiver", "resolve_import", "type_outline"]

_MODULE = re.compile(rb"^\s*module\s+\"?([^\s\"]+)", re.M)
_REPLACE = re.compile(rb"^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s*=>\s*(\.{1,2}(?:/\S*)?)\s*$", re.M)
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_]\w*)", re.M)
_RECEIVER = re.compile(r"^\s*func\s*\(\s*(?:[A-Za-z_]\w*\s+)?\*?\s*([A-Za-z_]\w*)")
MAX_METHODS = 24


def exported(name: str) -> bool:
    return name[:1].isupper()


def receiver(d: Definition) -> str:
    """The receiver's type name of a method declaration (``func (r *Rect) Scale()`` -> ``Rect``), else ""."""
    if d.kind != "method_declaration":
        return ""
    a, _ = d.sig
    lines = d.text.split("\n")
    m = _RECEIVER.match(lines[a] if a < len(lines) else "")
    return m.group(1) if m else ""


def _read_go_mod(root: Path, d: str) -> tuple[str, bytes] | None:
    """(module path, contents) of ``<d>/go.mod``, None when there is none (or it names no module)."""
    try:
        data, _ = read_beneath(root, posixpath.join(d, "go.mod") if d else "go.mod", 1 << 20)
    except (SkipFile, OSError, ValueError):
        return None
    m = _MODULE.search(data)
    return (m.group(1).decode("utf-8", "replace"), data) if m else None


def _modules(root: Path, dir_rel: str) -> list[tuple[str, str]]:
    """(directory, module path) of the modules an import seen from ``dir_rel`` may name inside the repo: the
    nearest ``go.mod``'s own, the local directories its ``replace`` directives name, and the repo root's module
    (examples and tools kept as modules of their own inside the repo they demonstrate)."""
    d = dir_rel
    while (found := _read_go_mod(root, d)) is None and d:
        d = posixpath.dirname(d)
    out: list[tuple[str, str]] = []
    if found is not None:
        out.append((d, found[0]))
        for m in _REPLACE.finditer(found[1]):
            target = posixpath.normpath(posixpath.join(d, m.group(2).decode("utf-8", "replace")))
            if not target.startswith(".."):
                out.append(("" if target == "." else target, m.group(1).decode("utf-8", "replace")))
        if d and (top := _read_go_mod(root, "")) is not None:
            out.append(("", top[0]))
    return out


def _package_files(directory: str, files: Collection[str]) -> list[str]:
    return sorted(
        f for f in files if f.endswith(".go") and not f.endswith("_test.go") and posixpath.dirname(f) == directory
    )[:50]


def resolve_import(path: str, from_rel: str, files: Collection[str], root: Path | None) -> list[str]:
    """The non-test ``.go`` files of the package that import path ``path`` names, seen from ``from_rel``."""
    modules = _modules(root, posixpath.dirname(from_rel)) if root is not None else []
    for mod_dir, mod_path in modules:
        if path == mod_path or path.startswith(mod_path + "/"):
            sub = path[len(mod_path) + 1 :]
            found = _package_files(posixpath.normpath(posixpath.join(mod_dir, sub)) if sub else mod_dir, files)
            if found:
                return found
    if modules:
        mod_dir = modules[0][0]
        return _package_files(posixpath.join(mod_dir, "vendor", path) if mod_dir else f"vendor/{path}", files)
    # No go.mod (GOPATH layout): the longest tail of the path that names a directory of the repo.
    parts = path.split("/")
    dirs = sorted({posixpath.dirname(f) for f in files if f.endswith(".go")})
    for k in range(len(parts)):
        tail = "/".join(parts[k:])
        hits = [d for d in dirs if d == tail or d.endswith("/" + tail)]
        if hits:
            return _package_files(min(hits, key=len), files)
    return []


def package_name(r: Resolver, targets: list[str], path: str) -> str:
    """The name a package is used by: its ``package`` clause, else the last element of its import path."""
    for target in targets[:3]:
        m = _PACKAGE.search(r.index.read_lines(target, 0, 60))
        if m and m.group(1) != "main":
            return m.group(1)
    last = path.rsplit("/", 1)[-1]
    if re.fullmatch(r"v\d+", last) and "/" in path:  # example.com/x/geom/v2 -> geom
        last = path.rsplit("/", 2)[-2]
    return last.replace("-", "_").replace(".", "_")


def _line(sig: str) -> str:
    return sig.removesuffix("{").rstrip()


def _type_line(d: Definition) -> str:
    """``type Rect struct { W, H float64 }``: a type and its exported fields (interface methods) on one line."""
    lines = [ln.strip() for ln in d.text.split("\n")]
    head = lines[0] if lines[0].startswith("type ") else "type " + lines[0]
    if not head.endswith("{"):
        return head
    inner = []
    for ln in lines[1:]:
        ln = ln.split("//", 1)[0].strip()
        if ln and ln != "}" and (exported(ln) or "(" in ln):
            inner.append(ln)
    return f"{head} {'; '.join(inner)} }}" if inner else head.removesuffix("{").rstrip()


def _package_defs(r: Resolver, directory: str) -> list[Definition]:
    key = ("go-pkg", directory)
    hit = r.cache.get(key)
    if hit is None:
        hit = []
        for rel in _package_files(directory, r.index.files):
            entry = r.index.files.get(rel)
            hit += entry.defs if entry is not None else ()
        r.cache[key] = hit
    return hit


def _methods(r: Resolver, directory: str) -> dict[str, list[Definition]]:
    """Receiver type -> its methods, over every file of the package in ``directory``."""
    key = ("go-methods", directory)
    hit = r.cache.get(key)
    if hit is None:
        hit = {}
        for d in _package_defs(r, directory):
            recv = receiver(d)
            if recv:
                hit.setdefault(recv, []).append(d)
        r.cache[key] = hit
    return hit


def _ranked_methods(r: Resolver, d: Definition, first: tuple[str, ...] = ()) -> list[Definition]:
    from codeassist.context.outline import popularity

    wanted = {name: i for i, name in enumerate(first)}
    own = _methods(r, posixpath.dirname(d.path)).get(d.name, ())
    methods = [m for m in own if exported(m.name) or m.name in wanted]
    methods.sort(key=lambda m: (wanted.get(m.name, len(wanted)), -popularity(r.index, m.name)))
    return methods[:MAX_METHODS]


def type_outline(r: Resolver, d: Definition, first: tuple[str, ...] = ()) -> str:
    """A type (its exported fields) and its methods' signatures, the ones the file uses first."""
    from codeassist.context.outline import doc_above, signature

    key = ("go-type", d.path, d.line, first)
    hit = r.cache.get(key)
    if hit is None:
        doc = doc_above(r, d) if d.text.startswith("type ") else ""  # a grouped `type ( ... )` member: none
        lines = [doc] if doc else []
        lines += [_type_line(d)] + ["\t" + _line(signature(m)) for m in _ranked_methods(r, d, first)]
        hit = r.cache[key] = "\n".join(lines)
    return hit


def package_outline(r: Resolver, targets: list[str], limit: int) -> str:
    """The exported functions and types (each followed by its methods) of the package holding ``targets``."""
    from codeassist.context.outline import popularity, signature

    items: dict[str, Definition] = {}
    for target in targets:
        entry = r.index.files.get(target)
        for d in entry.defs if entry is not None else ():
            if d.kind in ("type_spec", "function_declaration") and exported(d.name) and not d.owner:
                items.setdefault(d.name, d)
    # What `pkg.X(...)` can call first (functions, constructors among them), then the types with their methods,
    # which take the most room: an outline trimmed to fit loses methods before functions.
    ranked = sorted(items.values(), key=lambda d: (d.kind == "type_spec", -popularity(r.index, d.name), d.name))[:limit]
    lines: list[str] = []
    for d in ranked:
        if d.kind == "type_spec":
            lines.append(_type_line(d))
            lines += ["\t" + _line(signature(m)) for m in _ranked_methods(r, d)]
        else:
            lines.append(_line(signature(d)))
    return "\n".join(lines)
