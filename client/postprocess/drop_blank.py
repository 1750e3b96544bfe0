"""Drop empty or whitespace-only results (last in the chain).

Never: change a completion that has any non-blank character.
"""

from __future__ import annotations

from codeassist.client.postprocess.base import FilterContext

__all__ = ["apply"]


def apply(text: str, ctx: FilterContext) -> str:
    return text if text.strip() else ""
