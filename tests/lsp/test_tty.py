"""`codeassist lsp` run by hand in a terminal says what it is for instead of waiting silently."""

from __future__ import annotations

import os
import pty
import subprocess
import sys


def test_lsp_in_a_terminal_says_it_is_for_editors() -> None:
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "codeassist.client.cli", "lsp"],
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == 2
    assert proc.stdout == ""  # stdout stays clean for LSP frames
    assert "Language Server Protocol" in proc.stderr and "codeassist demo" in proc.stderr
