"""Recently edited regions of the other open documents of the same workspace root, as prompt snippets."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from codeassist.context.index import RepoIndex
from codeassist.context.parse import ParsedDoc
from codeassist.context.retrieve import Snippet
from codeassist.context.uris import uri_to_path

__all__ = ["recent_snippets"]

Scope = Callable[[Path | None], tuple[RepoIndex | None, str | None, bool]]


def recent_snippets(
    recent: Iterable[tuple[str, int, float]],
    docs: Mapping[str, ParsedDoc],
    scope: Scope,
    current: str | None,
    index: RepoIndex,
    limit: int = 4,
) -> list[Snippet]:
    """Edits (uri, line, when), newest first, of documents under ``index``'s root (the current document's): a
    document of another repository, of none, or a private one never gives a snippet."""
    out: list[Snippet] = []
    seen: set[tuple[str, int]] = set()
    for uri, line, when in reversed(list(recent)):
        doc = docs.get(uri)
        if doc is None or uri == current or (uri, line // 10) in seen:
            continue
        seen.add((uri, line // 10))
        where, rel, private = scope(uri_to_path(uri))
        if where is not index or rel is None or private:
            continue
        lines = doc.text.split("\n")
        lo, hi = max(0, line - 5), min(len(lines), line + 6)
        age = time.monotonic() - when
        text = "\n".join(lines[lo:hi])
        out.append(Snippet(rel, text, f"recently edited ({age:.0f}s ago)", 1.0 / (1 + age), lo, hi, "recent"))
        if len(out) >= limit:
            break
    return out
