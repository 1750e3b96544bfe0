"""What the real-editor tests share: the file they complete in (a project with ``fib.py``) and the wait they poll
the editor with."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIB = '''def fibonacci(n):
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
'''


def wait_until(pred: Callable[[], Any], timeout: float, message: Callable[[], str] | str, every: float = 0.1) -> Any:
    """``pred()``'s first true value, polled every ``every`` seconds; after ``timeout`` an AssertionError saying
    ``message`` (a callable: called then, for the state at that moment)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(every)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git project holding ``fib.py`` (:data:`FIB`)."""
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    (root / "fib.py").write_text(FIB)
    return root
