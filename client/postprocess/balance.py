"""Balance brackets and quotes against the suffix.

When the text after the cursor already closes a bracket (or quote), a completion that closes it as
well would leave a duplicate: ``print(foo(a)`` + completion ``)`` + suffix ``)``. Closers at the end of
the completion that nothing opened are dropped while the suffix supplies the same closer.
"""

from __future__ import annotations

from codeassist.client.postprocess.base import BRACKETS, FilterContext, line_after, line_before, scan_brackets

__all__ = ["apply"]


def apply(text: str, ctx: FilterContext) -> str:
    rest = line_after(ctx).lstrip()
    if not rest or not text:
        return text
    head = line_before(ctx)
    out = text.rstrip()
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
