"""Retrieval recall: does the definition of a blanked call's callee reach the prompt?

    python benchmarks/retrieval_recall.py [ROOT] [--cases 300] [--budget 2048]

Cases: Python call sites whose callee name has exactly one definition in the repo, in another file; the
cursor sits at the start of that line and the line is blanked. A case counts when the definition's first
line appears in the prompt. Baselines in the same run: prefix/suffix only, and Jaccard-similar chunks only.
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
from codeassist.context.templates import template_for

CALL = re.compile(r"^(\s*)(?:[\w.]+\s*=\s*)?(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*)\(")


def build_cases(index: RepoIndex, n: int, rng: random.Random) -> list[tuple[str, str, int, str]]:
    cases = []
    for rel in sorted(index.files):
        if not rel.endswith(".py"):
            continue
        own = {d.name for d in index.files[rel].defs}
        text = (index.root / rel).read_text(encoding="utf-8", errors="replace")
        offset = 0
        for line in text.split("\n"):
            m = CALL.match(line)
            if m and m.group(2) not in own:
                defs = index.symbols.get(m.group(2), [])
                if len(defs) == 1 and defs[0].path != rel and defs[0].kind != "variable":
                    sig = defs[0].text.split("\n")
                    first = next((s.strip() for s in sig if s.strip().startswith(("def ", "class ", "async "))), "")
                    if first:
                        blanked = text[:offset] + m.group(1) + text[offset + len(line):]
                        cases.append((rel, blanked, offset + len(m.group(1)), first))
            offset += len(line) + 1
    rng.shuffle(cases)
    return cases[:n]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?", default=sysconfig.get_paths()["stdlib"])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--budget", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    full = ContextEngine(budget=args.budget)
    index = full.add_root(args.root, background=False, watch=False)
    window_only = ContextEngine(budget=args.budget, sources=())
    window_only.indexes = full.indexes
    cases = build_cases(index, args.cases, random.Random(args.seed))
    template = template_for("qwen")
    hits = {"engine": 0, "prefix_suffix_only": 0, "jaccard_only": 0}
    for rel, text, offset, first in cases:
        path = index.root / rel
        if first in full.build(text, offset, template, path=path).prompt:
            hits["engine"] += 1
        ps = window_only.build(text, offset, template, path=path)
        if first in ps.prompt:
            hits["prefix_suffix_only"] += 1
        # Jaccard baseline: the prefix/suffix window plus the most similar chunks in the same snippet budget.
        line = text.count("\n", 0, offset)
        lines = text.split("\n")
        query = "\n".join(lines[max(0, line - 25):line + 6])
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
    result = {"bench": "retrieval_recall", "root": str(index.root), "cases": len(cases), "budget": args.budget,
              **{f"recall_{k}": round(v / n, 3) for k, v in hits.items()}, "token_counter": full.counter.name}
    print(json.dumps(result))
    for k, v in result.items():
        print(f"{k:>28}: {v}")
    full.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
