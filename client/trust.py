"""Workspace trust: which project ``.codeassist.toml`` files the user has vouched for.

A cloned repository is untrusted by default (as in VS Code's workspace trust): its project file may then
set only the keys that cannot route code or credentials or start programs (see ``config.PROJECT_KEYS``).
``codeassist trust [DIR]`` records the file's SHA-256 in the user's state dir; an edited file (a new
commit, a pulled branch) is untrusted again until the user trusts it again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from codeassist.client import paths

__all__ = ["digest", "is_trusted", "trust", "trust_file", "trusted", "untrust"]


def trust_file() -> Path:
    return paths.state_dir() / "trusted-projects.json"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def trusted() -> dict[str, str]:
    """Project file path -> SHA-256 of the content the user trusted."""
    try:
        data = json.loads(trust_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write(data: dict[str, str]) -> None:
    path = trust_file()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, json.dumps(data, indent=1, sort_keys=True).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def is_trusted(project_file: Path, content: bytes) -> bool:
    return trusted().get(str(project_file)) == digest(content)


def trust(project_file: Path, content: bytes) -> None:
    data = trusted()
    data[str(project_file)] = digest(content)
    _write(data)


def untrust(project_file: Path) -> bool:
    data = trusted()
    if data.pop(str(project_file), None) is None:
        return False
    _write(data)
    return True
