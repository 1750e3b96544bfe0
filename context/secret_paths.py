"""The one list of paths that look like secrets: such files are never indexed, and an open document with such a
path gives nothing to other prompts and takes no cross-file context (see engine.py).

Matched on the path's components, case-insensitively (``.ENV`` on a case-insensitive file system is ``.env``):
the file name (last component), or any directory component in ``SECRET_DIRS``. No file system access.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import PurePath

__all__ = ["SECRET_DIRS", "SECRET_NAMES", "is_secret_path"]

# Directories whose every file is private (VCS internals hold tokens in remote URLs and credential helpers).
SECRET_DIRS = frozenset(
    {".git", ".hg", ".svn", ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".password-store"}
)
# File name globs (fnmatch, lower case), by kind.
_DOTENV = (".env", ".env.*", "*.env")  # .env.example too: often a copy of the real one
_KEY_FILES = ("*.pem", "*.key", "*.p12", "*.pfx", "*.keystore", "*.jks", "*.ppk", "*.kdbx", "*.tfvars", "*.tfstate")
_SSH_KEYS = ("id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "id_xmss*")  # and their .pub
_CREDENTIALS = ("credentials*", ".credentials*", ".git-credentials", "secrets.*")
_RC_FILES = (".netrc", "_netrc", ".npmrc", ".pypirc", ".pgpass", ".htpasswd", ".dockercfg", ".s3cfg", ".boto")
SECRET_NAMES = _DOTENV + _KEY_FILES + _SSH_KEYS + _CREDENTIALS + _RC_FILES
# Custom-named SSH keys (id_github, id_work): "id_" and no extension. id_utils.py stays ordinary source.
_KEY_NAME = r"id_[^.]+"
_NAME = re.compile("|".join([_KEY_NAME, *(fnmatch.translate(g) for g in SECRET_NAMES)]))
_SEP = re.compile(r"[\\/]")


def is_secret_path(path: str | PurePath) -> bool:
    """Whether ``path`` (relative or absolute, ``/`` or ``\\`` separated) looks like it holds a secret."""
    parts = [p for p in _SEP.split(str(path).lower()) if p]
    if not parts:
        return False
    if _NAME.fullmatch(parts[-1]) is not None:
        return True
    return any(p in SECRET_DIRS for p in parts[:-1])
