"""`codeassist context FILE:LINE:COL` end to end through the real CLI, on a real git repo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from codeassist.context.cursor import cursor_offset
from codeassist.context.errors import PositionError


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Not the user's config, daemon or server: nothing answers, so the family is the CLI's stated fallback (qwen).
    private = root.parent / f"{root.name}-ca"
    env = {
        **os.environ,
        "CODEASSIST_CONFIG_DIR": str(private / "config"),
        "CODEASSIST_RUNTIME_DIR": str(private / "run"),
        "CODEASSIST_SERVER_URL": "http://127.0.0.1:9/v1",
    }
    return subprocess.run(
        [sys.executable, "-m", "codeassist.client.cli", "context", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_json_shape(make_repo) -> None:
    root = make_repo("python")
    text = (root / "shop/cart.py").read_text()
    line = text[: text.index("return apply_discount")].count("\n") + 1
    r = run(root, f"shop/cart.py:{line}:9", "--json", "--budget", "1024")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"prompt", "prefix", "suffix", "snippets", "tokens", "budget", "ms"} <= set(out)
    assert out["budget"] == 1024 and 0 < out["tokens"] <= 1024 and out["ms"] > 0
    assert out["prefix"].endswith("        ") and out["suffix"].startswith("return apply_discount")
    for s in out["snippets"]:
        assert set(s) == {"path", "text", "tokens", "reason"} and s["tokens"] > 0 and s["reason"]
    assert any(s["path"] == "shop/pricing.py" for s in out["snippets"])


def test_human_output_and_root_option(make_repo, tmp_path: Path) -> None:
    root = make_repo("python")
    r = run(tmp_path, "shop/cart.py:5:1", "--root", str(root))
    assert r.returncode == 0, r.stderr
    assert "tokens" in r.stdout and "why:" in r.stdout and "counter=" in r.stdout


@pytest.mark.parametrize(
    ("loc", "extra", "message"),
    [
        ("shop/cart.py:2:999", [], "past the end of line 2"),
        ("shop/cart.py:9999:1", [], "past the end of the file"),
        ("emoji.py:1:7", ["--utf16"], "inside a surrogate pair"),
        ("shop/cart.py:0:1", [], "1-based"),
        ("shop/cart.py", [], "expected FILE:LINE:COL"),
        ("missing.py:1:1", [], "cannot read"),
        ("shop/cart.py:1:1", ["--budget", "99"], "1024..4096"),
    ],
)
def test_bad_positions_give_clear_errors(make_repo, loc: str, extra: list[str], message: str) -> None:
    root = make_repo("python")
    (root / "emoji.py").write_text('s = "😀"\n')
    r = run(root, loc, *extra)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_cursor_offset() -> None:
    text = "ab\n😀x\r\nlast"
    assert cursor_offset(text, 1, 3) == 2
    assert cursor_offset(text, 2, 2) == 4
    assert cursor_offset(text, 2, 3, utf16=True) == 4
    assert cursor_offset(text, 3, 5) == len(text)
    with pytest.raises(PositionError, match="surrogate"):
        cursor_offset(text, 2, 2, utf16=True)
