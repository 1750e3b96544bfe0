"""Token-budget arithmetic: the split between prefix, suffix and cross-file snippets, and greedy packing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from codeassist.context.retrieve import Snippet
from codeassist.context.tokens import TokenCounter

__all__ = ["DEFAULT_BUDGET", "MAX_BUDGET", "MIN_BUDGET", "Split", "check_budget", "pack"]

DEFAULT_BUDGET = 2048
MIN_BUDGET, MAX_BUDGET = 1024, 4096
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


def check_budget(budget: int) -> int:
    if not MIN_BUDGET <= budget <= MAX_BUDGET:
        raise ValueError(f"budget must be within {MIN_BUDGET}..{MAX_BUDGET} tokens, got {budget}")
    return budget


def pack(
    candidates: list[Snippet],
    render: Callable[[Snippet], str],
    counter: TokenCounter,
    budget: int,
    max_recent: int = 2,
    full_share: float = 0.5,
    outline_share: float = 0.2,
) -> tuple[list[Snippet], list[int]]:
    """Best candidates first (recent edits, then definitions, then similar chunks) until ``budget`` is used.

    Definitions get their full summary (signature + doc head + members) while under ``full_share`` of the
    budget; after that, and whenever the full text does not fit, their signature alone — so that many
    relevant definitions fit rather than a few long ones. Outlines (``trim``) first take at most
    ``outline_share`` of the budget each (their first lines: the signature, constructors, classmethods...); what
    is left at the end grows them, best first, line by line — the budget is spent on what the cursor's imports
    offer rather than left unused.
    """
    chosen: list[Snippet] = []
    costs: list[int] = []
    used = misses = recent = 0
    cut: list[tuple[int, Snippet]] = []  # outlines packed shorter than they are: (position, whole outline)
    for s in sorted(candidates, key=lambda s: (_TIER.get(s.kind, 9), -s.score)):
        if s.kind == "recent" and recent >= max_recent:
            continue
        compact = s.kind == "definition" and s.short and s.short != s.text and not s.trim
        cost = counter.count_piece(render(s)) if not compact or used < budget * full_share else budget + 1
        if used + cost > budget or (compact and used + cost > budget * full_share):
            if compact:
                short = replace(
                    s, text=s.short, reason=f"{s.reason}; signature only", end=s.start + s.short.count("\n") + 1
                )
                short_cost = counter.count_piece(render(short))
                if used + short_cost <= budget:
                    s, cost = short, short_cost
            if used + cost > budget and not s.trim:
                misses += 1
                if misses > 8:
                    break
                continue
        if s.trim and (used + cost > budget or cost > budget * outline_share):
            full = s
            s, cost = _trimmed(s, render, counter, min(budget - used, int(budget * outline_share)))
            if s is None:
                continue
            cut.append((len(chosen), full))
        recent += s.kind == "recent"
        chosen.append(s)
        costs.append(cost)
        used += cost
    for i, full in cut:  # spend what is left on the best outlines' next lines
        if budget - used < 24:
            break
        grown, cost = _trimmed(full, render, counter, costs[i] + budget - used)
        if grown is not None and cost > costs[i]:
            used += cost - costs[i]
            chosen[i], costs[i] = grown, cost
    return chosen, costs


def _trimmed(
    s: Snippet, render: Callable[[Snippet], str], counter: TokenCounter, room: int
) -> tuple[Snippet | None, int]:
    """An outline cut to its first lines that fit in ``room`` tokens (None when not even three lines do)."""
    lines = s.text.split("\n")
    whole = counter.count_piece(render(s))
    if whole <= room:
        return s, whole
    lo, hi, best = 3, len(lines) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        cut = replace(s, text="\n".join(lines[:mid]), reason=f"{s.reason} (first {mid} of {len(lines)} lines)")
        cost = counter.count_piece(render(cut))
        if cost <= room:
            best, lo = (cut, cost), mid + 1
        else:
            hi = mid - 1
    return best if best is not None else (None, 0)
