"""An untrusted (cloned) repository cannot make the indexer read outside its root or hang it: symlinked files and
directories are never followed, only regular files are read (FIFOs and devices are skipped), reads are bounded.

Each test builds a real git repository in a tmp dir; the "outside" is a sibling directory standing for $HOME.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from codeassist.context.engine import ContextEngine
from codeassist.context.ignore import IgnoreRules, walk_repo
from codeassist.context.index import RepoIndex
from codeassist.context.templates import template_for
from codeassist.context.watch import IndexWatcher

from .conftest import git

MARKER = "LEAKED_KEY_MARKER"
PRIVATE_KEY = (
    f"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ {MARKER}\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
# The file the victim completes in: it shares the key's words, so "similar code" ranks the key first.
BAIT = "# paste the OPENSSH PRIVATE KEY here: BEGIN ... END\nkey = load_key('OPENSSH PRIVATE KEY')\n"


def _home(tmp_path: Path) -> Path:
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "id_ed25519").write_text(PRIVATE_KEY)
    return ssh.parent


def _finishes(fn: Callable[[], object], seconds: float = 10.0) -> bool:
    """Run ``fn`` on a daemon thread; False if it is still running (hung) after ``seconds``."""
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(seconds)
    return not t.is_alive()


def _prompt_for(root: Path, rel: str, text: str) -> str:
    engine = ContextEngine(sources=("similar",))
    try:
        engine.add_root(root, background=False, watch=False)
        (root / rel).write_text(text)
        return engine.build(text, len(text), template_for("qwen"), path=root / rel).prompt
    finally:
        engine.close()


def test_symlinked_file_to_a_private_key_never_enters_a_prompt(make_repo, tmp_path: Path) -> None:
    root = make_repo("python")
    home = _home(tmp_path)
    os.symlink(os.path.relpath(home / ".ssh" / "id_ed25519", root), root / "deploy_keys.py")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "evil")  # the symlink is part of the clone
    prompt = _prompt_for(root, "setup_keys.py", BAIT)
    assert MARKER not in prompt


@pytest.mark.parametrize("pool", [False, True], ids=["in-process", "worker-pool"])
def test_symlinks_are_skipped_in_and_out_of_the_root(
    make_repo, tmp_path: Path, pool: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Choice: a symlink is never followed, wherever it points; a target inside the root is indexed under its own
    path (so nothing is lost or indexed twice)."""
    from codeassist.context import index as index_mod

    root = make_repo("python")
    home = _home(tmp_path)
    (home / "project").mkdir()
    (home / "project" / "helpers.py").write_text(f"def helper():\n    return '{MARKER}'\n")
    os.symlink(home / ".ssh" / "id_ed25519", root / "keys.py")
    os.symlink(home / "project", root / "linked")
    os.symlink(root / "shop" / "pricing.py", root / "alias.py")
    if pool:
        monkeypatch.setattr(index_mod, "POOL_MIN_FILES", 1)
    index = RepoIndex(root, workers=2 if pool else 1)
    index.index_all()
    assert set(index.files) == {"shop/__init__.py", "shop/cart.py", "shop/pricing.py"}
    assert index.skipped["keys.py"].startswith("symlink") and index.skipped["alias.py"].startswith("symlink")
    assert "helper" not in index.symbols


def test_file_swapped_for_a_symlink_after_indexing_is_not_read(make_repo, tmp_path: Path) -> None:
    """The "similar code" text is read at prompt time: the file may have become a symlink since it was indexed."""
    root = make_repo("python")
    pricing = root / "shop" / "pricing.py"
    stolen = tmp_path / "home" / "stolen.py"
    stolen.parent.mkdir()
    stolen.write_text(pricing.read_text().replace("TAX_RATE", f"TAX_RATE  # {MARKER}"))
    engine = ContextEngine(sources=("similar",))
    engine.add_root(root, background=False, watch=False)
    pricing.unlink()
    os.symlink(stolen, pricing)
    text = "def checkout(book: PriceBook, pct):\n    return apply_discount(book.price_of(code) * TAX_RATE, pct)\n"
    parts = engine.build(text, len(text), template_for("qwen"), path=root / "report.py")
    assert MARKER not in parts.prompt


