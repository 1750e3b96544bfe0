"""FIM prompt templates per model family.

vLLM rejects the OpenAI ``suffix`` field, so fill-in-the-middle has to be rendered into the prompt
on the client. Each family has its own sentinel tokens and stop strings; the table is pure data so the
golden-string tests can check it exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FAMILIES", "Template", "detect_family", "render", "template_for"]


@dataclass(frozen=True)
class Template:
    family: str
    fim: bool
    # `{prefix}` and `{suffix}` are the only fields; the rest is literal text.
    pattern: str
    stop: tuple[str, ...]
    # How a cross-file snippet is introduced when the family has a repo-level format.
    file_sep: str | None = None

    def render(self, prefix: str, suffix: str) -> str:
        if not self.fim:
            return prefix
        # str.replace, not str.format: code is full of braces.
        head, _, tail = self.pattern.partition("{prefix}")
        mid, _, end = tail.partition("{suffix}")
        return f"{head}{prefix}{mid}{suffix}{end}"


FAMILIES: dict[str, Template] = {
    "qwen": Template(
        family="qwen",
        fim=True,
        pattern="<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
        stop=("<|endoftext|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<|im_start|>", "<|im_end|>"),
        file_sep="<|file_sep|>",
    ),
    "starcoder2": Template(
        family="starcoder2",
        fim=True,
        pattern="<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>",
        stop=("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
        file_sep="<file_sep>",
    ),
    "deepseek": Template(
        family="deepseek",
        fim=True,
        pattern="<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>",
        stop=("<｜end▁of▁sentence｜>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "<|EOT|>"),
    ),
    "codellama": Template(
        family="codellama",
        fim=True,
        pattern="<PRE> {prefix} <SUF>{suffix} <MID>",
        stop=("<EOT>",),
    ),
    "plain": Template(family="plain", fim=False, pattern="{prefix}", stop=()),
}

# Order matters: the first pattern that matches the served model's name wins.
_NAME_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"qwen.*coder|coder.*qwen", "qwen"),
    (r"starcoder2?", "starcoder2"),
    (r"deepseek.*coder", "deepseek"),
    (r"code-?llama", "codellama"),
)


def detect_family(model_name: str) -> str:
    """Family from a served model's name (``/v1/models``); unknown names get plain prefix completion."""
    name = model_name.lower()
    for pattern, family in _NAME_PATTERNS:
        if re.search(pattern, name):
            return family
    return "plain"


def template_for(family: str) -> Template:
    try:
        return FAMILIES[family]
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise ValueError(f"unknown model family {family!r}; known: {known}") from None


def render(family: str, prefix: str, suffix: str) -> str:
    return template_for(family).render(prefix, suffix)
