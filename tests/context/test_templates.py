"""FIM renderers produce the exact documented strings for each family."""

from __future__ import annotations

import pytest
from codeassist.context.templates import FAMILIES, detect_family, render, template_for

PRE, SUF = "def f(x):\n    return {", "}\n"


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("qwen", "<|fim_prefix|>def f(x):\n    return {<|fim_suffix|>}\n<|fim_middle|>"),
        ("starcoder2", "<fim_prefix>def f(x):\n    return {<fim_suffix>}\n<fim_middle>"),
        ("deepseek", "<｜fim▁begin｜>def f(x):\n    return {<｜fim▁hole｜>}\n<｜fim▁end｜>"),
        ("codellama", "<PRE> def f(x):\n    return { <SUF>}\n <MID>"),
        ("plain", "def f(x):\n    return {"),
    ],
)
def test_golden_strings(family: str, expected: str) -> None:
    assert render(family, PRE, SUF) == expected


def test_qwen_stops_are_the_documented_set() -> None:
    assert set(template_for("qwen").stop) == {
        "<|endoftext|>",
        "<|fim_pad|>",
        "<|repo_name|>",
        "<|file_sep|>",
        "<|im_start|>",
        "<|im_end|>",
    }
    assert template_for("codellama").stop == ("<EOT>",)


def test_braces_and_placeholders_in_code_are_literal() -> None:
    tricky = "s = '{prefix} {suffix} {0}'"
    assert render("qwen", tricky, tricky) == f"<|fim_prefix|>{tricky}<|fim_suffix|>{tricky}<|fim_middle|>"


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("Qwen/Qwen2.5-Coder-7B", "qwen"),
        ("qwen2.5-coder-32b-instruct-awq", "qwen"),
        ("bigcode/starcoder2-15b", "starcoder2"),
        ("deepseek-ai/deepseek-coder-6.7b-base", "deepseek"),
        ("codellama/CodeLlama-13b-hf", "codellama"),
        ("gemma-3-270m", "plain"),
        ("meta-llama/Llama-3.1-8B", "plain"),
    ],
)
def test_family_from_served_model_name(name: str, family: str) -> None:
    assert detect_family(name) == family


def test_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown model family 'gpt'"):
        template_for("gpt")
    assert "plain" in FAMILIES
