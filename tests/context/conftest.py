from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "context"


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True, capture_output=True
    )


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[str], Path]:
    """A real git repository holding a copy of ``tests/fixtures/context/<name>``."""

    def make(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(FIXTURES / name, root)
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "fixture")
        return root

    return make


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Real files under ``root`` (parents made), ``root`` returned."""
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def build_at_marker(root: Path, rel: str, text: str, sources: tuple[str, ...] = ("imports", "symbols")) -> dict:
    """Write ``text`` to ``rel`` without its ``@@`` marker and build a qwen prompt for the cursor there. By default
    with the import-driven sources only: similar-code retrieval would find any file sharing words with this one,
    which says nothing about the imports."""
    from codeassist.context.engine import ContextEngine
    from codeassist.context.templates import template_for

    offset = text.index("@@")
    text = text.replace("@@", "")
    write_tree(root, {rel: text})
    engine = ContextEngine(budget=2048, sources=sources)
    try:
        engine.add_root(root, background=False, watch=False)
        parts = engine.build(text, offset, template_for("qwen"), path=root / rel)
    finally:
        engine.close()
    return {"prompt": parts.prompt, "snippets": parts.snippets}
