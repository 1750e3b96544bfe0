"""Golden cases for every post-processing filter (Tabby-style TOML, completion marked ├…┤)."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest
from codeassist.client import postprocess
from codeassist.client.postprocess import FilterContext, replace_range

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "postprocess"
CASES = sorted(FIXTURES.glob("*/*.toml"))


def split(marked: str) -> tuple[str, str, str]:
    prefix, _, rest = marked.partition("├")
    middle, sep, suffix = rest.partition("┤")
    assert sep, "a golden text needs ├ and ┤"
    return prefix, middle, suffix


def load(path: Path) -> tuple[dict, str, FilterContext, str]:
    """A golden case: its TOML, the completion between the marks, the filters' context around it, and the
    completion every filter should leave (the text itself when unchanged, "" when discarded)."""
    case = tomllib.loads(path.read_text(encoding="utf-8"))
    prefix, completion, suffix = split(case["case"]["text"])
    ctx = FilterContext(
        prefix=prefix,
        suffix=suffix,
        multiline=case.get("multiline", False),
        language=case.get("language", ""),
        scaffold=case.get("scaffold"),
        tab_size=case.get("tab_size"),
        insert_spaces=case.get("insert_spaces"),
    )
    expected = case["expected"]
    if expected.get("unchanged"):
        want = completion
    elif expected.get("discard"):
        want = ""
    else:
        e_prefix, want, e_suffix = split(expected["text"])
        assert (e_prefix, e_suffix) == (prefix, suffix), "expected text must keep the document around the marks"
    return case, completion, ctx, want


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_golden(path: Path) -> None:
    case, completion, ctx, want = load(path)
    name = path.parent.name
    if name == "pipeline":
        out = postprocess.run(completion, ctx)
    else:
        out = importlib.import_module(f"codeassist.client.postprocess.{name}").apply(completion, ctx)
    assert out == want, case["description"]
    if "replace" in case["expected"]:
        assert replace_range.suffix_chars(out, ctx) == case["expected"]["replace"], (
            "characters after the cursor replaced"
        )


# issue 16's classes: besides their own filter, each must come out the same through the whole chain
CHAIN = [
    p
    for p in CASES
    if p.stem.startswith(
        ("literal_", "loop_", "closers_", "after_code_", "continue_", "unit_", "echo_", "closer_", "replace_")
    )
]


@pytest.mark.parametrize("path", CHAIN, ids=[f"{p.parent.name}/{p.stem}" for p in CHAIN])
def test_golden_through_the_chain(path: Path) -> None:
    case, completion, ctx, want = load(path)
    out = postprocess.run(completion, ctx)
    assert out == want, case["description"]
    if "replace" in case["expected"]:
        assert replace_range.suffix_chars(out, ctx) == case["expected"]["replace"]


def test_every_filter_has_golden_cases() -> None:
    names = [name for name, _ in postprocess.FILTERS]
    for name in names:
        assert len(list((FIXTURES / name).glob("*.toml"))) >= 3, name
    # the named failure cases are covered
    have = {f"{p.parent.name}/{p.stem}" for p in CASES}
    assert len(CHAIN) >= 100  # issue 16: at least 100 cases across its classes
    assert {
        "balance/duplicated_closing_bracket",
        "suffix_overlap/repeats_next_line",
        "indentation/body_at_header_level",
    } <= have


def test_fixed_order() -> None:
    assert [n for n, _ in postprocess.FILTERS] == [
        "scaffold",
        "suffix_overlap",
        "balance",
        "indentation",
        "repetition",
        "single_line",
        "drop_blank",
    ]
    assert postprocess.__all__ == ["FILTERS", "FilterContext", "run"]
