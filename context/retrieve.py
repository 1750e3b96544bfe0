"""Cross-file snippet candidates, each with a score and the reason it was picked:

- definitions of symbols used near the cursor, resolved through the file's imports (then, with a lower
  score, through the repo-wide symbol table);
- recently edited regions and other open documents (supplied by the engine);
- similar ~60-line chunks by BM25 (or identifier-set Jaccard) over identifiers near the cursor.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass
from typing import Any

from codeassist.context.imports import ImportRef
from codeassist.context.index import MAX_POSTINGS, RepoIndex, identifiers, posting_ids
from codeassist.context.occur import Occurrences
from codeassist.context.outline import class_outline, is_type, module_outline, popularity
from codeassist.context.resolve import Resolver, class_bases
from codeassist.context.symbols import Definition

__all__ = ["Snippet", "dedup", "definition_snippets", "enclosing_class_bases", "similar_snippets"]

MAX_QUERY_TERMS = 24
MAX_SYMBOL_NAMES = 300  # repo-wide fallback: the nearest names only


@dataclass
class Snippet:
    path: str
    text: str
    reason: str
    score: float
    start: int  # 0-based first line in its file
    end: int  # exclusive
    kind: str = "definition"  # definition | recent | open | similar
    short: str = ""  # a compact form (signature only) for when the full text does not fit
    trim: bool = False  # an outline: its last lines may be dropped to fit
    weak: bool = False  # found by name only (a repo-wide match): packed after what the imports give


def _relevance(occ: Occurrences, name: str, dist: int) -> float:
    """How likely the code at the cursor needs ``name``: by the distance of its nearest use (decaying over ~8
    lines). A bonus for names used often was tried and lowered recall: the most used names (assertEqual...)
    are the ones the model needs least."""
    return 1.0 / (1.0 + dist / 8.0)


UNUSED_IMPORT = 1.6  # score of an imported name not used yet: above every repo-wide name match (<= 1)
_ANNOTATED = re.compile(r"\b([A-Za-z_]\w*)\s*:\s*[\"']?(?:Optional\[)?((?:[a-z_]\w*\.)?[A-Z]\w*)")
_WITH = re.compile(r"\b((?:[a-z_]\w*\.)?[A-Z]\w*)\([^\n]*?\bas\s+([A-Za-z_]\w*)")
_ASSIGNED = re.compile(r"\b([A-Za-z_]\w*)\s*=\s*(?:new\s+)?((?:[a-z_]\w*\.)?[A-Z]\w*)\(")


def receiver_types(lines: list[str], cursor_line: int, up: int = 200, down: int = 20) -> dict[str, str]:
    """Variables near the cursor whose type the code names: ``x: Type`` / ``x: mod.Type`` (parameters, annotations) and
    ``x = Type(...)`` / ``x = new Type(...)`` / ``with Type(...) as x``; the nearest binding above wins."""
    out: dict[str, str] = {}
    for line in lines[max(0, cursor_line - up) : cursor_line + down]:
        if ":" in line:
            for var, typ in _ANNOTATED.findall(line):
                out[var] = typ
        if "=" in line:
            for var, typ in _ASSIGNED.findall(line):
                out[var] = typ
        if " as " in line:
            for typ, var in _WITH.findall(line):
                out[var] = typ
    return out


def enclosing_class_bases(lines: list[str], cursor_line: int, max_up: int = 3000) -> list[str]:
    """Base expressions of the Python class enclosing the cursor line (by indentation), [] if none."""
    if not 0 <= cursor_line < len(lines):
        return []
    cur = lines[cursor_line]
    indent = len(cur) - len(cur.lstrip(" \t")) if cur else 1 << 30  # an empty line continues the block above
    for i in range(cursor_line - 1, max(-1, cursor_line - max_up), -1):
        line = lines[i]
        body = line.lstrip(" \t")
        if not body or body.startswith(("#", ")", "]", "}")):
            continue
        ind = len(line) - len(body)
        if ind < indent:
            if body.startswith("class "):
                return class_bases("\n".join(lines[i : i + 3]))
            indent = ind
            if ind == 0:
                return []
    return []


def definition_snippets(
    index: RepoIndex,
    rel: str | None,
    lang: str | None,
    imports: list[ImportRef],
    occ: Occurrences,
    cache: dict[Any, Any],
    bases: list[str] | None = None,
    use_imports: bool = True,
    use_symbols: bool = True,
    receivers: dict[str, str] | None = None,
) -> list[Snippet]:
    """Definitions of the names the file uses, found through its imports (then the repo symbol table), scored by
    how the name is bound and by the distance of its nearest use to the cursor."""
    r = Resolver(index, lang, cache)
    near, members = occ.near, occ.members
    scored: dict[tuple[str, int], Snippet] = {}

    def add(d: Definition, score: float, reason: str) -> None:
        if d.path == rel:
            return
        key = (d.path, d.line)
        if key not in scored or scored[key].score < score:
            if is_type(d):  # a class: what it offers, not just its header
                text = class_outline(r, d)
                scored[key] = Snippet(
                    d.path, text, f"{reason}; outline", score, d.line, d.line + text.count("\n") + 1, trim=True
                )
            else:
                scored[key] = Snippet(
                    d.path, d.text, reason, score, d.line, d.line + d.text.count("\n") + 1, short=d.short()
                )

    used_members: dict[tuple[str, int], tuple[Definition, dict[str, int]]] = {}

    def member_of(cls: Definition, tail: str) -> list[tuple[Definition, Definition]]:
        """(class, member) for ``cls.tail``: the class's own member, else the nearest base class's."""
        found = r.member(cls.path, cls.name, tail)
        if found or not is_type(cls):
            return [(cls, m) for m in found]
        for base in r.base_classes(cls.path, class_bases(cls.text), r.bindings(cls.path), limit=4):
            found = r.member(base.path, base.name, tail)
            if found:
                return [(base, m) for m in found]
        return []

    def use_member(cls: Definition, m: Definition, tail: str, dist: int, score: float, reason: str) -> bool:
        """A member of a class used as ``Class.member`` / ``typed_var.member``: listed first in the class's
        outline (one snippet, one header) rather than a snippet of its own. False when ``cls`` has no outline."""
        if not is_type(cls) or cls.path == rel or m.path != cls.path:
            return False
        key = (cls.path, cls.line)
        entry = used_members.setdefault(key, (cls, {}))
        entry[1][tail] = min(dist, entry[1].get(tail, dist))
        current = scored.get(key)
        if current is None or current.score < score:
            add(cls, score, reason)
        return True

    def weight(local: str, dist: int, strong: float) -> float:
        """An imported name: by its nearest use; one not used yet (only its import mentions it) ranks high."""
        if occ.lines.get(local, 0) <= 1:
            return max(UNUSED_IMPORT, strong * _relevance(occ, local, dist))
        return strong * _relevance(occ, local, dist)

    with index.lock:
        own = r.top_defs(rel) if rel else {}
        if use_imports and lang:
            b = r.bindings(rel or "", imports)
            for local, pairs in b.names.items():
                dist = near.get(local)
                if dist is None:
                    continue
                for targets, orig in pairs:
                    for d in r.lookup(targets, orig):
                        unused = " (not used yet)" if occ.lines.get(local, 0) <= 1 else ""
                        add(d, weight(local, dist, 3.0), f"imports {local} from {d.path}{unused}")
                        for tail, dd in members.get(local, {}).items():  # Class.method, Type::new
                            for owner, m in member_of(d, tail):
                                score = 2.5 * _relevance(occ, f"{local}.{tail}", dd)
                                if not use_member(owner, m, tail, dd, score, f"uses {local}.{tail}"):
                                    add(m, score, f"uses {local}.{tail} ({d.path})")
            for alias, targets in b.modules.items():
                used = members.get(alias)
                dist = min(used.values()) if used else near.get(alias.split(".")[0])
                if dist is not None:
                    text = module_outline(r, targets)
                    if text:
                        key = (targets[0], -1)
                        s = 2.0 * _relevance(occ, alias, dist) if used else weight(alias, dist, 1.0)
                        if key not in scored or scored[key].score < s:
                            reason = f"imports module {alias}: its public functions and classes; outline"
                            scored[key] = Snippet(targets[0], text, reason, s, 0, 0, trim=True)
                for tail, dist in members.get(alias, {}).items():
                    for d in r.lookup(targets, tail):
                        add(
                            d,
                            2.5 * _relevance(occ, f"{alias}.{tail}", dist),
                            f"uses {alias}.{tail} of imported {d.path}",
                        )
            for target in dict.fromkeys(b.star):
                defs = r.top_defs(target)
                for name in defs.keys() & near.keys():
                    if name not in own:
                        for d in defs[name]:
                            add(d, 2.0 * _relevance(occ, name, near[name]), f"uses {name} of included {target}")
            if bases and "self" in members:
                classes = r.base_classes(rel or "", bases, b)
                for tail, dist in members["self"].items():
                    for cls in classes:
                        found = r.member(cls.path, cls.name, tail)
                        for d in found:
                            add(
                                d,
                                2.5 * _relevance(occ, f"self.{tail}", dist),
                                f"uses self.{tail} of base class {cls.name}",
                            )
                        if found:
                            break
            for var, typ in (receivers or {}).items():
                dist = near.get(var)
                if dist is None or var in b.names or var in b.modules:
                    continue
                classes = [d for d in r.resolve_name(rel or "", b, typ) if d.path != rel]
                for cls in classes[:1]:
                    add(cls, 3.0 * _relevance(occ, var, dist), f"{var} is a {typ} ({cls.path})")
                    for tail, dd in members.get(var, {}).items():
                        for owner, m in member_of(cls, tail):
                            score = 2.5 * _relevance(occ, f"{var}.{tail}", dd)
                            if not use_member(owner, m, tail, dd, score, f"uses {var}.{tail} ({var}: {typ})"):
                                add(m, score, f"uses {var}.{tail} ({var}: {typ})")
        for key, (cls, names) in used_members.items():  # the members the file uses first in their outline
            snip = scored.get(key)
            if snip is not None and snip.trim:
                first = tuple(sorted(names, key=lambda n: (names[n], n)))
                snip.text = class_outline(r, cls, first)
                snip.end = snip.start + snip.text.count("\n") + 1
                snip.reason += f" (uses {', '.join(first[:4])}{'...' if len(first) > 4 else ''} first)"
        if use_symbols:
            self_members = members.get("self", {})
            n_chunks = max(2, len(index.chunks))
            names = heapq.nsmallest(
                MAX_SYMBOL_NAMES,
                (
                    (near[name], name)
                    for name in near.keys() & index.symbols.keys()
                    if name not in own and len(name) >= 3 and not name.startswith("__")
                ),
            )
            for dist, name in names:
                defs = index.symbols.get(name)
                if not defs or len(defs) > 4:
                    continue
                defs = [d for d in defs if d.kind != "variable"]
                # A name that occurs all over the repo (file, run, join...) is no evidence: weigh by its rarity.
                idf = math.log(n_chunks / (1 + popularity(index, name))) / math.log(n_chunks)
                w = 0.9 * (0.25 + 0.75 * max(0.0, idf))
                for d in defs:
                    key = (d.path, d.line)
                    if key not in scored:
                        add(d, w * _relevance(occ, name, dist) / len(defs), f"uses {name} (repo symbol)")
                        if key in scored:  # a common name, or one of several definitions: no evidence by itself
                            # (unless called on ``self``: a method of the class's own hierarchy, receiver known)
                            scored[key].weak = (idf < 0.5 or len(defs) > 1) and name not in self_members
    return sorted(scored.values(), key=lambda s: -s.score)


def similar_snippets(
    index: RepoIndex, query_text: str, exclude: str | None, k: int = 4, method: str = "bm25"
) -> list[Snippet]:
    query = identifiers(query_text)
    scores: dict[int, float] = {}
    with index.lock:
        n = max(1, len(index.chunks))
        cap = max(50, min(n // 5, MAX_POSTINGS))
        terms = sorted(
            (len(ids), t)
            for t in query
            if (p := index.postings.get(t)) is not None and len(ids := posting_ids(p)) <= cap
        )
        for df, term in terms[:MAX_QUERY_TERMS]:  # the rarest terms discriminate; common ones cost time
            ids = posting_ids(index.postings[term])
            weight = math.log(1 + (n - df + 0.5) / (df + 0.5)) if method == "bm25" else 1.0
            get = scores.get
            for cid in ids:
                scores[cid] = get(cid, 0.0) + weight
        ranked: list[tuple[float, int]] = []
        for cid, s in heapq.nlargest(k * 8, scores.items(), key=lambda kv: kv[1]):
            chunk = index.chunks.get(cid)
            if chunk is None or chunk.rel == exclude:
                continue
            if method == "bm25":
                s = s * 2.2 / (1 + 1.2 * (0.25 + 0.75 * chunk.n_idents / 80))
            else:
                s = s / max(1, chunk.n_idents + len(query) - s)  # |A ∪ B| = |A| + |B| - |A ∩ B|
            ranked.append((s, cid))
        ranked.sort(reverse=True)
        picked = [(s, index.chunks[cid]) for s, cid in ranked[:k]]
    out = []
    for s, chunk in picked:
        text = index.read_lines(chunk.rel, chunk.start, chunk.end).rstrip("\n")
        if text.strip():
            out.append(
                Snippet(chunk.rel, text, f"similar code ({method} {s:.2f})", s, chunk.start, chunk.end, "similar")
            )
    return out


def dedup(snippets: list[Snippet]) -> list[Snippet]:
    """Drop snippets whose line range overlaps a better one in the same file, and exact repeats."""
    kept: list[Snippet] = []
    by_path: dict[str, list[tuple[int, int]]] = {}
    seen: set[str] = set()
    tier = {"recent": 0, "definition": 1}  # live edits beat the (older) on-disk index
    for s in sorted(snippets, key=lambda s: (tier.get(s.kind, 2), -s.score)):
        if s.text in seen:
            continue
        ranges = by_path.setdefault(s.path, [])
        if any(a < s.end and s.start < b for a, b in ranges):
            continue
        seen.add(s.text)
        ranges.append((s.start, s.end))
        kept.append(s)
    return kept
