"""Cut the completion where the model starts writing the prompt's own scaffolding.

A model that is not trained for repository-level prompts sees the retrieved snippets headed
``# Path: some/file.py`` and, at a line start, often continues that pattern (``# Path: client/cache.py``)
instead of code. Such a line came from the prompt, never from the user's file: the completion is cut
before it (emptied when it is its first line). Only when the prompt had such headers (the context engine
says which marker it wrote: :attr:`FilterContext.scaffold`), only a whole line of marker + one path-like
token, and not when the text around the cursor has such lines itself.

Never: cut anywhere but at the start of a header line, or change what is kept.
"""

from __future__ import annotations

import re

from codeassist.client.postprocess.base import FilterContext, line_before

__all__ = ["apply"]

_PATH = re.compile(r"[^\s]+")


def _is_header(line: str, marker: str) -> bool:
    body = line.strip(" \t\r\n")
    return body.startswith(marker) and _PATH.fullmatch(body[len(marker) :]) is not None


def apply(text: str, ctx: FilterContext) -> str:
    marker = ctx.scaffold
    if not marker or marker not in text or marker in ctx.prefix or marker in ctx.suffix:
        return text
    at_line_start = not line_before(ctx).strip()
    start = 0
    for n, line in enumerate(text.splitlines(keepends=True)):
        if (n or at_line_start) and _is_header(line, marker):
            return text[:start]
        start += len(line)
    return text
