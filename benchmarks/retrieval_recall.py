"""Retrieval recall: does the definition of a blanked call's callee reach the prompt?

    python benchmarks/retrieval_recall.py [ROOT] [--cases 300] [--budgets 1024,2048,4096] [--misses N]

ROOT is any repository (default: the stdlib). Cases: Python and TypeScript/JavaScript call sites whose callee
is defined in another file of the repo: the callee name has exactly one definition in the repo, in another
file, and the call can actually reach it — a bare ``name(`` must be imported into the file (``from m import
name``, ``import {name} from``, or a star import; builtins and local aliases are not cross-file callees), and
``x.name(`` of a module-level function needs ``x`` to be an imported name (a method of some class needs no
such check).

The target line is blanked, on disk too: the index is built over a copy of ROOT and the case's file is
re-indexed with the line blanked before the build (and restored after), so neither the prompt's window nor
the index sees the call. The cursor sits at the line's indentation. A case counts when the definition's
signature line appears in the prompt.

Reported: recall at each budget, by call form (``name()``, ``Class.method()``, ``module.func()``,
``obj.method()``: any other receiver) and by callee kind (function, class, method); the median share of the
budget the prompt uses; the build time (p50/p99, the index warm, the cross-file cache cold: the first build on
a line). Baselines at the middle budget: prefix/suffix only, and Jaccard-similar chunks only. ``--misses N``
prints N missed cases with the reason.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from codeassist.context.engine import ContextEngine
from codeassist.context.index import RepoIndex
from codeassist.context.retrieve import similar_snippets
from codeassist.context.symbols import Definition
from codeassist.context.templates import template_for

CALL = re.compile(
    r"^(\s*)(?:(?:return|await|const|let|var|yield)\s+)?(?:[\w.$]+\s*=\s*)?(?:await\s+|new\s+)?"
    r"((?:[A-Za-z_$][\w$]*\.)*)([A-Za-z_]\w*)\("
)
_FROM = re.compile(r"^[ \t]*from[ \t]+[\w.]+[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.M)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n]*)", re.M)
_JS_IMPORT = re.compile(r"^[ \t]*import[ \t]+(?:type[ \t]+)?([^;'\"]*?)[ \t]*from[ \t]*['\"]", re.M)
SOURCE = (".py", ".ts", ".tsx", ".js", ".mjs", ".jsx")
FORMS = ("name()", "Class.method()", "module.func()", "obj.method()")
KINDS = ("function", "class", "method")


def imported_names(text: str, js: bool = False) -> tuple[set[str], bool]:
    """Local names bound by the file's import statements, and whether it has a star import."""
    names: set[str] = set()
    star = False
    if js:
        for m in _JS_IMPORT.finditer(text):
            for part in re.split(r"[,{}]", m.group(1)):
                words = part.replace("* as", "*as").split()
                if (words and words[0] != "type") or len(words) > 1:
                    names.add(words[-1].removeprefix("*as"))
        return names - {""}, False
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


def signature_line(d: Definition) -> str:
    lines = d.text.split("\n")
    return lines[d.sig[0]].strip() if d.sig[0] < len(lines) else ""


def call_form(chain: str, imported: set[str], target: Definition) -> str:
    if not chain:
        return "name()"
    parts = chain.rstrip(".").split(".")
    if len(parts) == 1 and parts[0] != "self":
        if target.owner and parts[0] == target.owner:
            return "Class.method()"
        if not target.owner and parts[0] in imported:
            return "module.func()"
    return "obj.method()"


def callee_kind(d: Definition) -> str:
    if "class" in d.kind or d.kind in ("interface_declaration", "struct_item"):
        return "class"
    return "method" if d.owner else "function"


def build_cases(index: RepoIndex, n: int, rng: random.Random) -> list[dict[str, object]]:
    cases = []
    for rel in sorted(index.files):
        if not rel.endswith(SOURCE):
            continue
        js = not rel.endswith(".py")
        own = {d.name for d in index.files[rel].defs}
        text = (index.root / rel).read_text(encoding="utf-8", errors="replace")
        imported, star = imported_names(text, js)
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
                    first = signature_line(defs[0])
                    if first:
                        blanked = text[:offset] + m.group(1) + text[offset + len(line) :]
                        cases.append(
                            {
                                "rel": rel,
                                "text": blanked,
                                "offset": offset + len(m.group(1)),
                                "first": first,
                                "name": m.group(3),
                                "target": defs[0],
                                "form": call_form(chain, imported, defs[0]),
                                "kind": callee_kind(defs[0]),
                            }
                        )
            offset += len(line) + 1
    rng.shuffle(cases)
    return cases[:n]


