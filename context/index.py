"""The repo index: per-file definitions and imports, a symbol table (name -> definitions) and a chunk index
(~60-line windows as identifier sets, an inverted index for BM25/Jaccard).

Cold indexing runs on a background thread; readers use whatever is indexed so far under a short lock.
Memory is bounded by ``max_files`` and by storing summaries and identifier sets, never whole files.
"""

from __future__ import annotations

import ctypes
import gc
import io
import itertools
import logging
import os
import re
import sys
import threading
import time
from array import array
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codeassist.context import ignore
from codeassist.context.ignore import IgnoreRules, _record, content_reason, path_reason, walk_repo
from codeassist.context.imports import ImportRef, extract_imports
from codeassist.context.langs import language_for_path, parser_for
from codeassist.context.pystrip import strip_bodies
from codeassist.context.safe_read import SkipFile, read_beneath, read_regular
from codeassist.context.symbols import Definition, extract_definitions

__all__ = [
    "CHUNK_LINES",
    "COMMON",
    "MAX_POSTINGS",
    "Chunk",
    "FileEntry",
    "Posting",
    "RepoIndex",
    "identifiers",
    "posting_ids",
]

log = logging.getLogger(__name__)

CHUNK_LINES = 60
POOL_MIN_FILES = 300  # below this a worker pool's start-up costs more than it saves
MAX_INDEX_BYTES = 200_000_000
MAX_POSTINGS = 250  # a term in more chunks than this never discriminates: retrieval skips it (see retrieve.py)
# Shared stand-in for the posting list of such a common term: its length says "too common", it is never appended
# to, and it saves the ~10^6 chunk ids such terms would otherwise hold.
COMMON: array[int] = array("I", bytes(4 * (MAX_POSTINGS + 1)))
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
# As text: a set literal becomes one word per line under ruff format.
STOPWORDS = frozenset(
    """
    def class return import from self None True False and not for while with else elif try except
    finally pass raise lambda yield async await const let var function new this null undefined void int
    char long float double bool boolean string public private protected static final struct enum impl
    pub use mut fn func package type interface include define ifdef endif
    """.split()  # noqa: SIM905
)


def identifiers(text: str) -> set[str]:
    return {sys.intern(w) for w in _IDENT.findall(text) if w not in STOPWORDS}


@dataclass(slots=True)
class Chunk:
    rel: str
    start: int  # 0-based first line
    end: int  # exclusive
    n_idents: int  # distinct identifiers (the chunk's length for BM25/Jaccard); the terms live in postings


_CPP_MARKERS = re.compile(rb"\b(?:namespace|template|class)\b|::")


def grammar_for(lang: str | None, data: bytes) -> str | None:
    """The grammar to parse ``data`` with: C++ for ``.h`` headers that hold C++ (the C grammar's error recovery
    on C++ code is ~4x slower and finds fewer definitions), else the file's language."""
    if lang == "c" and _CPP_MARKERS.search(data) is not None:
        return "cpp"
    return lang


def parse_file(
    rel: str, lang: str | None, data: bytes, parser: object | None
) -> tuple[list[Definition], list[ImportRef]]:
    """Definitions and imports of one file (no index state: safe in any thread or worker process)."""
    if parser is None:
        return [], []
    if lang == "python":  # function bodies hold nothing the index keeps: parse ~half the bytes
        stripped = strip_bodies(data)
        root = parser.parse(stripped).root_node
        if not root.has_error or stripped is data:
            return extract_definitions(root, stripped, rel), extract_imports(root, lang)
    root = parser.parse(data).root_node
    return extract_definitions(root, data, rel), extract_imports(root, lang or "")


ChunkTerms = tuple[int, int, tuple[str, ...]]


def chunk_file(data: bytes) -> list[ChunkTerms]:
    """(first line, end line, distinct identifiers) of each ~60-line chunk."""
    lines = data.decode("utf-8", errors="replace").split("\n")
    chunks = []
    for s in range(0, len(lines), CHUNK_LINES):
        idents = set(_IDENT.findall("\n".join(lines[s : s + CHUNK_LINES])))
        idents -= STOPWORDS
        chunks.append((s, min(s + CHUNK_LINES, len(lines)), tuple(idents)))
    return chunks


_SIGS: dict[tuple[int, int], tuple[int, int]] = {}
Posting = int | array  # one chunk id, or an array of them (4 bytes each), or COMMON past MAX_POSTINGS


def posting_ids(p: Posting) -> Sequence[int]:
    """The chunk ids of a posting (its len() is the term's document frequency)."""
    return (p,) if p.__class__ is int else p


