"""Drop repetition loops and lines that duplicate the lines around the cursor.

* a line (or a run of lines) repeated again and again at the end of a completion is a loop: keep the first
  occurrence, cut at a line boundary;
* a run of *tokens* repeated on one line (``foo = foo = foo = foo =``) is a loop too: the line it is on is
  dropped whole (the completion is emptied when that is its first line) — never left as a fragment;
* consecutive identical lines (same indentation) inside the completion collapse to one;
* a completion line that repeats the line just above the cursor (the model echoing the prefix) is
  dropped, and so is a last line that repeats the line just below it.

Never: change a literal's value or cut inside a token. A run of equal characters with no whitespace
(``10000000000``, ``1_000_000_000``, ``# =====``, ``"----"``) is a value, and a run inside a string or a
comment is text: both are kept whole. Only a run of 40+ of the same character or two in code, on a line
after the first, is a runaway loop: that whole line goes. Lines that only look alike (``});`` closing two
nested callbacks at different depths) are different lines, and a repeated item inside an open bracket
(``[0, 0, 0, …``) is a collection's value.
"""

from __future__ import annotations

import re

from codeassist.client.postprocess.base import FilterContext, indent_of, line_before, scan_brackets

__all__ = ["apply"]

_LOOP = re.compile(r"(.{1,24}?)\1{3,}$", re.DOTALL)
_MIN_LOOP_CHARS = 8
_RUNAWAY_CHARS = 40


def _line_above(ctx: FilterContext) -> str:
    lines = ctx.prefix.split("\n")[:-1]
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return ""


def _line_below(ctx: FilterContext) -> str:
    for line in ctx.suffix.split("\n")[1:]:
        if line.strip():
            return line.strip()
    return ""


def _in_text(line: str, language: str) -> bool:
    """Whether the end of ``line`` (code up to a point) is inside a string or a line comment."""
    quote: str | None = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif (ch == "#" and language in ("python", "py", "")) or line.startswith("//", i) or line.startswith("/*", i):
            return True
        i += 1
    return quote is not None


def _cut_loop(text: str, ctx: FilterContext) -> str:
    m = _LOOP.search(text)
    if not m or len(m.group(0)) < _MIN_LOOP_CHARS:
        return text
    unit = m.group(1)
    if "\n" in unit:
        # whole lines repeat: keep the first occurrence, up to the end of its line
        cut = m.start() + len(unit)
        if text[cut - 1] != "\n":
            eol = text.find("\n", cut)
            cut = len(text) if eol < 0 else eol
        return text[:cut]
    line_start = text.rfind("\n", 0, m.start()) + 1
    head = (line_before(ctx) if line_start == 0 else "") + text[line_start : m.start()]
    if not unit.strip() or not any(ch.isspace() for ch in unit):
        # one token's characters (a number, a rule, padding): a value, never cut; only a run far longer than
        # any real literal, on a later line of code, is the model looping — that line is dropped whole
        runaway = line_start > 0 and len(m.group(0)) >= _RUNAWAY_CHARS and len(set(m.group(0))) <= 2
        if runaway and not _in_text(head, ctx.language):
            return text[:line_start]
        return text
    if _in_text(head, ctx.language) or scan_brackets(head)[0]:
        return text  # inside a string, a comment or a collection literal: a value, not a loop
    return text[:line_start]


def apply(text: str, ctx: FilterContext) -> str:
    text_in = text
    text = _cut_loop(text, ctx)
    if not text.strip():
        return ""
    lines = text.split("\n")
    out: list[str] = []
    before = line_before(ctx)
    lead = before if not before.strip() else indent_of(before)
    for line in lines:
        prev = (lead if len(out) == 1 else "") + out[-1] if out else ""
        if out and line.strip() and line.rstrip() == prev.rstrip() and len(line.strip()) > 1:
            continue  # the same line at the same indentation, twice in a row
        out.append(line)
    above = _line_above(ctx)
    if (
        len(above) > 3
        and not line_before(ctx).strip()
        and out
        and out[0].strip() == above
        and not above.startswith(("}", ")", "]", "end"))
    ):
        out = out[1:]
    below = _line_below(ctx)
    if len(below) > 3 and len(out) > 1 and out[-1].strip() == below:
        out = out[:-1]
    result = "\n".join(out)
    return result.rstrip() if result != text_in else text_in
