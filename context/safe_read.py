"""Reading files of an untrusted repository: regular files only, no symlink followed, bounded.

A cloned repository may hold a symlink to ``~/.ssh/id_ed25519`` or ``/dev/zero``, a FIFO (an open blocks
forever) or a huge file. Files are opened with ``O_NOFOLLOW`` (a symlink fails to open) and ``O_NONBLOCK`` (a
FIFO opens at once), then ``fstat`` on the open descriptor says what was opened (no race with a later swap) and
how big it is; the read stops at the cap.

``read_regular`` trusts the directories above the file (the cold walk has just listed them without following
symlinked ones); ``read_beneath`` trusts nothing below the root: it opens each directory component with
``O_NOFOLLOW`` relative to the previous one (for paths that come from elsewhere: watcher events, prompt time).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["SkipFile", "read_beneath", "read_regular"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# O_NOCTTY: a terminal device never becomes the daemon's controlling terminal.
_FILE_FLAGS = (
    os.O_RDONLY
    | _NOFOLLOW
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_DIR_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_SYMLINK_ERRNOS = {errno.ELOOP, errno.EMLINK}  # what O_NOFOLLOW on a symlink gives (Linux, the BSDs)
_DIR_FD = _NOFOLLOW != 0 and os.open in os.supports_dir_fd


class SkipFile(Exception):
    """The file exists but is not read; ``reason`` says why (for the index's skip list)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _open(name: str, flags: int, dir_fd: int | None = None) -> int:
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _SYMLINK_ERRNOS:
            raise SkipFile("symlink (not followed)") from None
        raise


def _read_fd(fd: int, limit: int) -> tuple[bytes, float]:
    """(contents, mtime) of the regular file open on ``fd``, which this closes."""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SkipFile("not a regular file")
        if st.st_size > limit:
            raise SkipFile(f"too large ({st.st_size} bytes > {limit})")
        parts: list[bytes] = []
        total, want = 0, st.st_size + 1  # one read for the whole file, one more to see the end
        while block := os.read(fd, want):
            parts.append(block)
            total += len(block)
            if total > limit:  # grew while being read
                raise SkipFile(f"too large (over {limit} bytes)")
            want = min(limit + 1 - total, 1 << 16)
        return b"".join(parts), st.st_mtime
    finally:
        os.close(fd)


def read_regular(path: str | Path, limit: int) -> tuple[bytes, float]:
    """(contents, mtime) of ``path`` if it is a regular file of at most ``limit`` bytes and not a symlink;
    raises ``SkipFile`` (with the reason) or ``OSError`` (gone, unreadable)."""
    if not _NOFOLLOW and os.path.islink(path):  # Windows: no O_NOFOLLOW
        raise SkipFile("symlink (not followed)")
    return _read_fd(_open(os.fspath(path), _FILE_FLAGS), limit)


def read_beneath(root: Path, rel: str, limit: int) -> tuple[bytes, float]:
    """``read_regular`` of ``root/rel`` where no component of ``rel`` may be a symlink or ``..``: the file read
    is inside ``root`` whatever the tree looks like now."""
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise SkipFile("outside the root")
    if not _DIR_FD:  # no dir_fd (Windows): check the resolved path instead (racy, but no symlink is followed out)
        path = root / rel
        if not path.resolve().is_relative_to(root.resolve()):
            raise SkipFile("symlink (not followed)")
        return read_regular(path, limit)
    fd = _open(os.fspath(root), _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            sub = _open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = sub
        file_fd = _open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)
    return _read_fd(file_fd, limit)