def _release_free_memory() -> None:
    """Hand the heap pages freed by the cold pass (file contents, parse results) back to the OS, so that RSS
    measures the index rather than the allocator's high-water mark (glibc only; a no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@dataclass(slots=True)
class FileEntry:
    rel: str
    lang: str | None
    mtime: float
    defs: list[Definition] = field(default_factory=list)
    imports: list[ImportRef] = field(default_factory=list)
    chunk_ids: Sequence[int] = ()
    size: int = 0  # bytes


class RepoIndex:
    def __init__(
        self,
        root: str | Path,
        max_files: int = 20_000,
        max_bytes: int = MAX_INDEX_BYTES,
        workers: int | None = None,
        exclude: Sequence[str] = (),
    ) -> None:
        self.root = Path(root).resolve()
        self.max_files = max_files
        self.max_bytes = max_bytes  # source bytes indexed at most (definitions + chunk postings scale with it)
        self.indexed_bytes = 0
        self.workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        self.rules = IgnoreRules(self.root, exclude)
        self.files: dict[str, FileEntry] = {}
        self.symbols: dict[str, list[Definition]] = defaultdict(list)
        self.basenames: dict[str, list[str]] = defaultdict(list)
        self.chunks: dict[int, Chunk] = {}
        self.postings: dict[str, Posting] = {}  # term -> chunk id(s); read them with posting_ids()
        self.skipped: dict[str, str] = {}
        self.generation = 0  # bumped on every change; caches key on it
        self.state = "empty"  # empty | indexing | ready | stopped
        self.index_seconds = 0.0
        self.lock = threading.RLock()
        self._next_chunk = 0
        self._dead_postings = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._parsers: dict[str | None, object] = {}
        self._read_cache: dict[tuple[str, int, int, int], str] = {}
        self._refs: dict[tuple[object, ...], ImportRef] = {}

    # -- building ----------------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        """Cold-index in the background; returns the thread (join it to wait)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.index_all, name=f"index:{self.root.name}", daemon=True)
            self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.state = "stopped"

    def index_all(self) -> None:
        self.state = "indexing"
        t0 = time.perf_counter()
        rels: list[str] = []
        for rel in walk_repo(self.root, self.rules, self.skipped, limit=self.max_files):
            if self._stop.is_set():
                return
            rels.append(rel)
        from codeassist.context.coldindex import index_parallel

        done = index_parallel(self, rels, self.workers) if len(rels) >= POOL_MIN_FILES and self.workers > 1 else 0
        for rel in rels[done:]:
            if self._stop.is_set():
                return
            self.index_file(rel, checked=True)
        if self._stop.is_set():
            return
        self.index_seconds = time.perf_counter() - t0
        self.state = "ready"
        # The index is long-lived: move it out of the cyclic GC's generations so that full collections (tens of
        # ms with ~10^6 index objects) stop landing inside completions. Refcounting still frees what it drops.
        gc.freeze()
        _release_free_memory()
        log.info(
            "indexed %s: %d files, %d definitions, %d chunks in %.2fs (%d skipped)",
            self.root,
            len(self.files),
            sum(len(v) for v in self.symbols.values()),
            len(self.chunks),
            self.index_seconds,
            len(self.skipped),
        )

    def index_file(self, rel: str, text: str | None = None, checked: bool = False) -> bool:
        """(Re)index one file from disk (or from ``text``, an open document's contents); ``checked``: the
        caller (the cold walk) already applied the skip rules and entered the file's directories (none a
        symlink), so only the file itself is checked as it is opened."""
        try:
            reason = None if checked else path_reason(rel, self.rules)
            if reason is not None:
                raise SkipFile(reason)
            if text is not None:
                data, mtime = text.encode("utf-8", errors="surrogatepass"), time.time()
            else:
                limit = ignore.MAX_FILE_BYTES
                data, mtime = read_regular(self.root / rel, limit) if checked else read_beneath(self.root, rel, limit)
                if (reason := content_reason(data)) is not None:
                    raise SkipFile(reason)
        except SkipFile as exc:
            self.remove_file(rel)
            if exc.reason != "not a known source language":
                _record(self.skipped, rel, exc.reason)
            return False
        except OSError:  # gone, or a directory on the way became a file
            self.remove_file(rel)
            return False
        lang = language_for_path(rel)
        grammar = grammar_for(lang, data)
        parser = self._parsers.get(grammar)
        if parser is None and grammar is not None:
            parser = self._parsers[grammar] = parser_for(grammar)
        if self._over_bytes(rel, len(data)):
            return False
        defs, imports = parse_file(rel, lang, data, parser)
        return self.add_parsed(rel, mtime, len(data), defs, imports, chunk_file(data))

    def _over_bytes(self, rel: str, size: int) -> bool:
        old = self.files.get(rel)
        if self.indexed_bytes - (old.size if old else 0) + size > self.max_bytes:
            _record(self.skipped, rel, f"index full ({self.max_bytes} bytes)")
            return True
        return False

    def add_parsed(
        self,
        rel: str,
        mtime: float,
        size: int,
        defs: list[Definition],
        imports: list[ImportRef],
        chunks: list[ChunkTerms],
    ) -> bool:
        if self._over_bytes(rel, size):
            return False
        rel = sys.intern(rel)
        entry = FileEntry(rel, language_for_path(rel), mtime, defs, imports, size=size)
        with self.lock:
            self._remove_locked(rel)
            self.indexed_bytes += entry.size
            self.files[rel] = entry
            self.basenames[rel.rsplit("/", 1)[-1]].append(rel)
            symbols, postings, all_chunks = self.symbols, self.postings, self.chunks
            intern, sigs = sys.intern, _SIGS
            for d in entry.defs:  # share the strings repeated across definitions (and with the postings' terms)
                d.name, d.kind, d.owner, d.path = intern(d.name), intern(d.kind), intern(d.owner), rel
                d.sig = sigs.setdefault(d.sig, d.sig)
                symbols[d.name].append(d)
            refs, imports = self._refs, []  # the same imports recur across files: one shared ImportRef each
            for r in entry.imports:
                key = (r.module, r.names, r.alias, r.level, r.bound)
                shared = refs.get(key)
                if shared is None:
                    r.module, r.names = intern(r.module), tuple(map(intern, r.names))
                    shared = refs[key] = r
                imports.append(shared)
            entry.imports = imports
            cid = self._next_chunk
            get, common = postings.get, COMMON
            first = cid
            for start, end, idents in chunks:
                all_chunks[cid] = Chunk(rel, start, end, len(idents))
                for ident in idents:
                    p = get(ident)
                    if p is None:
                        postings[ident] = cid  # most terms occur in one chunk: a bare id, no array
                    elif p.__class__ is int:
                        postings[ident] = array("I", (p, cid))
                    elif p is not common:
                        if len(p) < MAX_POSTINGS:
                            p.append(cid)
                        else:
                            postings[ident] = common
                cid += 1
            entry.chunk_ids = range(first, cid)  # a file's chunks have consecutive ids
            self._next_chunk = cid
            self.generation += 1
        return True

    def remove_file(self, rel: str) -> None:
        with self.lock:
            if self._remove_locked(rel):
                self.generation += 1

    def _remove_locked(self, rel: str) -> bool:
        old = self.files.pop(rel, None)
        if old is None:
            return False
        self.indexed_bytes -= old.size
        names = self.basenames.get(rel.rsplit("/", 1)[-1])
        if names and rel in names:
            names.remove(rel)
        for d in old.defs:
            defs = self.symbols.get(d.name)
            if defs is not None:
                defs[:] = [x for x in defs if x.path != rel]
                if not defs:
                    del self.symbols[d.name]
        for cid in old.chunk_ids:
            chunk = self.chunks.pop(cid, None)
            self._dead_postings += chunk.n_idents if chunk else 0
        if self._dead_postings > 200_000 and self._dead_postings > len(self.chunks) * 20:
            self._compact_locked()
        return True

    def compact(self) -> None:
        """Drop the postings of removed chunks now (removals do it themselves once enough are dead)."""
        with self.lock:
            self._compact_locked()

    def _compact_locked(self) -> None:
        for ident in list(self.postings):
            ids = self.postings[ident]
            if ids is COMMON:
                continue
            live = [c for c in posting_ids(ids) if c in self.chunks]
            if len(live) > 1:
                self.postings[ident] = array("I", live)
            elif live:
                self.postings[ident] = live[0]
            else:
                del self.postings[ident]
        self._dead_postings = 0

    # -- reading -----------------------------------------------------------------------------------
    def rel_path(self, path: str | Path) -> str | None:
        try:
            rel = Path(os.path.abspath(path)).relative_to(self.root)
        except ValueError:
            return None
        return rel.as_posix()

    def read_lines(self, rel: str, start: int, end: int) -> str:
        key = (rel, start, end, self.generation)
        text = self._read_cache.get(key)
        if text is None:
            try:  # the file may have become a symlink (or a FIFO) since it was indexed
                data, _ = read_beneath(self.root, rel, ignore.MAX_FILE_BYTES)
            except (OSError, SkipFile):
                return ""
            lines = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace")
            text = "".join(itertools.islice(lines, start, end))
            if len(self._read_cache) >= 256:
                self._read_cache.clear()
            self._read_cache[key] = text
        return text

    def stats(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "state": self.state,
            "files": len(self.files),
            "chunks": len(self.chunks),
            "symbols": len(self.symbols),
            "skipped": len(self.skipped),
            "index_s": round(self.index_seconds, 3),
        }
