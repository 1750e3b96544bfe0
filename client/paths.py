"""Where the daemon keeps its socket, lock, logs and config (platformdirs, overridable for tests)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs

APP = "codeassist"


def _ensure(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    return path


def runtime_dir() -> Path:
    """Per-user private dir for the socket and locks.

    ``CODEASSIST_RUNTIME_DIR`` overrides it (tests run their own daemon this way). When the
    platformdirs runtime dir is not writable (containers without /run/user), fall back to /tmp.
    """
    override = os.environ.get("CODEASSIST_RUNTIME_DIR")
    if override:
        return _ensure(Path(override))
    candidate = Path(platformdirs.user_runtime_dir(APP))
    try:
        _ensure(candidate)
        if os.access(candidate, os.W_OK):
            return candidate
    except OSError:
        pass
    return _ensure(Path(tempfile.gettempdir()) / f"{APP}-{os.getuid()}")


def socket_path() -> Path:
    return runtime_dir() / "daemon.sock"


def lock_path() -> Path:
    return runtime_dir() / "daemon.lock"


def log_dir() -> Path:
    override = os.environ.get("CODEASSIST_LOG_DIR")
    if override:
        return _ensure(Path(override))
    if os.environ.get("CODEASSIST_RUNTIME_DIR"):
        return _ensure(Path(os.environ["CODEASSIST_RUNTIME_DIR"]) / "log")
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
        return _ensure(Path(os.environ["CODEASSIST_RUNTIME_DIR"]) / "state")
    return _ensure(Path(platformdirs.user_state_dir(APP)))
