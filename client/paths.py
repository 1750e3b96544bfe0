"""Where the daemon keeps its socket, lock, logs and config (platformdirs, overridable for tests)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import platformdirs

__all__ = ["UnsafeRuntimeDir", "open_private", "private_dir", "runtime_dir", "socket_path"]

APP = "codeassist"


class UnsafeRuntimeDir(RuntimeError):
    """The runtime dir could let another local user in: refuse rather than use it."""


def _ensure(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    return path


def private_dir(path: Path) -> Path:
    """Create ``path`` (0700) or accept it only if it is ours, a real directory and closed to others.

    In a shared parent such as /tmp another user can create the directory first (or a symlink in its
    place) and then read the socket's traffic or plant files; such a directory is refused, not used.
    """
    try:
        _ensure(path)
        st = path.lstat()
    except OSError as exc:
        raise UnsafeRuntimeDir(f"cannot create the private directory {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafeRuntimeDir(f"{path} is not a directory (a symlink?): refusing to use it; remove it")
    if st.st_uid != os.geteuid():
        raise UnsafeRuntimeDir(
            f"{path} belongs to uid {st.st_uid}, not to you: another user may have planted "
            f"it; refusing to use it (set CODEASSIST_RUNTIME_DIR to a private directory)"
        )
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)  # ours: close it before anything private goes in
    return path


def open_private(path: Path, flags: int = os.O_RDWR | os.O_CREAT) -> int:
    """Open a file in a private dir without following a symlink planted in its place (mode 0600)."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def runtime_dir() -> Path:
    """Per-user private dir for the socket and locks (owned by the user, 0700, not a symlink).

    ``CODEASSIST_RUNTIME_DIR`` overrides it (tests run their own daemon this way). When the
    platformdirs runtime dir is not writable (containers without /run/user), fall back to /tmp.
    """
    override = os.environ.get("CODEASSIST_RUNTIME_DIR")
    if override:
        return private_dir(Path(override))
    candidate = Path(platformdirs.user_runtime_dir(APP))
    try:
        _ensure(candidate)
        if os.access(candidate, os.W_OK):
            return private_dir(candidate)
    except OSError:
        pass
    return private_dir(Path(tempfile.gettempdir()) / f"{APP}-{os.getuid()}")


def socket_path() -> Path:
    return runtime_dir() / "daemon.sock"


def lock_path() -> Path:
    return runtime_dir() / "daemon.lock"


def log_dir() -> Path:
    override = os.environ.get("CODEASSIST_LOG_DIR")
    if override:
        return _ensure(Path(override))
    if os.environ.get("CODEASSIST_RUNTIME_DIR"):
        return private_dir(runtime_dir() / "log")
    return _ensure(Path(platformdirs.user_log_dir(APP)))


def config_dir() -> Path:
    override = os.environ.get("CODEASSIST_CONFIG_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP))


def state_dir() -> Path:
    override = os.environ.get("CODEASSIST_STATE_DIR")
    if override:
        return _ensure(Path(override))
    if os.environ.get("CODEASSIST_RUNTIME_DIR"):
        return private_dir(runtime_dir() / "state")
    return _ensure(Path(platformdirs.user_state_dir(APP)))
