"""Cold indexing with a small process pool: tree-sitter parsing and definition extraction (most of the cost)
run in worker processes, while the indexing thread chunks the files and merges the results in walk order.

Workers are spawned (never forked: the daemon has threads) and exit when the cold index is done. Any failure
falls back to indexing in-process from the first file not yet merged.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING

from codeassist.context.imports import ImportRef
from codeassist.context.langs import language_for_path, parser_for
from codeassist.context.symbols import Definition

if TYPE_CHECKING:
    from codeassist.context.index import RepoIndex

__all__ = ["index_parallel"]

log = logging.getLogger(__name__)

BATCH = 24
_PARSERS: dict[str | None, object] = {}
Parsed = tuple[str, float, list[Definition], list[ImportRef]]


def _parse_batch(root: str, rels: list[str]) -> list[Parsed | None]:
    """Worker side: (rel, mtime, definitions, imports) per file, None for a file that vanished."""
    from codeassist.context.index import parse_file

    out: list[Parsed | None] = []
    for rel in rels:
        path = os.path.join(root, rel)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            mtime = os.stat(path).st_mtime
        except OSError:
            out.append(None)
            continue
        lang = language_for_path(rel)
        if lang not in _PARSERS:
            _PARSERS[lang] = parser_for(lang)
        defs, imports = parse_file(rel, lang, data, _PARSERS[lang])
        out.append((rel, mtime, defs, imports))
    return out


def index_parallel(index: RepoIndex, rels: list[str], workers: int) -> int:
    """Index ``rels`` with ``workers`` processes; returns how many of them (a prefix) were merged."""
    from codeassist.context.index import chunk_file

    merged = 0
    try:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures: list[Future[list[Parsed | None]]] = [
                pool.submit(_parse_batch, str(index.root), rels[i:i + BATCH]) for i in range(0, len(rels), BATCH)]
            for fut in futures:
                if index._stop.is_set():
                    for f in futures:
                        f.cancel()
                    return len(rels)
                batch = fut.result()
                for item in batch:
                    merged += 1
                    if item is None:
                        continue
                    rel, mtime, defs, imports = item
                    try:
                        data = (index.root / rel).read_bytes()
                    except OSError:
                        continue
                    index.add_parsed(rel, mtime, data, defs, imports, chunk_file(data))
    except Exception as exc:  # a broken pool (no /dev/shm, killed worker...) must not lose the index
        log.warning("parallel cold index failed after %d files (%s); continuing in-process", merged, exc)
    return merged
