"""The simplest prompt: a character window of prefix and suffix around the cursor.

Used when the full context engine is unavailable; cuts at line boundaries so the model never sees a
half line at the window's edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codeassist.context.templates import Template

__all__ = ["PromptParts", "simple_window"]


@dataclass
class PromptParts:
    prompt: str
    prefix: str
    suffix: str
    snippets: list[dict[str, object]] = field(default_factory=list)
    tokens: int = 0
    budget: int = 0
    token_counter: str = "chars/4"
    ms: float = 0.0
    header: str | None = None  # the start of the snippet header lines in the prompt (None: it has none)


def simple_window(
    text: str, offset: int, template: Template, prefix_chars: int = 6000, suffix_chars: int = 1500
) -> PromptParts:
    start = max(0, offset - prefix_chars)
    if start > 0:
        nl = text.find("\n", start, offset)
        start = nl + 1 if nl >= 0 else start
    end = min(len(text), offset + suffix_chars)
    if end < len(text):
        nl = text.rfind("\n", offset, end)
        end = nl + 1 if nl >= 0 else end
    prefix, suffix = text[start:offset], text[offset:end]
    prompt = template.render(prefix, suffix)
    return PromptParts(prompt=prompt, prefix=prefix, suffix=suffix if template.fim else "", tokens=len(prompt) // 4)
