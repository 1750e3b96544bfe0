"""Retrieval recall: does the definition of a blanked call's callee reach the prompt?

    python benchmarks/retrieval_recall.py [ROOT] [--cases 300] [--budget 2048]

Cases: Python call sites whose callee is defined in another file of the repo: the callee name has exactly
one definition in the repo, in another file, and the call can actually reach it — a bare ``name(`` must be
imported into the file (``from m import name`` or a star import; builtins and local aliases such as
``eq = self.assertEqual`` are not cross-file callees), and ``x.name(`` of a module-level function needs ``x``
to be an imported name (a method of some class needs no such check). The cursor sits at the start of that
line and the line is blanked. A case counts when the definition's first line appears in the prompt.
Baselines in the same run: prefix/suffix only, and Jaccard-similar chunks only. ``--misses N`` prints N
missed cases with the reason (the name never occurs elsewhere, no candidate, or a candidate not packed).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import sysconfig

from codeassist.context.engine import ContextEngine
from codeassist.context.index import RepoIndex
from codeassist.context.retrieve import similar_snippets
from codeassist.context.symbols import Definition
from codeassist.context.templates import template_for

CALL = re.compile(r"^(\s*)(?:[\w.]+\s*=\s*)?((?:[A-Za-z_]\w*\.)*)([A-Za-z_]\w*)\(")
_FROM = re.compile(r"^[ \t]*from[ \t]+[\w.]+[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.M)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n]*)", re.M)


def imported_names(text: str) -> tuple[set[str], bool]:
    """Local names bound by the file's import statements, and whether it has a star import."""
    names: set[str] = set()
    star = False
    for m in _FROM.finditer(text):
        for part in m.group(1).strip("()").replace("\\", " ").split(","):
            words = part.split("#")[0].split()
            if words == ["*"]:
                star = True
            elif words:
                names.add(words[-1])
    for m in _IMPORT.finditer(text):
        for part in m.group(1).split("#")[0].split(","):
            words = part.split()
            if words:
                names.add(words[-1] if len(words) == 3 else words[0].split(".")[0])
    return names, star


def build_cases(index: RepoIndex, n: int, rng: random.Random) -> list[tuple[str, str, int, str]]:
    cases = []
    for rel in sorted(index.files):
        if not rel.endswith(".py"):
            continue
        own = {d.name for d in index.files[rel].defs}
        text = (index.root / rel).read_text(encoding="utf-8", errors="replace")
        imported, star = imported_names(text)
        offset = 0
        for line in text.split("\n"):
            m = CALL.match(line)
            if m and m.group(3) not in own:
                defs = index.symbols.get(m.group(3), [])
                chain = m.group(2)
                reachable = bool(defs) and (
                    (not chain and (m.group(3) in imported or star) and not defs[0].owner)
                    or (chain and (defs[0].owner or chain.split(".")[0] in imported))
                )
                if reachable and len(defs) == 1 and defs[0].path != rel and defs[0].kind != "variable":
                    sig = defs[0].text.split("\n")
                    first = next((s.strip() for s in sig if s.strip().startswith(("def ", "class ", "async "))), "")
                    if first:
                        blanked = text[:offset] + m.group(1) + text[offset + len(line) :]
                        cases.append((rel, blanked, offset + len(m.group(1)), first, m.group(3), defs[0]))
            offset += len(line) + 1
    rng.shuffle(cases)
    return cases[:n]


def why_missed(
    engine: ContextEngine, index: RepoIndex, rel: str, text: str, offset: int, name: str, target: Definition
) -> str:
    cursor_line = text.count("\n", 0, offset)
    if not re.search(rf"\b{re.escape(name)}\b", text):
        return "the name occurs nowhere else in the file"
    lines = text.split("\n")
    doc = engine._doc(str(index.root / rel), text, "python")
    cands = engine._candidates(doc, index, rel, "python", text, lines, cursor_line, None)
    rank = [i for i, s in enumerate(cands) if (s.path, s.start) == (target.path, target.line)]
    if not rank:
        return f"not among the {len(cands)} candidates"
    return f"candidate ranked {rank[0] + 1} of {len(cands)} ({cands[rank[0]].reason}) but not packed"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?", default=sysconfig.get_paths()["stdlib"])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--budget", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--misses", type=int, default=0, help="print this many missed cases with the reason")
    args = ap.parse_args()
    full = ContextEngine(budget=args.budget)
    index = full.add_root(args.root, background=False, watch=False)
    window_only = ContextEngine(budget=args.budget, sources=())
    window_only.indexes = full.indexes
    cases = build_cases(index, args.cases, random.Random(args.seed))
    template = template_for("qwen")
    hits = {"engine": 0, "prefix_suffix_only": 0, "jaccard_only": 0}
    misses: list[str] = []
    for rel, text, offset, first, name, target in cases:
        path = index.root / rel
        if first in full.build(text, offset, template, path=path).prompt:
            hits["engine"] += 1
        elif len(misses) < args.misses:
            misses.append(
                f"{rel}:{text.count(chr(10), 0, offset) + 1} {name} -> {target.path}:{target.line + 1}: "
                f"{why_missed(full, index, rel, text, offset, name, target)}"
            )
        ps = window_only.build(text, offset, template, path=path)
        if first in ps.prompt:
            hits["prefix_suffix_only"] += 1
        # Jaccard baseline: the prefix/suffix window plus the most similar chunks in the same snippet budget.
        line = text.count("\n", 0, offset)
        lines = text.split("\n")
        query = "\n".join(lines[max(0, line - 25) : line + 6])
        room = int(args.budget * 0.3)
        block = ""
        for s in similar_snippets(index, query, rel, k=8, method="jaccard"):
            piece = f"<|file_sep|>{s.path}\n{s.text}\n"
            if full.counter.count(block + piece) > room:
                break
            block += piece
        if first in ps.prompt or first in block:
            hits["jaccard_only"] += 1
    n = max(1, len(cases))
    result = {
        "bench": "retrieval_recall",
        "root": str(index.root),
        "cases": len(cases),
        "budget": args.budget,
        **{f"recall_{k}": round(v / n, 3) for k, v in hits.items()},
        "token_counter": full.counter.name,
    }
    print(json.dumps(result))
    for k, v in result.items():
        print(f"{k:>28}: {v}")
    for line in misses:
        print("miss:", line)
    full.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
