"""How many characters after the cursor a finished completion replaces (LSP ``InlineCompletionItem.range``,
the completion fallback's ``textEdit``).

Editors auto-insert closers: the cursor sits in ``console.log(|)`` or ``on('data', (d) => {|})``. When the
completion writes those closers itself (``"hi");``, or a body and its ``});``), inserting it would leave
them twice (``});})``); the answer replaces them instead, as Copilot and Tabby do. Only the whole rest of
the cursor's line, only when that rest is closers (brackets, quotes, ``;``, ``,``, blanks), and only when
the line closes, with the completion and without that rest, exactly what it closed before (and inserting
would not).

Not a filter: it never changes the completion, it only reads the finished one — so it can never change a
literal or cut a token.
"""

from __future__ import annotations

from codeassist.client.postprocess.base import FilterContext, line_after, line_before, scan_brackets_state

__all__ = ["for_document", "suffix_chars"]

_CLOSERS = frozenset(")]}\"'`;, \t")


def _state(text: str) -> tuple[tuple[str, ...], int, bool]:
    """(unclosed openers, closers with no opener, a string left open on the last line)."""
    stack, orphans, open_string = scan_brackets_state(text)
    return tuple(stack), len(orphans), open_string


def suffix_chars(text: str, ctx: FilterContext) -> int:
    """Characters right after the cursor that ``text`` replaces (0: insert at the cursor)."""
    rest = line_after(ctx)
    if not text or not rest.strip() or any(ch not in _CLOSERS for ch in rest):
        return 0
    head = line_before(ctx)
    as_is = _state(head + rest)
    if _state(head + text) == as_is and _state(head + text + rest) != as_is:
        return len(rest)
    return 0


def for_document(text: str, document: str, offset: int) -> int:
    """:func:`suffix_chars` for a completion at ``offset`` in a whole document."""
    start = document.rfind("\n", 0, offset) + 1
    end = document.find("\n", offset)
    ctx = FilterContext(
        prefix=document[start:offset], suffix=document[offset : len(document) if end < 0 else end], multiline=False
    )
    return suffix_chars(text, ctx)
