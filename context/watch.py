"""Keeps a RepoIndex fresh: a watchfiles thread re-indexes changed files and drops deleted ones."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import watchfiles
from codeassist.context.ignore import VENDORED
from codeassist.context.index import RepoIndex

__all__ = ["IndexWatcher"]

log = logging.getLogger(__name__)


def _interesting(change: watchfiles.Change, path: str) -> bool:
    return not any(part in VENDORED for part in Path(path).parts)


class IndexWatcher:
    def __init__(self, index: RepoIndex, debounce_ms: int = 50) -> None:
        self.index = index
        self.debounce_ms = debounce_ms
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.updates = 0
        self._thread = threading.Thread(target=self._run, name=f"watch:{index.root.name}", daemon=True)

    def start(self) -> IndexWatcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.ready.set()
            for changes in watchfiles.watch(
                self.index.root,
                watch_filter=_interesting,
                stop_event=self._stop,
                debounce=self.debounce_ms,
                step=20,
                rust_timeout=200,
                yield_on_timeout=False,
                raise_interrupt=False,
            ):
                for change, path in changes:
                    rel = self.index.rel_path(path)
                    if rel is None:
                        continue
                    if rel.endswith(".gitignore"):
                        continue
                    if change == watchfiles.Change.deleted:
                        self.index.remove_file(rel)
                    elif Path(path).is_file():
                        self.index.index_file(rel)
                    self.updates += 1
        except Exception:
            log.exception("watcher for %s stopped", self.index.root)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=3)
