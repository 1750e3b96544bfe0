"""Fix indentation to the block.

* After a block header (``def f():`` / ``if (x) {``), the body must be indented one unit deeper than
  the header; models often emit it at the header's own level, or doubled when the editor already
  indented the new line.
* On an indented blank line, the completion's own leading whitespace is added to the editor's.
* Elsewhere a new line may stay at the previous line's level or dedent to any enclosing block's level (after
  a ``return``/``raise``, or when a block ends): a completion at one of those levels is kept as the model
  wrote it; deeper than the previous line (no header opened a block) it comes back to that line's level;
  between two levels it goes to the enclosing one.
* In multi-line mode, a line that dedents to the header's level or below ends the block: cut there. A
  closing line (``}`` / ``};`` / ``})``) at that level is kept, unless the suffix already closes this
  block (its next closer at the header's indentation, or closers right after the cursor: ``{|}`` — then
  the closing line replaces them when it closes the same, see :mod:`replace_range`). This holds for a
  header on a blank line's previous line and for one the cursor sits right after (``def f(x):|``,
  ``function f(x) {|``). Continuation lines close one block and open the next at the header's level
  (``} else {``, ``} catch (e) {``, ``}).then((r) => {``, ``elif …:``, ``else:``, ``except …:``,
  ``finally:``, and ``case``/``default`` under a ``switch``/``select``): the block goes on across them.

* After a statement the cursor ends (multi-line), new lines stay in the cursor's block: one closing line
  may end it (not when the block goes on below the cursor), and the completion ends at that block's end.

Never: change the text of a line (only its leading whitespace), or cut anywhere but at a line boundary.
"""

from __future__ import annotations

import re

from codeassist.client.postprocess import replace_range
from codeassist.client.postprocess.base import FilterContext, indent_of, line_after, line_before

__all__ = ["apply"]


_DEFAULT_UNIT = {"go": "\t", "javascript": "  ", "typescript": "  ", "javascriptreact": "  ", "typescriptreact": "  "}


def _smallest_indent(lines: list[str]) -> str | None:
    if any(line.startswith("\t") and line.strip() for line in lines):
        return "\t"
    widths = sorted({len(indent_of(line)) for line in lines if line.strip()} - {0})
    return " " * widths[0] if widths and widths[0] <= 8 else None


def _unit(ctx: FilterContext, header: str | None) -> str:
    """One indentation level: from the code above, the editor's indent of the cursor line (one level under
    the header), the code below, the editor's FormattingOptions, then the language's convention."""
    found = _smallest_indent(ctx.prefix.split("\n")[-200:-1])
    if found:
        return found
    before = line_before(ctx)
    if header is not None and not before.strip():
        if "\t" in before:
            return "\t"
        extra = len(before) - len(indent_of(header).expandtabs(4))
        if 0 < extra <= 8:
            return " " * extra
    found = _smallest_indent(ctx.suffix.split("\n")[1:200])
    if found:
        return found
    if ctx.insert_spaces is False:
        return "\t"
    if ctx.tab_size and 0 < ctx.tab_size <= 8:
        return " " * ctx.tab_size
    return _DEFAULT_UNIT.get(ctx.language, "    ")


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


def _width(line: str) -> int:
    return len(indent_of(line).expandtabs(4))


def _suffix_closes(ctx: FilterContext, limit: int) -> bool:
    """Whether the text after the cursor already closes the block whose header is at ``limit``."""
    rest = line_after(ctx).strip()
    if rest:
        return rest[0] in ")]}"
    for line in ctx.suffix.split("\n")[1:]:
        if line.strip():
            return line.strip()[0] in ")]}" and _width(line) == limit
    return False


_PY_CONTINUATION = re.compile(r"(elif|else|except|finally)\b.*:\s*(#.*)?$")
_CASE = re.compile(r"(case\b.*|default\s*):\s*(//.*)?$")
_SWITCH = re.compile(r"\b(switch|select)\b")


