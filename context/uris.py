"""File URIs and paths: the one conversion every part uses."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = ["uri_to_path"]


def uri_to_path(uri_or_path: str) -> Path | None:
    """``file://`` URI or plain path -> Path; None for other schemes (``untitled:``, ``https://``...)."""
    if uri_or_path.startswith("file:"):
        return Path(unquote(urlparse(uri_or_path).path))
    return Path(uri_or_path) if "://" not in uri_or_path and not uri_or_path.startswith("untitled:") else None
