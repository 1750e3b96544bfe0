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

from codeassist.context.imports import ImportRef, resolve
from codeassist.context.index import RepoIndex, identifiers

__all__ = ["Snippet", "dedup", "definition_snippets", "similar_snippets"]

MAX_POSTINGS = 400
MAX_QUERY_TERMS = 40
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUALIFIED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\.|::|->)([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class Snippet:
    path: str
    text: str
    reason: str
    score: float
    start: int  # 0-based first line in its file
    end: int  # exclusive
    kind: str = "definition"  # definition | recent | open | similar


def _occurrences(lines: list[str], cursor_line: int, radius: int) -> tuple[dict[str, int], dict[str, int]]:
    """Identifier -> distance (in lines) of its nearest occurrence to the cursor line; same for ``a.b``."""
    dist: dict[str, int] = {}
    qual: dict[str, int] = {}
    lo, hi = max(0, cursor_line - radius), min(len(lines), cursor_line + radius // 3 + 1)
    for i in range(lo, hi):
        d = abs(i - cursor_line)
        line = lines[i]
        for w in _WORD.findall(line):
            if d < dist.get(w, 1 << 30):
                dist[w] = d
        if "." in line or "::" in line or "->" in line:
            for a, b in _QUALIFIED.findall(line):
                key = f"{a}.{b}"
                if d < qual.get(key, 1 << 30):
                    qual[key] = d
    return dist, qual


def definition_snippets(index: RepoIndex, rel: str | None, lang: str | None, imports: list[ImportRef],
                        lines: list[str], cursor_line: int, cache: dict[tuple[str, str], list[str]],
                        use_imports: bool = True, use_symbols: bool = True) -> list[Snippet]:
    near, qual = _occurrences(lines, cursor_line, 150)
    scored: dict[tuple[str, int], Snippet] = {}

    def add(d_path: str, d_line: int, text: str, name: str, score: float, reason: str) -> None:
        if d_path == rel:
            return
        key = (d_path, d_line)
        if key not in scored or scored[key].score < score:
            scored[key] = Snippet(d_path, text, reason, score, d_line, d_line + text.count("\n") + 1)

    def proximity(name: str, default: int = 200) -> float:
        return 1.0 / (1.0 + near.get(name, default) / 8.0)

    with index.lock:
        if use_imports and lang:
            for ref in imports:
                key = (rel or "", f"{ref.level}:{ref.module}:{','.join(ref.names)}")
                targets = cache.get(key)
                if targets is None:
                    targets = cache[key] = resolve(ref, rel or "", lang, index.files, index.basenames)
                wanted = set(ref.names)
                for target in targets:
                    entry = index.files.get(target)
                    if entry is None:
                        continue
                    for d in entry.defs:
                        if d.name in wanted:
                            add(d.path, d.line, d.text, d.name, 3.0 * proximity(d.name),
                                f"imports {d.name} from {target}")
                        elif d.owner == "" and ref.alias and f"{ref.alias}.{d.name}" in qual:
                            dist = qual[f"{ref.alias}.{d.name}"]
                            add(d.path, d.line, d.text, d.name, 2.5 / (1.0 + dist / 8.0),
                                f"uses {ref.alias}.{d.name} of imported {target}")
                        elif not ref.alias and not wanted and d.name in near:
                            add(d.path, d.line, d.text, d.name, 2.0 * proximity(d.name),
                                f"uses {d.name} of included {target}")
        if use_symbols:
            entry = index.files.get(rel or "")
            own = {d.name for d in entry.defs} if entry is not None else set()
            for name, dist in near.items():
                if dist > 40 or len(name) < 3 or name.startswith("__") or name in own:
                    continue
                defs = index.symbols.get(name)
                if not defs or len(defs) > 4:
                    continue
                defs = [d for d in defs if d.kind != "variable"]
                for d in defs:
                    add(d.path, d.line, d.text, name, proximity(name) / len(defs), f"uses {name} (repo symbol)")
    return sorted(scored.values(), key=lambda s: -s.score)


def similar_snippets(index: RepoIndex, query_text: str, exclude: str | None, k: int = 4,
                     method: str = "bm25") -> list[Snippet]:
    query = identifiers(query_text)
    scores: dict[int, float] = {}
    with index.lock:
        n = max(1, len(index.chunks))
        cap = max(50, min(n // 5, MAX_POSTINGS))
        terms = sorted((len(p), t) for t in query if (p := index.postings.get(t)) and len(p) <= cap)
        for df, term in terms[:MAX_QUERY_TERMS]:  # the rarest terms discriminate; common ones cost time
            weight = math.log(1 + (n - df + 0.5) / (df + 0.5)) if method == "bm25" else 1.0
            get = scores.get
            for cid in index.postings[term]:
                scores[cid] = get(cid, 0.0) + weight
        ranked: list[tuple[float, int]] = []
        for cid, s in heapq.nlargest(k * 8, scores.items(), key=lambda kv: kv[1]):
            chunk = index.chunks.get(cid)
            if chunk is None or chunk.rel == exclude:
                continue
            if method == "bm25":
                s = s * 2.2 / (1 + 1.2 * (0.25 + 0.75 * len(chunk.idents) / 80))
            else:
                s = s / max(1, len(chunk.idents | query))
            ranked.append((s, cid))
        ranked.sort(reverse=True)
        picked = [(s, index.chunks[cid]) for s, cid in ranked[:k]]
    out = []
    for s, chunk in picked:
        text = index.read_lines(chunk.rel, chunk.start, chunk.end).rstrip("\n")
        if text.strip():
            out.append(Snippet(chunk.rel, text, f"similar code ({method} {s:.2f})", s, chunk.start, chunk.end,
                               "similar"))
    return out


def dedup(snippets: list[Snippet]) -> list[Snippet]:
    """Drop snippets whose line range overlaps a better one in the same file, and exact repeats."""
    kept: list[Snippet] = []
    seen: set[str] = set()
    tier = {"recent": 0, "definition": 1}  # live edits beat the (older) on-disk index
    for s in sorted(snippets, key=lambda s: (tier.get(s.kind, 2), -s.score)):
        if s.text in seen:
            continue
        if any(k.path == s.path and k.start < s.end and s.start < k.end for k in kept):
            continue
        seen.add(s.text)
        kept.append(s)
    return kept
