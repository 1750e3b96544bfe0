"""Single-line mode: keep one line and trim it at the end of the syntactic unit.

The unit ends where the completion closes a bracket that was opened before the cursor and that the
suffix closes too (the completion ran past the unit: what follows belongs after the suffix's closer),
or after a top-level ``;``. When the completion closes everything the rest of the line closed — and
that rest is only closers (``console.log(|)`` + ``"hi");``) — it is kept whole: the answer replaces the
editor's closers (:mod:`replace_range`) instead of losing the model's own tail.

At the end of a line, the next line is kept after the rest of the cursor's line (at most one blank line between;
no trailing blanks on the cursor's line): often the rest is empty (the line was finished), and when it is not,
typing through it finds the next line in the cache.

Never: cut inside a string or a token (only at a closer or after a ``;``), or change what is kept.
"""

from __future__ import annotations

from codeassist.client.postprocess import replace_range
from codeassist.client.postprocess.base import BRACKETS, OPENERS, FilterContext, line_after, line_before, scan_brackets

__all__ = ["apply"]


def apply(text: str, ctx: FilterContext) -> str:
    if ctx.multiline:
        return text
    out = _next_line(text, ctx) if text.strip() else text
    rest = line_after(ctx).lstrip()
    over_closed = bool(rest) and bool(scan_brackets(line_before(ctx) + out + rest)[1])
    depth = 0
    quote: str | None = None
    for i, ch in enumerate(out):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in OPENERS:
            depth += 1
        elif ch in BRACKETS:
            depth -= 1
            if depth < 0 and over_closed and rest.startswith(ch):
                if replace_range.suffix_chars(out, ctx) == len(line_after(ctx)):
                    over_closed, depth = False, 0  # it closes it all itself: it replaces the editor's closers
                    continue
                return out[:i].rstrip()
        elif ch == ";" and depth == 0 and ctx.language not in ("python", "py"):
            return out[: i + 1]
    return out.rstrip() if out != text else text


def _next_line(text: str, ctx: FilterContext) -> str:
    """The completion's line: the rest of the cursor's line; at a line end followed by the next line (the answer
    may start there)."""
    first, nl, rest = text.partition("\n")
    if not nl or line_after(ctx).strip():
        return first
    lead = len(rest) - len(rest.lstrip())
    head = rest[:lead]
    if head.count("\n") > 1 or lead == len(rest):  # past a blank line or more: another block
        return first
    end = rest.find("\n", lead)
    return (
        first.rstrip()
        + "\n" * (head.count("\n") + 1)
        + head.rsplit("\n", 1)[-1]
        + rest[lead : end if end >= 0 else None]
    )
