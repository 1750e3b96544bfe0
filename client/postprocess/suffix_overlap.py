"""Strip the part of a completion that repeats the text after the cursor.

Same line: the completion ends with what already follows the cursor (``foo(a, b)`` before ``)`` is
handled by ``balance``; here the overlap must be at least two non-blank characters or the whole rest
of the line). Multi-line, or a completion on a line of its own: a completion line that reproduces the next
non-blank line of the file is where the model started repeating the suffix — cut there (a completion
whose first line is that line is an echo and is dropped whole). A closing line (``}``, ``})``) at the
indentation of the next line when that line already closes there (``};``, ``});``, ``}()``) is the same
closer twice: cut there as well — only when it closes a bracket opened before the completion (a closer of
the completion's own block is its own, whatever its indentation).

When the repeated rest is the completion's own closing line (``{|})`` + ``…\n})``), the completion is
kept: that line replaces the editor's closers (:mod:`replace_range`).

Never: cut inside a line (only at a line boundary, or the exact characters the suffix repeats), or change
what is kept.
"""

from __future__ import annotations

from codeassist.client.postprocess.base import FilterContext, indent_of, line_after, line_before, scan_brackets

__all__ = ["apply"]

_CLOSING = frozenset(")]};, \t")


def _next_line(suffix: str) -> str:
    for line in suffix.split("\n")[1:]:
        if line.strip():
            return line
    return ""


def _width(line: str) -> int:
    return len(indent_of(line).expandtabs(4))


def _closes_outside(text: str, start: int, end: int) -> bool:
    """Whether a closer in ``text[start:end]`` closes a bracket opened before the completion (not one of its own)."""
    _, orphans = scan_brackets(text[:end])
    return any(start <= i < end for i in orphans)


def _repeats(line: str, nxt: str, closes_outside: bool) -> bool:
    body, below = line.strip(), nxt.strip()
    if not body:
        return False
    if len(below) >= 3 and body == below:
        return True
    # a closer the next line already has, at the same indentation: } before };  }) before });
    closers = body.rstrip(";,")
    if not closes_outside or not closers or not set(body) <= _CLOSING:
        return False
    return below.startswith(closers) and _width(line) == _width(nxt)


def apply(text: str, ctx: FilterContext) -> str:
    rest = line_after(ctx).strip()
    if rest:
        body = text.rstrip()
        for k in range(len(rest), 0, -1):
            piece = rest[:k]
            if len(piece.strip()) < 2 and k != len(rest):
                break
            if body.endswith(piece):
                kept = body[: len(body) - k]
                if k == len(rest) and "\n" in kept and not kept.rsplit("\n", 1)[1].strip():
                    # the closers are on a line of their own (``{|}`` + body + ``}``): that line replaces the
                    # editor's closers rather than gluing them to the body's last line
                    return text
                return body[: len(body) - k].rstrip() if k == len(rest) else body[: len(body) - k]
        return text
    nxt = _next_line(ctx.suffix)
    if not nxt:
        return text
    before = line_before(ctx)
    lines = text.split("\n")
    start = 0
    for i, line in enumerate(lines):
        end = start + len(line)
        if i == 0 and before.strip():
            start = end + 1
            continue  # the first line goes on after code: not a line of its own
        if _repeats(before + line if i == 0 else line, nxt, _closes_outside(text, start, end)):
            return "\n".join(lines[:i]).rstrip()
        start = end + 1
    return text
