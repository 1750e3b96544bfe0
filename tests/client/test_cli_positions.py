"""`codeassist complete` and `codeassist context` read FILE:LINE:COL the same way: one parser, 1-based messages,
exit status 2 for a location that does not exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

TEXT = 'def add(a, b):\n    return a + b\ns = "😀x"\n'


@pytest.fixture
def env(daemon_env_factory: Any) -> Any:
    # Nothing listens there: a bad location must be refused before any daemon or server is asked.
    return daemon_env_factory(f"http://127.0.0.1:{free_port()}/v1")


def _error_of(stderr: str) -> str:
    """The message without the command's own prefix (``codeassist complete:`` / ``codeassist context:``)."""
    line = stderr.strip().splitlines()[-1]
    return line.split(": ", 1)[1]


@pytest.mark.parametrize(
    ("where", "extra", "expected"),
    [
        ("99:1", [], "line 99 is past the end of the file (4 lines)"),
        ("0:1", [], "line 0 does not exist (lines and columns are 1-based)"),
        ("2:0", [], "column 0 does not exist (lines and columns are 1-based)"),
        ("2:200", [], "column 200 is past the end of line 2 (it has 16 characters: columns 1 to 17)"),
        ("3:7", ["--utf16"], "column 7 on line 3 falls inside a surrogate pair (UTF-16)"),
        ("3:11", ["--utf16"], "column 11 is past the end of line 3 (it has 9 UTF-16 units: columns 1 to 10)"),
    ],
)
def test_complete_and_context_say_the_same_1_based_thing(
    env: Any, tmp_path: Path, where: str, extra: list[str], expected: str
) -> None:
    path = tmp_path / "a.py"
    path.write_text(TEXT)
    loc = f"{path}:{where}"
    complete = env.run("complete", loc, *extra)
    context = env.run("context", loc, "--root", str(tmp_path), *extra)
    for r in (complete, context):
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
        assert _error_of(r.stderr) == f"{loc}: {expected}"
    for lsp_word in ("character 199", "character -1", "utf-32", "negative", "line 98", "line -1"):
        assert lsp_word not in complete.stderr
    assert not env.socket.exists()  # refused up front: no daemon was started for it


@pytest.mark.parametrize("spec", ["a.py", "a.py:x:1", ":1:1"])
def test_malformed_location_is_the_same_error_in_both(env: Any, tmp_path: Path, spec: str) -> None:
    complete = env.run("complete", spec)
    context = env.run("context", spec, "--root", str(tmp_path))
    assert complete.returncode == context.returncode == 2
    assert _error_of(complete.stderr) == _error_of(context.stderr) == f"expected FILE:LINE:COL (1-based), got {spec!r}"


def test_unreadable_file_and_json_errors(env: Any, tmp_path: Path) -> None:
    missing = tmp_path / "missing.py"
    for args in (("complete", f"{missing}:1:1"), ("context", f"{missing}:1:1", "--root", str(tmp_path))):
        r = env.run(*args)
        assert r.returncode == 2 and f"cannot read {missing}" in r.stderr
    path = tmp_path / "a.py"
    path.write_text(TEXT)
    for cmd in ("complete", "context"):
        r = env.run(cmd, f"{path}:9:1", "--json")
        assert r.returncode == 2
        assert json.loads(r.stderr)["error"] == f"{path}:9:1: line 9 is past the end of the file (4 lines)"


def test_a_good_location_completes_with_the_same_column_rules(
    daemon_env_factory: Any, standin: Any, tmp_path: Path
) -> None:
    env = daemon_env_factory(standin.base_url)
    path = tmp_path / "a.py"
    path.write_text(TEXT)
    r = env.run("complete", f"{path}:3:8", "--utf16", "--json")  # just after the emoji (2 UTF-16 units)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["text"]
    assert standin.stats.requests[-1]["prompt"].endswith('s = "😀')
