"""Cold indexing with a small process pool: reading, tree-sitter parsing, definition extraction and chunking
(all the per-byte cost) run in worker processes, while the indexing thread merges the compact results in walk
order.

Workers are spawned (never forked: the daemon has threads) and exit when the cold index is done. Any failure
falls back to indexing in-process from the first file not yet merged.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING

from codeassist.context.ignore import MAX_FILE_BYTES, _record, content_reason
from codeassist.context.imports import ImportRef
from codeassist.context.langs import language_for_path, parser_for
from codeassist.context.safe_read import SkipFile, read_regular
from codeassist.context.symbols import Definition

if TYPE_CHECKING:
    from codeassist.context.index import ChunkTerms, RepoIndex

__all__ = ["index_parallel"]

log = logging.getLogger(__name__)

BATCH = 24
_PARSERS: dict[str | None, object] = {}
# (rel, mtime, size, definitions, imports, chunks) of an indexed file, or (rel, skip reason) of a skipped one
Parsed = tuple[str, float, int, list[Definition], list[ImportRef], list["ChunkTerms"]]
Skipped = tuple[str, str]


def _parse_batch(root: str, rels: list[str]) -> list[Parsed | Skipped | None]:
    """Worker side: everything that needs the file's contents (binary check, parse, definitions, imports, chunk
    terms), so that the indexing process never reads the files; None for a file that vanished."""
    from codeassist.context.index import chunk_file, grammar_for, parse_file

    out: list[Parsed | Skipped | None] = []
    for rel in rels:
        try:  # the walk entered no symlinked directory; the file itself is checked as it is opened
            data, mtime = read_regular(os.path.join(root, rel), MAX_FILE_BYTES)
        except SkipFile as exc:
            out.append((rel, exc.reason))
            continue
        except OSError:
            out.append(None)
            continue
        reason = content_reason(data)
        if reason is not None:
            out.append((rel, reason))
            continue
        lang = language_for_path(rel)
        grammar = grammar_for(lang, data)
        if grammar not in _PARSERS:
            _PARSERS[grammar] = parser_for(grammar)
        defs, imports = parse_file(rel, lang, data, _PARSERS[grammar])
        out.append((rel, mtime, len(data), defs, imports, chunk_file(data)))
    return out


def index_parallel(index: RepoIndex, rels: list[str], workers: int) -> int:
    """Index ``rels`` with ``workers`` processes; returns how many of them (a prefix) were merged."""
    merged = 0
    try:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures: deque[Future[list[Parsed | Skipped | None]]] = deque(
                pool.submit(_parse_batch, str(index.root), rels[i : i + BATCH]) for i in range(0, len(rels), BATCH)
            )
            while futures:
                if index._stop.is_set():
                    for f in futures:
                        f.cancel()
                    return len(rels)
                batch = futures.popleft().result()  # merged batches are dropped at once, results and all
                for item in batch:
                    merged += 1
                    if item is None:
                        continue
                    if len(item) == 2:
                        _record(index.skipped, *item)
                        continue
                    index.add_parsed(*item)
    except Exception as exc:  # a broken pool (no /dev/shm, killed worker...) must not lose the index
        log.warning("parallel cold index failed after %d files (%s); continuing in-process", merged, exc)
    return merged
