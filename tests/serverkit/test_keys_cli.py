"""`server-kit keys add|list|revoke|rotate`: the key is shown once and only its hash is stored."""

from __future__ import annotations

import stat
import time

import pytest
from codeassist.serverkit.cli import main
from codeassist.serverkit.gateway.keys import KeyStore, load_pepper


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("CODEASSIST_GATEWAY_PEPPER", raising=False)
    return tmp_path


def run(capsys, store_dir, *args: str) -> tuple[int, str, str]:
    rc = main(
        [
            "keys",
            *args[:1],
            *args[1:],
            "--keys-file",
            str(store_dir / "keys.json"),
            "--pepper-file",
            str(store_dir / "pepper"),
        ]
    )
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_keys_lifecycle(capsys, store_dir):
    rc, out, _ = run(capsys, store_dir, "add", "alice", "--days", "30")
    assert rc == 0
    key = out.strip().splitlines()[-1]
    assert key.startswith("ca-")
    stored = (store_dir / "keys.json").read_text()
    assert key not in stored and key.split(".")[1] not in stored
    assert stat.S_IMODE((store_dir / "keys.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((store_dir / "pepper").stat().st_mode) == 0o600
    store = KeyStore(store_dir / "keys.json", load_pepper(store_dir / "pepper"))
    rec = store.verify(f"Bearer {key}")
    assert rec is not None and rec.user == "alice" and rec.expires > time.time() + 29 * 86400

    rc, out, _ = run(capsys, store_dir, "list")
    assert "alice" in out and "active" in out and key.split(".")[1] not in out

    rc, out, _ = run(capsys, store_dir, "rotate", "alice")
    new_key = out.strip().splitlines()[-1]
    assert rc == 0 and new_key != key
    store.reload()
    assert store.verify(f"Bearer {key}") is None and store.verify(f"Bearer {new_key}").user == "alice"

    rc, out, _ = run(capsys, store_dir, "revoke", "alice")
    assert rc == 0 and "revoked" in out
    store.reload()
    assert store.verify(f"Bearer {new_key}") is None
    rc, _, err = run(capsys, store_dir, "revoke", "alice")
    assert rc == 1 and "no active key" in err
    rc, out, _ = run(capsys, store_dir, "list")
    assert out.count("revoked") == 2


def test_expired_key_is_listed_as_expired(capsys, store_dir):
    _, out, _ = run(capsys, store_dir, "add", "bob", "--expires", "2001-01-01", "--max-class", "batch")
    key = out.strip().splitlines()[-1]
    store = KeyStore(store_dir / "keys.json", load_pepper(store_dir / "pepper"))
    assert store.verify(f"Bearer {key}") is None
    _, out, _ = run(capsys, store_dir, "list")
    assert "expired" in out and "batch" in out


def test_admin_key_is_stored_listed_and_kept_on_rotate(capsys, store_dir):
    _, out, _ = run(capsys, store_dir, "add", "root", "--admin")
    key = out.strip().splitlines()[-1]
    _, out, _ = run(capsys, store_dir, "add", "alice")
    store = KeyStore(store_dir / "keys.json", load_pepper(store_dir / "pepper"))
    assert store.verify(f"Bearer {key}").admin is True
    assert store.verify(f"Bearer {out.strip().splitlines()[-1]}").admin is False
    _, out, _ = run(capsys, store_dir, "list")
    rows = {ln.split()[1]: ln for ln in out.splitlines()[1:]}
    assert "admin" in out.splitlines()[0] and " yes " in rows["root"] and " no " in rows["alice"]
    _, out, _ = run(capsys, store_dir, "rotate", "root")
    store.reload()
    assert store.verify(f"Bearer {out.strip().splitlines()[-1]}").admin is True
