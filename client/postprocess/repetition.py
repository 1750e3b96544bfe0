"""Drop repetition loops and lines that duplicate the lines around the cursor.

* a line (or a run of characters) repeated again and again at the end of a completion is a loop:
  keep the first occurrence;
* consecutive identical lines inside the completion collapse to one;
* a completion line that repeats the line just above the cursor (the model echoing the prefix) is
  dropped, and so is a last line that repeats the line just below it.
"""

from __future__ import annotations

import re

from codeassist.client.postprocess.base import FilterContext, line_before

__all__ = ["apply"]

_LOOP = re.compile(r"(.{1,24}?)\1{3,}$", re.DOTALL)


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


def apply(text: str, ctx: FilterContext) -> str:
    m = _LOOP.search(text)
    if m and len(m.group(0)) >= 8:
        text = text[: m.start() + len(m.group(1))]
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        if out and line.strip() and line.strip() == out[-1].strip() and len(line.strip()) > 1:
            continue
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
    return result.rstrip() if result != text else text
