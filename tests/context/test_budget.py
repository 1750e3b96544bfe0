"""The prompt never exceeds the budget (property test over random files, cursors, budgets, families)."""

from __future__ import annotations

from pathlib import Path

import pytest
from codeassist.context.budget import Split, check_budget
from codeassist.context.engine import ContextEngine
from codeassist.context.errors import PositionError
from codeassist.context.templates import FAMILIES, template_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import FIXTURES

FILES = sorted(p for p in FIXTURES.rglob("*") if p.is_file())
_ENGINE = ContextEngine()
_ENGINE.add_root(FIXTURES, background=False, watch=False)

code_text = st.one_of(
    st.sampled_from(FILES).map(lambda p: p.read_text() * 30),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=20_000),
    st.lists(
        st.sampled_from(["def f(x):", "    return x", "{", "}", "if (a) {", "é😀", "\t", "", "x" * 300]), max_size=2000
    ).map("\n".join),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=code_text,
    where=st.floats(0, 1),
    budget=st.integers(1024, 4096),
    family=st.sampled_from(sorted(FAMILIES)),
    suffix=st.sampled_from([".py", ".ts", ".go", ".rs", ".java", ".c", ".cpp", ".txt"]),
)
def test_budget_never_exceeded(text: str, where: float, budget: int, family: str, suffix: str) -> None:
    offset = int(len(text) * where)
    if 0 < offset < len(text) and "\udc00" <= text[offset] <= "\udfff":
        offset += 1
    parts = _ENGINE.build(text, offset, template_for(family), path=FIXTURES / f"random{suffix}", budget=budget)
    assert parts.tokens <= budget
    assert parts.tokens == _ENGINE.counter.count(parts.prompt)
    assert text[:offset].endswith(parts.prefix[-50:]) if parts.prefix else True
    if template_for(family).fim:
        assert text[offset:].startswith(parts.suffix)


def test_budget_limits_and_split() -> None:
    assert check_budget(2048) == 2048
    for bad in (1023, 4097):
        with pytest.raises(ValueError, match=r"1024\.\.4096"):
            check_budget(bad)
    with pytest.raises(ValueError):
        Split(0.5, 0.5, 0.5)


def test_split_is_configurable() -> None:
    text = (FIXTURES / "python/shop/cart.py").read_text() * 60
    offset = len(text) // 2
    wide = ContextEngine(split=Split(0.85, 0.05, 0.10)).build(text, offset, template_for("qwen"), path="a.py")
    narrow = ContextEngine(split=Split(0.30, 0.40, 0.30)).build(text, offset, template_for("qwen"), path="a.py")
    assert len(wide.prefix) > len(narrow.prefix) and len(wide.suffix) < len(narrow.suffix)


def test_bad_offsets_are_clear_errors() -> None:
    with pytest.raises(PositionError, match="outside the document"):
        _ENGINE.build("abc", 4, template_for("qwen"))
    with pytest.raises(PositionError, match="surrogate pair"):
        _ENGINE.build("a\ud83d\ude00b", 2, template_for("qwen"))
    assert Path(__file__).exists()
