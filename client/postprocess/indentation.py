"""Fix indentation to the block.

* After a block header (``def f():`` / ``if (x) {``), the body must be indented one unit deeper than
  the header; models often emit it at the header's own level, or doubled when the editor already
  indented the new line.
* On an indented blank line, the completion's own leading whitespace is added to the editor's.
* In multi-line mode, a line that dedents to the header's level or below ends the block: cut there.
"""

from __future__ import annotations

from codeassist.client.postprocess.base import FilterContext, indent_of, line_before

__all__ = ["apply"]


def _unit(prefix: str) -> str:
    if "\n\t" in prefix:
        return "\t"
    widths = sorted({len(indent_of(line)) for line in prefix.split("\n")[-200:] if line.strip()} - {0})
    return " " * (widths[0] if widths and widths[0] <= 8 else 4)


def _header(prefix: str) -> str | None:
    """The last non-blank line before the cursor's line, when it ends a block header."""
    lines = prefix.split("\n")[:-1]
    for line in reversed(lines):
        if line.strip():
            return line if line.rstrip()[-1] in ":{" else None
    return None


def apply(text: str, ctx: FilterContext) -> str:
    before = line_before(ctx)
    if before.strip() or not text.strip():
        return text  # the cursor is after code on its line: indentation is the editor's
    header = _header(ctx.prefix)
    lines = text.split("\n")
    first = lines[0]
    if header is not None:
        target = len(indent_of(header).expandtabs(4)) + len(_unit(ctx.prefix).expandtabs(4))
    else:
        prev = [ln for ln in ctx.prefix.split("\n")[:-1] if ln.strip()]
        target = len(indent_of(prev[-1]).expandtabs(4)) if prev else len(before.expandtabs(4))
    have = len(before.expandtabs(4)) + len(indent_of(first).expandtabs(4))
    delta = target - have
    if delta and first.strip():
        unit = "\t" if "\t" in before + indent_of(first) else " "
        step = 4 if unit == "\t" else 1

        def shift(line: str, is_first: bool) -> str:
            if not line.strip():
                return line
            ind = len(indent_of(line).expandtabs(4))
            new = target - len(before.expandtabs(4)) if is_first else ind + delta
            return unit * (max(0, new) // step) + line.lstrip(" \t")

        lines = [shift(line, i == 0) for i, line in enumerate(lines)]
    if header is not None and ctx.multiline:
        limit = len(indent_of(header).expandtabs(4))
        for i, line in enumerate(lines[1:], start=1):
            if line.strip() and len(indent_of(line).expandtabs(4)) <= limit:
                closing = line.strip()[:1] in ")]}"
                lines = lines[: i + 1] if closing and ctx.suffix.strip()[:1] not in ")]}" else lines[:i]
                break
    return "\n".join(lines).rstrip() if len(lines) > 1 else lines[0]