def why_missed(engine: ContextEngine, index: RepoIndex, case: dict[str, object]) -> str:
    rel, text, offset, name, target = (case[k] for k in ("rel", "text", "offset", "name", "target"))
    assert isinstance(text, str) and isinstance(offset, int) and isinstance(target, Definition)
    cursor_line = text.count("\n", 0, offset)
    if not re.search(rf"\b{re.escape(str(name))}\b", text):
        return "the name occurs nowhere else in the file"
    lines = text.split("\n")
    lang = "python" if str(rel).endswith(".py") else "typescript"
    doc = engine._doc(str(index.root / str(rel)), text, lang)
    cands = engine._candidates(doc, index, str(rel), lang, text, lines, cursor_line, None)
    rank = [i for i, s in enumerate(cands) if s.path == target.path and s.start <= target.line < s.end]
    if not rank:
        return f"not among the {len(cands)} candidates"
    return f"candidate ranked {rank[0] + 1} of {len(cands)} ({cands[rank[0]].reason}) but not packed"


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def _breakdown(by: dict[tuple[str, str, int], list[int]], axis: str, value: str, budgets: list[int]) -> dict:
    """{budget: [recall, cases]} for one call form or callee kind."""
    return {
        str(b): [round(by[axis, value, b][0] / max(1, by[axis, value, b][1]), 3), by[axis, value, b][1]]
        for b in budgets
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?", default=sysconfig.get_paths()["stdlib"])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--budgets", default="1024,2048,4096")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--misses", type=int, default=0, help="print this many missed cases with the reason")
    args = ap.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    mid = budgets[len(budgets) // 2]
    src = Path(args.root).resolve()
    tmp = tempfile.mkdtemp(prefix="recall-")  # never write into ROOT: cases blank lines in a copy
    root = Path(tmp) / src.name
    shutil.copytree(src, root, ignore=shutil.ignore_patterns(".git", "node_modules", "__pycache__", "site-packages"))
    full = ContextEngine(budget=mid)
    index = full.add_root(root, background=False, watch=False)
    window_only = ContextEngine(budget=mid, sources=())
    window_only.roots = full.roots
    cases = build_cases(index, args.cases, random.Random(args.seed))
    template = template_for("qwen")
    hits: dict[str, int] = defaultdict(int)
    by: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    shares: dict[int, list[float]] = defaultdict(list)
    ms: list[float] = []
    warm: list[float] = []
    misses: list[str] = []
    for case in cases:
        rel, text, offset, first = case["rel"], case["text"], case["offset"], case["first"]
        assert isinstance(rel, str) and isinstance(text, str) and isinstance(offset, int) and isinstance(first, str)
        path = index.root / rel
        original = path.read_bytes()
        path.write_text(text, encoding="utf-8")
        index.index_file(rel)  # the index must not see the call either
        try:
            for budget in budgets:
                t0 = time.perf_counter()
                parts = full.build(text, offset, template, path=path, budget=budget)
                if budget == mid:
                    ms.append((time.perf_counter() - t0) * 1000)
                    full._cross.clear()  # a new cursor line, the index and resolver caches warm (the daemon's case)
                    t0 = time.perf_counter()
                    full.build(text, offset, template, path=path, budget=budget)
                    warm.append((time.perf_counter() - t0) * 1000)
                hit = first in parts.prompt
                hits[f"engine@{budget}"] += hit
                shares[budget].append(parts.tokens / budget)
                for key in (("form", str(case["form"]), budget), ("kind", str(case["kind"]), budget)):
                    by[key][0] += hit
                    by[key][1] += 1
                if budget == mid and not hit and len(misses) < args.misses:
                    t = case["target"]
                    assert isinstance(t, Definition)
                    misses.append(
                        f"[{case['form']}] {rel}:{text.count(chr(10), 0, offset) + 1} {case['name']} -> "
                        f"{t.path}:{t.line + 1}: {why_missed(full, index, case)}"
                    )
            ps = window_only.build(text, offset, template, path=path, budget=mid)
            hits["prefix_suffix_only"] += first in ps.prompt
            # Jaccard baseline: the prefix/suffix window plus the most similar chunks in the same snippet budget.
            line = text.count("\n", 0, offset)
            lines = text.split("\n")
            query = "\n".join(lines[max(0, line - 25) : line + 6])
            room = int(mid * 0.3)
            block = ""
            for s in similar_snippets(index, query, rel, k=8, method="jaccard"):
                piece = f"<|file_sep|>{s.path}\n{s.text}\n"
                if full.counter.count(block + piece) > room:
                    break
                block += piece
            hits["jaccard_only"] += first in ps.prompt or first in block
        finally:
            path.write_bytes(original)
            index.index_file(rel)
    n = max(1, len(cases))
    result: dict[str, object] = {
        "bench": "retrieval_recall",
        "root": str(src),
        "files": len(index.files),
        "cases": len(cases),
        **{f"recall@{b}": round(hits[f"engine@{b}"] / n, 3) for b in budgets},
        f"recall_prefix_suffix_only@{mid}": round(hits["prefix_suffix_only"] / n, 3),
        f"recall_jaccard_only@{mid}": round(hits["jaccard_only"] / n, 3),
        **{f"budget_used_median@{b}": round(statistics.median(shares[b]), 3) for b in budgets if shares[b]},
        f"build_ms_p50@{mid}": round(_pct(ms, 0.5), 2),
        f"build_ms_p99@{mid}": round(_pct(ms, 0.99), 2),
        f"warm_build_ms_p50@{mid}": round(_pct(warm, 0.5), 2),
        f"warm_build_ms_p99@{mid}": round(_pct(warm, 0.99), 2),
        "by_form": {f: _breakdown(by, "form", f, budgets) for f in FORMS if by["form", f, mid][1]},
        "by_kind": {k: _breakdown(by, "kind", k, budgets) for k in KINDS if by["kind", k, mid][1]},
        "token_counter": full.counter.name,
    }
    print(json.dumps(result))
    for k, v in result.items():
        print(f"{k:>32}: {v}")
    for line in misses:
        print("miss:", line)
    full.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
