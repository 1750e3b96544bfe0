"""Strip the part of a completion that repeats the text after the cursor.

Same line: the completion ends with what already follows the cursor (``foo(a, b)`` before ``)`` is
handled by ``balance``; here the overlap must be at least two non-blank characters or the whole rest
of the line). Multi-line: a completion line that reproduces the next non-blank line of the file is
where the model started repeating the suffix — cut there.
"""

from __future__ import annotations

from codeassist.client.postprocess.base import FilterContext, line_after

__all__ = ["apply"]


def _next_line(suffix: str) -> str:
    for line in suffix.split("\n")[1:]:
        if line.strip():
            return line.strip()
    return ""


def apply(text: str, ctx: FilterContext) -> str:
    rest = line_after(ctx).strip()
    if rest:
        body = text.rstrip()
        for k in range(len(rest), 0, -1):
            piece = rest[:k]
            if len(piece.strip()) < 2 and k != len(rest):
                break
            if body.endswith(piece):
                return body[: len(body) - k].rstrip() if k == len(rest) else body[: len(body) - k]
    nxt = _next_line(ctx.suffix) if not rest else ""
    if nxt and len(nxt) >= 3 and "\n" in text:
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if i > 0 and line.strip() == nxt:
                return "\n".join(lines[:i]).rstrip()
    return text
