"""`server-kit keys add|rotate` print the key alone on stdout (everything else on stderr), so
`server-kit keys add carol | codeassist login URL --key-stdin` gets the key — it is shown only once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from codeassist.serverkit.cli import main
from codeassist.serverkit.gateway.keys import KeyStore, load_pepper


@pytest.fixture
def store_args(tmp_path, monkeypatch) -> list[str]:
    monkeypatch.delenv("CODEASSIST_GATEWAY_PEPPER", raising=False)
    return ["--keys-file", str(tmp_path / "keys.json"), "--pepper-file", str(tmp_path / "pepper")]


@pytest.mark.parametrize("extra", [[], ["--admin", "--days", "30"]])
def test_keys_add_prints_only_the_key_on_stdout(capsys, store_args, tmp_path, extra):
    assert main(["keys", "add", "carol", *extra, *store_args]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and out.startswith("ca-"), out
    key = out.strip()
    assert "carol" in err and "Shown once" in err  # the description is still there, on stderr
    rec = KeyStore(tmp_path / "keys.json", load_pepper(tmp_path / "pepper")).verify(f"Bearer {key}")
    assert rec is not None and rec.user == "carol"


def test_keys_rotate_prints_only_the_key_on_stdout(capsys, store_args):
    main(["keys", "add", "carol", *store_args])
    old = capsys.readouterr().out.strip()
    assert main(["keys", "rotate", "carol", *store_args]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and out.strip() != old and out.startswith("ca-") and "revoked" in err


def test_keys_add_through_a_pipe_is_one_line(store_args):
    """As a shell pipe sees it: the real CLI in a subprocess, stdout captured apart from stderr."""
    env = {k: v for k, v in os.environ.items() if k != "CODEASSIST_GATEWAY_PEPPER"}
    proc = subprocess.run(
        [sys.executable, "-m", "codeassist.serverkit.cli", "keys", "add", "carol", *store_args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert proc.stdout.splitlines() == [proc.stdout.strip()] and proc.stdout.startswith("ca-")
    assert "carol" in proc.stderr
