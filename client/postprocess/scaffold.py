"""Cut the completion where the model starts writing the prompt's own scaffolding.

A model that is not trained for repository-level prompts sees the retrieved snippets headed
``# Path: some/file.py`` and, at a line start, often continues that pattern (``# Path: client/cache.py``)
instead of code. Such a line came from the prompt, never from the user's file: the completion is cut
before it (emptied when it is the first line). A document that itself has such header lines keeps them.
"""

from __future__ import annotations

from codeassist.client.postprocess.base import FilterContext
from codeassist.context.langs import path_header

__all__ = ["apply", "header_marker"]


def header_marker(language: str) -> str:
    """The start of the header line the context engine writes above each snippet."""
    return path_header(language or None, "").rstrip("\n")


def apply(text: str, ctx: FilterContext) -> str:
    marker = header_marker(ctx.language)
    if marker not in text or marker in ctx.prefix:
        return text
    start = 0
    for line in text.splitlines(keepends=True):
        if line.lstrip(" \t").startswith(marker):
            return text[:start]
        start += len(line)
    return text
