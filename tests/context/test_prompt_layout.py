"""A prompt a slow server can cache: with ``region_lines`` the prompt keeps its start (the cross-file part and
where the file's prefix begins) while the cursor moves down the file, so each prompt extends the last one."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from codeassist.context.engine import ContextEngine
from codeassist.context.templates import template_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def opened(tmp_path: Path) -> tuple[ContextEngine, str, str]:
    """A real repo (this one's client/ package) indexed, and its engine.py open as a document."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "client", root / "client", ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".git").mkdir()
    engine = ContextEngine()
    engine.add_root(root, background=False, watch=False)
    path = root / "client" / "engine.py"
    text = path.read_text()
    uri = path.as_uri()
    engine.open_document(uri, text, "python")
    return engine, uri, text


def line_ends(text: str, first: int, count: int) -> list[int]:
    starts = [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    return [starts[n] - 1 for n in range(first, first + count)]


def prompts(engine: ContextEngine, uri: str, text: str, region_lines: int, budget: int) -> list[str]:
    return [
        engine.build(
            text, end, template_for("plain"), uri=uri, language="python", budget=budget, region_lines=region_lines
        ).prompt
        for end in line_ends(text, 160, 16)
    ]


def extended(seq: list[str]) -> int:
    """How many consecutive prompts begin with the whole previous one (all the server's cache holds)."""
    return sum(b.startswith(a) for a, b in itertools.pairwise(seq))


@pytest.mark.parametrize("budget", [384, 1024])
def test_on_a_slow_server_each_prompt_extends_the_last_as_the_cursor_moves_down(opened, budget) -> None:
    engine, uri, text = opened
    seq = prompts(engine, uri, text, 16, budget)
    # The prefix starts on a grid of at most half the window's lines: over 16 lines it moves at most twice (the
    # cross-file part with it, at most); every other step extends the previous prompt.
    assert extended(seq) >= len(seq) - 3


def test_per_line_layout_moves_its_start_with_the_cursor(opened) -> None:
    """The fast-server layout (the window follows the cursor line by line): what the grid is for."""
    engine, uri, text = opened
    assert extended(prompts(engine, uri, text, 1, 384)) < 8


def test_region_prompt_stays_within_the_budget(opened) -> None:
    engine, uri, text = opened
    for end in line_ends(text, 100, 40):
        parts = engine.build(text, end, template_for("qwen"), uri=uri, language="python", budget=512, region_lines=16)
        assert parts.tokens <= 512
        assert text[:end].endswith(parts.prefix[-200:])
