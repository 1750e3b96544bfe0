"""The daemon's mirror of the documents editors have open (shared by every connected editor)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = ["Document", "DocumentStore", "uri_to_path"]

MAX_DOCUMENT_CHARS = 8 * 1024 * 1024


def uri_to_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


@dataclass
class Document:
    uri: str
    text: str
    language: str = ""
    version: int = 0
    owners: set[int] = field(default_factory=set)
    edited_at: float = field(default_factory=time.monotonic)

    @property
    def path(self) -> Path | None:
        return uri_to_path(self.uri)

    def apply(self, start: int, end: int, new_text: str) -> None:
        """Replace code points ``start..end``; offsets are clamped the way LSP clamps positions."""
        n = len(self.text)
        start = max(0, min(start, n))
        end = max(start, min(end, n))
        self.text = self.text[:start] + new_text + self.text[end:]
        self.edited_at = time.monotonic()


class DocumentStore:
    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}

    def open(self, uri: str, text: str, language: str, version: int, owner: int) -> Document:
        if len(text) > MAX_DOCUMENT_CHARS:
            raise ValueError(f"document too large ({len(text)} chars > {MAX_DOCUMENT_CHARS})")
        doc = self._docs.get(uri)
        if doc is None:
            doc = self._docs[uri] = Document(uri=uri, text=text, language=language, version=version)
        else:
            doc.text, doc.language, doc.version = text, language or doc.language, version
        doc.owners.add(owner)
        return doc

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def close(self, uri: str, owner: int) -> None:
        doc = self._docs.get(uri)
        if doc is None:
            return
        doc.owners.discard(owner)
        if not doc.owners:
            del self._docs[uri]

    def drop_owner(self, owner: int) -> None:
        for uri in [u for u, d in self._docs.items() if owner in d.owners]:
            self.close(uri, owner)

    def all(self) -> list[Document]:
        return list(self._docs.values())