def _continues(line: str, header: str) -> bool:
    """A line at the header's level that closes one block and opens the next (``} else {``, ``elif x:``)."""
    body = line.strip()
    if body[:1] in ")]}" and body.rstrip().endswith("{"):
        return True
    if _PY_CONTINUATION.match(body):
        return True
    return bool(_CASE.match(body)) and bool(_SWITCH.search(header))


def _cut_block(lines: list[str], header: str, ctx: FilterContext) -> list[str]:
    """Cut where a line dedents to the header's level: the block has ended."""
    limit = _width(header)
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() and _width(line) <= limit:
            if _width(line) == limit and _continues(line, header):
                continue
            if line.strip()[:1] not in ")]}":
                return lines[:i]
            if not _suffix_closes(ctx, limit):
                return lines[: i + 1]
            if line_after(ctx).strip():
                # the closers sit right after the cursor (``{|}``): the closing line replaces them when it
                # closes the same; otherwise end on its indentation so the editor's closers land there
                whole = lines[: i + 1]
                if replace_range.suffix_chars("\n".join(whole), ctx) == len(line_after(ctx)):
                    return whole
                return [*lines[:i], indent_of(line)]
            return lines[:i]
    return lines


def _after_header_on_cursor_line(text: str, ctx: FilterContext) -> str:
    before = line_before(ctx)
    lines = text.split("\n")
    if not ctx.multiline or len(lines) < 2 or lines[0].strip() or before.rstrip()[-1:] not in (":", "{"):
        return text
    cut = _cut_block(lines, before, ctx)
    if cut == lines:
        return text
    out = "\n".join(cut)
    return out if line_after(ctx).strip() else out.rstrip()


def _after_statement(text: str, ctx: FilterContext) -> str:
    """New lines after a statement the cursor ends: they stay in the cursor's block. One closing line may end
    that block — not when the block goes on below the cursor — and the completion ends there."""
    before = line_before(ctx)
    lines = text.split("\n")
    if not ctx.multiline or len(lines) < 2 or lines[0].strip() or line_after(ctx).strip():
        return text
    base = _width(before)
    below = next((line for line in ctx.suffix.split("\n")[1:] if line.strip()), "")
    for i, line in enumerate(lines[1:], start=1):
        if not line.strip() or _width(line) >= base:
            continue
        if _continues(line, ""):
            continue  # } catch (e) { / except: — the enclosing statement goes on
        closes_block = line.strip()[:1] in ")]}" and not (below and _width(below) >= base)
        return "\n".join(lines[: i + 1] if closes_block else lines[:i]).rstrip()
    return text


def apply(text: str, ctx: FilterContext) -> str:
    before = line_before(ctx)
    if not text.strip():
        return text
    if before.strip():
        # the cursor is after code on its line: indentation is the editor's; only the block's end is ours
        if before.rstrip()[-1:] in (":", "{"):
            return _after_header_on_cursor_line(text, ctx)
        return _after_statement(text, ctx)
    header = _header(ctx.prefix)
    lines = text.split("\n")
    first = lines[0]
    if header is not None:
        unit = _unit(ctx, header)
        target = len(indent_of(header).expandtabs(4)) + len(unit.expandtabs(4))
    have = len(before.expandtabs(4)) + len(indent_of(first).expandtabs(4))
    if header is None:
        levels = _open_levels(ctx.prefix)
        target = have if have in levels else levels[0] if have > levels[0] else max(w for w in levels if w <= have)
    delta = target - have
    if delta and first.strip():
        lead = before or indent_of(first) or (unit if header is not None else "")
        unit = "\t" if "\t" in lead else " "
        step = 4 if unit == "\t" else 1

        def shift(line: str, is_first: bool) -> str:
            if not line.strip():
                return line
            ind = len(indent_of(line).expandtabs(4))
            new = target - len(before.expandtabs(4)) if is_first else ind + delta
            return unit * (max(0, new) // step) + line.lstrip(" \t")

        lines = [shift(line, i == 0) for i, line in enumerate(lines)]
    if header is not None and ctx.multiline:
        lines = _cut_block(lines, header, ctx)
    return "\n".join(lines).rstrip() if len(lines) > 1 else lines[0]
