"""Token-budget arithmetic: the split between prefix, suffix and cross-file snippets, and greedy packing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from codeassist.context.retrieve import Snippet
from codeassist.context.tokens import MEMO_MAX_CHARS, TokenCounter

__all__ = ["DEFAULT_BUDGET", "ENGINE_MIN_BUDGET", "MAX_BUDGET", "MIN_BUDGET", "Split", "check_budget", "pack"]

DEFAULT_BUDGET = 2048
MIN_BUDGET, MAX_BUDGET = 1024, 4096  # what a user may set
ENGINE_MIN_BUDGET = 192  # what the engine may use for a slow server (client/server_speed.py)
_TIER = {"recent": 0, "definition": 1, "open": 2, "similar": 3}


@dataclass(frozen=True)
class Split:
    prefix: float = 0.55
    suffix: float = 0.15
    snippets: float = 0.30

    def __post_init__(self) -> None:
        total = self.prefix + self.suffix + self.snippets
        if min(self.prefix, self.suffix, self.snippets) < 0 or abs(total - 1) > 1e-6:
            raise ValueError(f"budget split must be non-negative and sum to 1, got {self}")


def check_budget(budget: int, floor: int = MIN_BUDGET) -> int:
    if not floor <= budget <= MAX_BUDGET:
        raise ValueError(f"budget must be within {floor}..{MAX_BUDGET} tokens, got {budget}")
    return budget


def pack(
    candidates: list[Snippet],
    render: Callable[[Snippet], str],
    counter: TokenCounter,
    budget: int,
    max_recent: int = 2,
    full_share: float = 0.5,
    outline_share: float = 0.2,
    max_similar: int = 2,
    weak_share: float = 0.25,
    cover_share: float = 0.65,
) -> tuple[list[Snippet], list[int]]:
    """Pack the candidates into ``budget`` tokens, many short before few long:

    1. coverage — best first (recent edits, then definitions and outlines by score, what the file's imports and
       typed receivers give): each in its compact form (a definition's signature, an outline's header and
       first member) within ``cover_share`` of the budget;
    2. depth — best first: a definition's full summary (signature + doc head + members) while the pack stays
       under ``full_share`` of the budget, an outline grown to ``outline_share`` of it;
    3. coverage of the rest of the strong candidates, then repo-wide name matches (``weak``: a common name, or
       one of several definitions), signatures only, within ``weak_share`` of the budget; depth again;
    4. at most ``max_similar`` similar chunks where they fit;
    5. what is left grows the outlines, best first, line by line: the budget is spent on what the cursor's
       imports offer rather than left unused.
    """
    chosen: list[Snippet] = []
    costs: list[int] = []
    whole: list[Snippet] = []  # each chosen snippet's full form
    used = recent = 0
    ordered = sorted(candidates, key=lambda s: (_TIER.get(s.kind, 9), -s.score))
    strong = [s for s in ordered if s.kind != "similar" and not s.weak]
    weak = [s for s in ordered if s.weak]
    compact_weak = []
    for s in weak:
        if s.short and s.short != s.text:
            s = replace(s, text=s.short, reason=f"{s.reason}; signature only", end=s.start + s.short.count("\n") + 1)
        compact_weak.append((s, counter.count_piece(render(s))))
    reserve = min(int(budget * weak_share), sum(k for _, k in compact_weak))

    def cover(cands: list[Snippet], limit: int) -> list[Snippet]:
        """Compact forms, best first, within ``limit`` tokens in all; returns the candidates left out."""
        nonlocal used, recent
        left, misses = [], 0
        for n, s in enumerate(cands):
            if misses > 8:  # the budget is full: the rest waits for a later pass
                left += cands[n:]
                break
            if s.kind == "recent" and recent >= max_recent:
                continue
            full = s
            if s.trim:
                s, cost = _trimmed(s, render, counter, limit - used, max_lines=_head_lines(s.text))
                if s is None:
                    left.append(full)
                    continue
            elif s.kind == "definition" and s.short and s.short != s.text:
                s = replace(
                    s, text=s.short, reason=f"{s.reason}; signature only", end=s.start + s.short.count("\n") + 1
                )
                cost = counter.count_piece(render(s))
            else:
                cost = counter.count_piece(render(s))
            if used + cost > limit:
                left.append(full)
                misses += 1
                continue
            recent += s.kind == "recent"
            chosen.append(s)
            costs.append(cost)
            whole.append(full)
            used += cost
        return left

    def deepen() -> None:
        """Best first: definitions' full summaries (within ``full_share``), outlines grown to ``outline_share``."""
        nonlocal used
        for i, full in enumerate(whole):
            if chosen[i] is full:
                continue
            if full.trim:
                room = min(budget - used + costs[i], max(costs[i], int(budget * outline_share)))
                grown, cost = _trimmed(full, render, counter, room)
            else:
                grown, cost = full, counter.count_piece(render(full))
                if used - costs[i] + cost > budget * full_share:
                    continue
            if grown is not None and costs[i] < cost <= budget - used + costs[i]:
                used += cost - costs[i]
                chosen[i], costs[i] = grown, cost

    left = cover(strong, int(budget * cover_share))
    deepen()
    left = cover(left, budget - reserve)
    spent = 0
    for s, cost in compact_weak:  # name matches across the repo: signatures, within ``weak_share`` of the budget
        if used + cost <= budget and spent + cost <= reserve:
            spent += cost
            chosen.append(s)
            costs.append(cost)
            whole.append(s)
            used += cost
    cover(left, budget)
    deepen()
    for s in [s for s in ordered if s.kind == "similar"][:max_similar]:
        cost = counter.count_piece(render(s))
        if used + cost <= budget:
            chosen.append(s)
            costs.append(cost)
            whole.append(s)
            used += cost
    for i, full in enumerate(whole):  # spend what is left on the best outlines' next lines
        if budget - used < 24:
            break
        if full.trim and chosen[i] is not full:
            grown, cost = _trimmed(full, render, counter, costs[i] + budget - used)
            if grown is not None and cost > costs[i]:
                used += cost - costs[i]
                chosen[i], costs[i] = grown, cost
    best_first = sorted(
        range(len(chosen)), key=lambda i: (chosen[i].weak, _TIER.get(chosen[i].kind, 9), -chosen[i].score)
    )
    return [chosen[i] for i in best_first], [costs[i] for i in best_first]


