"""Post-processing: small pure filters run in a fixed order on every completion.

The order matters: the prompt's scaffolding is cut first (nothing after it is the user's code), then the
suffix overlap (so later filters do not see text the suffix already has); ``drop_blank`` goes last (any
earlier filter may have emptied the completion).
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