def test_watcher_does_not_index_through_a_symlinked_directory(make_repo, tmp_path: Path) -> None:
    """A file changing below a symlinked directory (which the OS watch may follow) is not read; a change inside the
    root, made after it, shows the watcher has handled both."""
    root = make_repo("python")
    outside = tmp_path / "home" / "project"
    outside.mkdir(parents=True)
    os.symlink(outside, root / "linked")
    index = RepoIndex(root)
    index.index_all()
    watcher = IndexWatcher(index).start()
    try:
        assert watcher.ready.wait(5)
        (outside / "helpers.py").write_text(f"def leaked_helper():\n    return '{MARKER}'\n")
        index.index_file("linked/helpers.py")  # what the watcher does for an event on that path
        target = root / "shop" / "pricing.py"
        target.write_text(target.read_text() + "\n\ndef freshly_added(n: int) -> int:\n    return n\n")
        assert _wait(lambda: "freshly_added" in index.symbols)
        assert "leaked_helper" not in index.symbols and "linked/helpers.py" not in index.files
    finally:
        watcher.stop()


def _wait(cond: Callable[[], bool], seconds: float = 5.0) -> bool:
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            if cond():
                done.set()
            else:
                done.wait(0.01)

    _finishes(poll, seconds)
    done.set()
    return cond()


def test_walk_skips_fifos_devices_and_symlinks(make_repo) -> None:
    root = make_repo("python")
    os.mkfifo(root / "a_pipe.py")
    os.symlink("/dev/zero", root / "z_zero.py")
    skipped: dict[str, str] = {}
    rels = list(walk_repo(root, IgnoreRules(root), skipped))
    assert "a_pipe.py" not in rels and "z_zero.py" not in rels
    assert skipped["a_pipe.py"] == "not a regular file" and skipped["z_zero.py"].startswith("symlink")


def test_fifo_and_dev_zero_do_not_hang_the_indexer(make_repo) -> None:
    root = make_repo("python")
    os.mkfifo(root / "a_pipe.py")
    os.symlink("/dev/zero", root / "z_zero.py")
    index = RepoIndex(root, workers=1)
    assert _finishes(index.index_all), "the cold index hung on a FIFO"
    assert index.state == "ready" and "shop/cart.py" in index.files
    # The watcher's path (one file, no walk before it) must not hang either.
    assert _finishes(lambda: index.index_file("a_pipe.py")) and _finishes(lambda: index.index_file("z_zero.py"))
    assert "a_pipe.py" not in index.files and "z_zero.py" not in index.files


def test_fifo_gitignore_does_not_hang(make_repo) -> None:
    root = make_repo("python")
    os.mkfifo(root / ".gitignore")
    os.mkfifo(root / "shop" / ".gitignore")
    holder: list[RepoIndex] = []

    def build() -> None:
        index = RepoIndex(root, workers=1)
        index.index_all()
        holder.append(index)

    assert _finishes(build), "reading a FIFO .gitignore hung"
    assert "shop/cart.py" in holder[0].files


def test_files_over_the_size_cap_are_skipped_not_read(make_repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Choice: a file over the cap is skipped whole (a truncated file would index half a definition)."""
    from codeassist.context import ignore

    root = make_repo("python")
    monkeypatch.setattr(ignore, "MAX_FILE_BYTES", 100)
    index = RepoIndex(root, workers=1)
    index.index_all()
    assert index.skipped["shop/cart.py"].startswith("too large")
    (root / "shop" / "small.py").write_text("def small(): pass\n")
    assert index.index_file("shop/small.py") and not index.index_file("shop/cart.py")
