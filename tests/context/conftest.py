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
