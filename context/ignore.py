"""Which files the repo index reads: .gitignore / .git/info/exclude and the user's exclude globs, secret-looking
paths, vendored and build dirs, anything but a regular file (symlinks are never followed, FIFOs and devices never
opened), binaries and files over 1 MB are skipped, each with a logged reason."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

import pathspec
from codeassist.context.langs import EXTENSIONS
from codeassist.context.safe_read import SkipFile, read_beneath
from codeassist.context.secret_paths import SECRET_DIRS, is_secret_path

__all__ = ["MAX_FILE_BYTES", "VENDORED", "IgnoreRules", "content_reason", "path_reason", "skip_reason", "walk_repo"]

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1_000_000
VENDORED = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "bower_components",
        "vendor",
        "third_party",
        "third-party",
        "build",
        "dist",
        "target",
        "out",
        ".venv",
        "venv",
        "__pycache__",
        "site-packages",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".idea",
        ".vscode",
        ".next",
        ".gradle",
        "coverage",
        ".eggs",
    }
)


class IgnoreRules:
    """gitignore semantics per directory: patterns in ``d/.gitignore`` apply to paths below ``d``; plus the user's
    ``exclude`` globs (gitignore syntax, relative to the root), which also apply to open documents."""

    def __init__(self, root: Path, exclude: Sequence[str] = ()) -> None:
        self.root = root
        self.exclude = tuple(exclude)
        self._exclude = pathspec.GitIgnoreSpec.from_lines(self.exclude) if self.exclude else None
        self._specs: list[tuple[str, pathspec.PathSpec]] = []
        self._load("", ".git/info/exclude")
        self._load("", ".gitignore")
        self._loaded = {""}

    def _load(self, base: str, rel_file: str) -> None:
        try:  # the repo's own ignore files are untrusted too: a FIFO or a symlink to /dev/zero must not hang us
            data, _ = read_beneath(self.root, rel_file, MAX_FILE_BYTES)
        except (OSError, SkipFile):
            return
        spec = pathspec.GitIgnoreSpec.from_lines(data.decode("utf-8", errors="replace").splitlines())
        if spec.patterns:
            self._specs.append((base, spec))

    def enter(self, rel_dir: str, has_gitignore: bool = True) -> None:
        """Pick up ``rel_dir/.gitignore``; the walk says whether the directory lists one (no failed open)."""
        if rel_dir not in self._loaded:
            self._loaded.add(rel_dir)
            if has_gitignore:
                self._load(rel_dir, f"{rel_dir}/.gitignore" if rel_dir else ".gitignore")

    def excluded(self, rel: str, is_dir: bool = False) -> bool:
        return self._exclude is not None and self._exclude.match_file(rel + "/" if is_dir else rel)

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        parts = rel.split("/")
        for i in range(1, len(parts)):  # lazily pick up .gitignore files of parents (watcher path)
            self.enter("/".join(parts[:i]))
        for base, spec in self._specs:
            if base and not rel.startswith(base + "/"):
                continue
            sub = rel[len(base) + 1 :] if base else rel
            if spec.match_file(sub + "/" if is_dir else sub):
                return True
        return False


def path_reason(rel: str, rules: IgnoreRules) -> str | None:
    """The skip reasons that need no file system access."""
    parts = rel.split("/")
    if any(p in VENDORED for p in parts[:-1]):
        return "vendored/build directory"
    if os.path.splitext(parts[-1])[1].lower() not in EXTENSIONS:
        return "not a known source language"
    if is_secret_path(rel):
        return "looks like a secret"
    if rules.excluded(rel):
        return "excluded by configuration"
    if rules.ignored(rel):
        return "ignored by .gitignore"
    return None


def content_reason(data: bytes) -> str | None:
    """Why a file with these contents is not indexed (checked where the file is read anyway)."""
    return "binary (NUL bytes)" if b"\0" in data[:8192] else None


def stat_reason(st: os.stat_result) -> str | None:
    """Why a file with this ``lstat`` is not indexed: only regular files within the size cap are."""
    if stat.S_ISLNK(st.st_mode):
        return "symlink (not followed)"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size > MAX_FILE_BYTES:
        return f"too large ({st.st_size} bytes > {MAX_FILE_BYTES})"
    return None


def skip_reason(path: str | Path, rel: str, rules: IgnoreRules) -> str | None:
    """Why ``rel`` is not indexed, or None if it should be. One ``lstat``; the file is not read here: whoever
    reads it applies ``content_reason`` to the data (and re-checks the open file: see safe_read.py)."""
    reason = path_reason(rel, rules)
    if reason is not None:
        return reason
    try:
        return stat_reason(os.lstat(path))
    except OSError as exc:
        return f"unreadable ({exc.strerror})"


def walk_repo(root: Path, rules: IgnoreRules, skipped: dict[str, str], limit: int | None = None) -> Iterator[str]:
    """Relative paths of the files to index; skipped ones land in ``skipped`` with their reason. Past ``limit``
    files the rest are only listed as "index full" (no stat). Symlinked directories are not entered."""
    n = 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        rules.enter(rel_dir, ".gitignore" in filenames)
        keep = []
        for d in sorted(dirnames):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if (
                d in VENDORED
                or d.lower() in SECRET_DIRS
                or rules.excluded(rel, is_dir=True)
                or rules.ignored(rel, is_dir=True)
                or os.path.islink(os.path.join(dirpath, d))
            ):
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if limit is not None and n >= limit:
                reason = path_reason(rel, rules) or f"index full ({limit} files)"
            else:
                reason = skip_reason(os.path.join(dirpath, name), rel, rules)
            if reason is None:
                n += 1
                yield rel
            elif reason != "not a known source language":
                _record(skipped, rel, reason)


_LOUD = ("binary", "too large", "unreadable", "not a regular file", "looks like a secret")


def _record(skipped: dict[str, str], rel: str, reason: str) -> None:
    if len(skipped) < 10_000:
        skipped[rel] = reason
    log.log(logging.INFO if reason.startswith(_LOUD) else logging.DEBUG, "skip %s: %s", rel, reason)
