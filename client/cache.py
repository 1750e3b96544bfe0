"""Completion cache, shared by every editor the daemon serves.

Two ways in, one bounded LRU (entries and bytes):

* by ``(model, mode, sha256(prompt))`` — the same prompt never goes to the model twice;
* by document position — a hash of the text just before the cursor and the text just after it, with
  no URI in it, so a second editor on the same content hits too. :meth:`CompletionCache.typed_through`
  walks back up to ``max_walk`` characters (llama.vim's trick): if the user has typed the start of a
  completion shown there, the rest is served with no request.

The walk-back hashes up to ``max_walk`` keys; a count of the suffixes held (the text after the cursor does not
change while the user types at it) answers most misses — every keystroke's first question — with no hashing.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["CacheHit", "CacheSizes", "CompletionCache", "position_key", "prompt_key"]

PREFIX_CHARS = 512
SUFFIX_CHARS = 256


def _h(*parts: str) -> str:
    return hashlib.blake2b("\x00".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def prompt_key(model: str, mode: str, prompt: str) -> str:
    return "p:" + _h(model, mode, prompt)


def position_key(text: str, offset: int, suffix: str | None = None) -> str:
    sfx = text[offset : offset + SUFFIX_CHARS] if suffix is None else suffix
    return "x:" + _h(text[max(0, offset - PREFIX_CHARS) : offset], sfx)


@dataclass(frozen=True)
class CacheHit:
    text: str
    typed: int  # characters of the cached completion the user has already typed
    source: str  # where the entry came from: model | prefetch


class CacheSizes(NamedTuple):
    """What a :class:`CompletionCache` holds. The suffix index agrees with the entries when
    ``positions == indexed == counted``."""

    entries: int  # all entries, prompt and position
    positions: int  # position entries (``x:`` keys) in the LRU
    indexed: int  # position entries the suffix index knows
    counted: int  # the per-suffix counts, summed
    suffixes: int  # distinct suffixes counted


class CompletionCache:
    def __init__(self, max_entries: int = 1000, max_bytes: int = 4 * 1024 * 1024, max_walk: int = 128) -> None:
        self.max_entries, self.max_bytes, self.max_walk = max_entries, max_bytes, max_walk
        self._lru: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self.bytes = 0
        self._sfx_of: dict[str, int] = {}  # position key -> hash of its suffix
        self._sfx_count: dict[int, int] = {}  # suffix hash -> position entries holding it

    def __len__(self) -> int:
        return len(self._lru)

    def sizes(self) -> CacheSizes:
        """The LRU's and the suffix index's sizes (walks the keys: for tests and diagnostics, not per keystroke)."""
        return CacheSizes(
            entries=len(self._lru),
            positions=sum(1 for k in self._lru if k.startswith("x:")),
            indexed=len(self._sfx_of),
            counted=sum(self._sfx_count.values()),
            suffixes=len(self._sfx_count),
        )

    @staticmethod
    def _size(key: str, text: str) -> int:
        return len(key) + len(text.encode("utf-8", "surrogatepass")) + 64

    def get(self, key: str) -> str | None:
        entry = self._lru.get(key)
        if entry is None:
            return None
        self._lru.move_to_end(key)
        return entry[0]

    def put(self, key: str, text: str, source: str = "model", suffix_hash: int | None = None) -> None:
        if not text:
            return
        old = self._lru.pop(key, None)
        if old is not None:
            self.bytes -= self._size(key, old[0])
            self._forget_suffix(key)
        size = self._size(key, text)
        if size > self.max_bytes:
            return
        self._lru[key] = (text, source)
        self.bytes += size
        if suffix_hash is not None:
            self._sfx_of[key] = suffix_hash
            self._sfx_count[suffix_hash] = self._sfx_count.get(suffix_hash, 0) + 1
        while len(self._lru) > self.max_entries or self.bytes > self.max_bytes:
            k, (t, _) = self._lru.popitem(last=False)
            self.bytes -= self._size(k, t)
            self._forget_suffix(k)

    def _forget_suffix(self, key: str) -> None:
        h = self._sfx_of.pop(key, None)
        if h is not None:
            n = self._sfx_count[h] - 1
            if n:
                self._sfx_count[h] = n
            else:
                del self._sfx_count[h]

    def put_position(self, text: str, offset: int, completion: str, source: str = "model") -> None:
        suffix = text[offset : offset + SUFFIX_CHARS]
        self.put(position_key(text, offset, suffix), completion, source, hash(suffix))

    def typed_through(self, text: str, offset: int) -> CacheHit | None:
        """A cached completion for this position, or for an earlier one whose start the user typed."""
        suffix = text[offset : offset + SUFFIX_CHARS]
        if hash(suffix) not in self._sfx_count:
            return None  # no entry was made in front of this suffix: no position can hit
        for back in range(0, min(self.max_walk, offset) + 1):
            entry = self._lru.get(position_key(text, offset - back, suffix))
            if entry is None:
                continue
            completion, source = entry
            typed = text[offset - back : offset]
            if len(completion) > back and completion.startswith(typed):
                self._lru.move_to_end(position_key(text, offset - back, suffix))
                return CacheHit(completion[back:], back, source)
            if back == 0:
                continue
            return None  # the user diverged from the nearest shown completion
        return None

    def clear(self) -> None:
        self._lru.clear()
        self.bytes = 0
        self._sfx_of.clear()
        self._sfx_count.clear()
