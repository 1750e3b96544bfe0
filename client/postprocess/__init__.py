"""Post-processing: small pure filters run in a fixed order on every completion.

The order matters: the prompt's scaffolding is cut first (nothing after it is the user's code), then the
suffix overlap and echoes (so later filters do not see text the suffix already has), then the brackets
against the suffix, then the block structure (indentation and where a block ends — it needs the lines as
the model wrote them, before repetition collapses any), then repetition loops, then single-line trimming;
``drop_blank`` goes last (any earlier filter may have emptied the completion).

One filter per module; each says in its docstring what it may never do. No filter changes a literal's
value or cuts inside a token: they drop whole lines, cut at line boundaries, re-indent (leading whitespace
only) or drop closers the suffix already has.

``replace_range`` is not a filter: it reads the finished completion and says how many of the editor's
auto-inserted closers after the cursor it replaces (``CompletionResult.replace_suffix_chars``, sent by the
LSP bridge as the inline item's ``range`` / the completion item's ``textEdit``). ``balance``,
``suffix_overlap``, ``indentation`` and ``single_line`` keep a completion's own closers when that count
covers the rest of the cursor's line.
"""

from __future__ import annotations

from codeassist.client.postprocess import (
    balance,
    drop_blank,
    indentation,
    repetition,
    scaffold,
    single_line,
    suffix_overlap,
)
from codeassist.client.postprocess.base import Filter, FilterContext

__all__ = ["FILTERS", "FilterContext", "run"]

FILTERS: tuple[tuple[str, Filter], ...] = (
    ("scaffold", scaffold.apply),
    ("suffix_overlap", suffix_overlap.apply),
    ("balance", balance.apply),
    ("indentation", indentation.apply),
    ("repetition", repetition.apply),
    ("single_line", single_line.apply),
    ("drop_blank", drop_blank.apply),
)


def run(text: str, ctx: FilterContext) -> str:
    for _, f in FILTERS:
        text = f(text, ctx)
        if not text:
            return ""
    return text
