"""The daemon's one copy of each document editors have open (shared by every editor and the context engine)."""

from __future__ import annotations

import time
from pathlib import Path

from codeassist.context.langs import language_for_path
from codeassist.context.parse import ParsedDoc
from codeassist.context.uris import uri_to_path

__all__ = ["Document", "DocumentStore", "uri_to_path"]

MAX_DOCUMENT_CHARS = 8 * 1024 * 1024


class Document:
    """One document. In the daemon's store its text lives once, in ``parsed`` (a ``ParsedDoc`` the context
    engine shares, so an edit is applied once and keeps the syntax tree in step); a snapshot or a
    speculation's hypothetical document is plain text."""

    __slots__ = ("_text", "edited_at", "language", "owners", "parsed", "uri", "version")

    def __init__(
        self, uri: str, text: str, language: str = "", version: int = 0, parsed: ParsedDoc | None = None
    ) -> None:
        self.uri = uri
        self.language = language
        self.version = version
        self.parsed = parsed
        self._text = "" if parsed is not None else text
        self.owners: set[int] = set()
        self.edited_at = time.monotonic()

    @property
    def text(self) -> str:
        return self.parsed.text if self.parsed is not None else self._text

    @property
    def path(self) -> Path | None:
        return uri_to_path(self.uri)

    def apply(self, start: int, end: int, new_text: str) -> None:
        """Replace code points ``start..end``; offsets are clamped the way LSP clamps positions."""
        if self.parsed is not None:
            self.parsed.edit(start, end, new_text)
        else:
            n = len(self._text)
            start = max(0, min(start, n))
            end = max(start, min(end, n))
            self._text = self._text[:start] + new_text + self._text[end:]
        self.edited_at = time.monotonic()

    def replace_text(self, text: str) -> None:
        if self.parsed is not None:
            self.parsed.set_text(text)
        else:
            self._text = text
        self.edited_at = time.monotonic()


class DocumentStore:
    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}

    def open(self, uri: str, text: str, language: str, version: int, owner: int) -> Document:
        if len(text) > MAX_DOCUMENT_CHARS:
            raise ValueError(f"document too large ({len(text)} chars > {MAX_DOCUMENT_CHARS})")
        doc = self._docs.get(uri)
        if doc is None:
            parsed = ParsedDoc(text, language_for_path(uri_to_path(uri), language))
            doc = self._docs[uri] = Document(uri, text, language, version, parsed=parsed)
        else:
            doc.replace_text(text)
            doc.language, doc.version = language or doc.language, version
        doc.owners.add(owner)
        return doc

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def close(self, uri: str, owner: int) -> bool:
        """True when this was the document's last editor (it is gone from the store)."""
        doc = self._docs.get(uri)
        if doc is None:
            return False
        doc.owners.discard(owner)
        if not doc.owners:
            del self._docs[uri]
            return True
        return False

    def drop_owner(self, owner: int) -> list[str]:
        """An editor went away: the documents only it had open (now closed)."""
        return [uri for uri in [u for u, d in self._docs.items() if owner in d.owners] if self.close(uri, owner)]

    def all(self) -> list[Document]:
        return list(self._docs.values())
