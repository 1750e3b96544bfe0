"""Which files the repo index reads: .gitignore / .git/info/exclude, vendored and build dirs, binaries and
files over 1 MB are skipped, each with a logged reason."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pathspec
from codeassist.context.langs import EXTENSIONS

__all__ = ["MAX_FILE_BYTES", "VENDORED", "IgnoreRules", "content_reason", "skip_reason", "walk_repo"]

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1_000_000
VENDORED = frozenset({
    ".git", ".hg", ".svn", "node_modules", "bower_components", "vendor", "third_party", "third-party", "build",
    "dist", "target", "out", ".venv", "venv", "__pycache__", "site-packages", ".tox", ".nox", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".idea", ".vscode", ".next", ".gradle", "coverage", ".eggs",
})


class IgnoreRules:
    """gitignore semantics per directory: patterns in ``d/.gitignore`` apply to paths below ``d``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._specs: list[tuple[str, pathspec.PathSpec]] = []
        exclude = root / ".git" / "info" / "exclude"
        self._load("", exclude)
        self._load("", root / ".gitignore")
        self._loaded = {""}

    def _load(self, base: str, file: Path) -> None:
        try:
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        if spec.patterns:
            self._specs.append((base, spec))

    def enter(self, rel_dir: str) -> None:
        if rel_dir not in self._loaded:
            self._loaded.add(rel_dir)
            self._load(rel_dir, self.root / rel_dir / ".gitignore")

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        parts = rel.split("/")
        for i in range(1, len(parts)):  # lazily pick up .gitignore files of parents (watcher path)
            self.enter("/".join(parts[:i]))
        for base, spec in self._specs:
            if base and not rel.startswith(base + "/"):
                continue
            sub = rel[len(base) + 1:] if base else rel
            if spec.match_file(sub + "/" if is_dir else sub):
                return True
        return False


def _cheap_reason(rel: str, rules: IgnoreRules) -> str | None:
    """The skip reasons that need no file system access."""
    parts = rel.split("/")
    if any(p in VENDORED for p in parts[:-1]):
        return "vendored/build directory"
    if os.path.splitext(parts[-1])[1].lower() not in EXTENSIONS:
        return "not a known source language"
    if rules.ignored(rel):
        return "ignored by .gitignore"
    return None


def content_reason(data: bytes) -> str | None:
    """Why a file with these contents is not indexed (checked where the file is read anyway)."""
    return "binary (NUL bytes)" if b"\0" in data[:8192] else None


def skip_reason(path: str | Path, rel: str, rules: IgnoreRules, content: bool = True) -> str | None:
    """Why ``rel`` is not indexed, or None if it should be; ``content=False`` leaves the read of the file's head
    (binary check) to the caller, which applies ``content_reason`` to the data it reads."""
    reason = _cheap_reason(rel, rules)
    if reason is not None:
        return reason
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if size > MAX_FILE_BYTES:
        return f"too large ({size} bytes > {MAX_FILE_BYTES})"
    if not content:
        return None
    try:
        with open(path, "rb") as fh:
            if b"\0" in fh.read(8192):
                return "binary (NUL bytes)"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    return None


def walk_repo(root: Path, rules: IgnoreRules, skipped: dict[str, str], limit: int | None = None) -> Iterator[str]:
    """Relative paths of the files to index; skipped ones land in ``skipped`` with their reason. Past ``limit``
    files the rest are only listed as "index full" (no stat). Files are not read here: whoever indexes a file
    applies ``content_reason`` to its data."""
    n = 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        rules.enter(rel_dir)
        keep = []
        for d in sorted(dirnames):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if d in VENDORED or rules.ignored(rel, is_dir=True) or os.path.islink(os.path.join(dirpath, d)):
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if limit is not None and n >= limit:
                reason = _cheap_reason(rel, rules) or f"index full ({limit} files)"
            else:
                reason = skip_reason(os.path.join(dirpath, name), rel, rules, content=False)
            if reason is None:
                n += 1
                yield rel
            elif reason != "not a known source language":
                _record(skipped, rel, reason)


def _record(skipped: dict[str, str], rel: str, reason: str) -> None:
    if len(skipped) < 10_000:
        skipped[rel] = reason
    level = logging.INFO if reason.startswith(("binary", "too large", "unreadable")) else logging.DEBUG
    log.log(level, "skip %s: %s", rel, reason)
