"""Balance brackets and quotes against the suffix.

When the text after the cursor already closes a bracket (or quote), a completion that closes it as
well would leave a duplicate: ``print(foo(a)`` + completion ``)`` + suffix ``)``. Closers at the end of
the completion that nothing opened are dropped while the suffix supplies the same closer — except when
they are on a closing line of their own (``{|}`` + body + ``}``): that line replaces the editor's closers
(:mod:`replace_range`), so the body does not end glued to them.

Never: drop anything but closing brackets/quotes at the very end, or change a literal.
"""

from __future__ import annotations

from codeassist.client.postprocess import replace_range
from codeassist.client.postprocess.base import BRACKETS, FilterContext, line_after, line_before, scan_brackets

__all__ = ["apply"]


def apply(text: str, ctx: FilterContext) -> str:
    rest = line_after(ctx).lstrip()
    if not rest or not text:
        return text
    head = line_before(ctx)
    out = text.rstrip()
    last = out.rsplit("\n", 1)
    closing_line = len(last) == 2 and last[1].strip() and all(ch in ")]}; \t" for ch in last[1])
    if closing_line and replace_range.suffix_chars(text, ctx) == len(line_after(ctx)):
        return text
    while out:
        last = out[-1]
        if last in BRACKETS and rest.startswith(last):
            _, orphans = scan_brackets(head + out + rest)
            if not orphans:
                break
            out = out[:-1].rstrip()
            rest = rest  # the suffix still supplies it
        elif last in "\"'`" and rest.startswith(last):
            line = head + out + rest
            if line.count(last) % 2 == 0:
                break
            out = out[:-1]
        else:
            break
    return out if out != text.rstrip() else text
