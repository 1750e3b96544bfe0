"""The workspace roots the context engine indexes: one ``RepoIndex`` (and its watcher) per root, and which root a
path belongs to (the innermost)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from codeassist.context.index import RepoIndex
from codeassist.context.uris import uri_to_path
from codeassist.context.watch import IndexWatcher

__all__ = ["Roots"]


class Roots:
    def __init__(self, max_files: int, exclude: Sequence[str] = ()) -> None:
        self.max_files = max_files
        self.exclude = tuple(exclude)  # gitignore-style globs for every root (add adds per-root ones)
        self.indexes: dict[Path, RepoIndex] = {}
        self.watchers: list[IndexWatcher] = []
        self.generation = 0  # bumped when a root comes or goes: which root a document belongs to may change

    def add(
        self, root: str | Path, background: bool = True, watch: bool = True, exclude: Sequence[str] = ()
    ) -> RepoIndex:
        """Index (and watch) a workspace root. ``exclude``: gitignore-style globs relative to the root, on top of
        the engine's; calling again with other globs re-indexes the root with them."""
        path = uri_to_path(str(root)) or Path(root)
        path = path.resolve()
        patterns = self.exclude + tuple(exclude)
        index = self.indexes.get(path)
        if index is not None and index.rules.exclude != patterns:
            self._drop(path)
            index = None
        if index is None:
            index = self.indexes[path] = RepoIndex(path, max_files=self.max_files, exclude=patterns)
            self.generation += 1
            if background:
                index.start()
            else:
                index.index_all()
            if watch:
                self.watchers.append(IndexWatcher(index).start())
        return index

    def _drop(self, path: Path) -> None:
        index = self.indexes.pop(path)
        for w in [w for w in self.watchers if w.index is index]:
            w.stop()
            self.watchers.remove(w)
        index.stop()
        self.generation += 1

    def index_for(self, path: Path | None) -> tuple[RepoIndex | None, str | None]:
        """The innermost root's index holding ``path``, and the path relative to it."""
        if path is None:
            return None, None
        best: tuple[RepoIndex | None, str | None] = (None, None)
        for index in self.indexes.values():
            rel = index.rel_path(path)
            if rel is not None and (best[0] is None or len(str(index.root)) > len(str(best[0].root))):
                best = (index, rel)
        return best

    def close(self) -> None:
        for w in self.watchers:
            w.stop()
        for index in self.indexes.values():
            index.stop()