def _count(counter: TokenCounter, text: str) -> int:
    """Tokens of a snippet: memoised whole when short, else summed over memoised lines (an outline's cuts share
    their lines, so growing it line by line does not re-encode it)."""
    return counter.count_piece(text) if len(text) <= MEMO_MAX_CHARS else counter.count_text(text)


def _trimmed(
    s: Snippet, render: Callable[[Snippet], str], counter: TokenCounter, room: int, max_lines: int = 1 << 30
) -> tuple[Snippet | None, int]:
    """An outline cut to its first lines (``max_lines`` at most) that fit in ``room`` tokens (None when not
    even its first line does)."""
    lines = s.text.split("\n")
    if len(lines) <= max_lines:
        whole = _count(counter, render(s))
        if whole <= room:
            return s, whole
    lo, hi, best = 1, min(len(lines) - 1, max_lines), None
    while lo <= hi:
        mid = (lo + hi) // 2
        cut = replace(s, text="\n".join(lines[:mid]), reason=f"{s.reason} (first {mid} of {len(lines)} lines)")
        cost = _count(counter, render(cut))
        if cost <= room:
            best, lo = (cut, cost), mid + 1
        else:
            hi = mid - 1
    return best if best is not None else (None, 0)


def _head_lines(outline: str) -> int:
    """Lines of an outline's compact form: its header (signature, docstring line) and first member with its
    decorator."""
    lines = outline.split("\n", 4)
    n = 3 if len(lines) > 1 and lines[1].lstrip().startswith(('"', "'")) else 2
    return n + 1 if len(lines) > n - 1 and lines[n - 1].lstrip().startswith("@") else n
