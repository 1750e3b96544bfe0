"""Fix indentation to the block.

* After a block header (``def f():`` / ``if (x) {``), the body must be indented one unit deeper than
  the header; models often emit it at the header's own level, or doubled when the editor already
  indented the new line.
* On an indented blank line, the completion's own leading whitespace is added to the editor's.
* Elsewhere a new line may stay at the previous line's level or dedent to any enclosing block's level (after
  a ``return``/``raise``, or when a block ends): a completion at one of those levels is kept as the model
  wrote it; deeper than the previous line (no header opened a block) it comes back to that line's level;
  between two levels it goes to the enclosing one.
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


def _open_levels(prefix: str) -> list[int]:
    """Indentation widths a new statement may take: the previous non-blank line's, then each enclosing
    block's (each earlier line that is less indented than all after it), down to 0."""
    levels: list[int] = []
    for line in reversed(prefix.split("\n")[:-1]):
        if line.strip():
            width = len(indent_of(line).expandtabs(4))
            if not levels or width < levels[-1]:
                levels.append(width)
                if width == 0:
                    break
    if not levels or levels[-1]:
        levels.append(0)
    return levels


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
    have = len(before.expandtabs(4)) + len(indent_of(first).expandtabs(4))
    if header is None:
        levels = _open_levels(ctx.prefix)
        target = have if have in levels else levels[0] if have > levels[0] else max(w for w in levels if w <= have)
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
