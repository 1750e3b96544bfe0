"""ContextEngine: open documents + repo indexes -> PromptParts within a token budget.

Sync and pure apart from the background index/watch threads it owns; the daemon feeds it document events
and calls ``build`` from ``CompletionEngine.build_prompt``. Not thread-safe: one caller (the event loop).

Per keystroke only the prefix/suffix window is recomputed. The cross-file part (definitions the cursor needs,
similar chunks, recent edits) and its packing are computed once per (document, cursor line, index generation,
other documents' edits) and reused while the user types on that line; the syntax tree is the last one, shifted
by the edits since, and re-parsed when the editor is idle (``refresh``).

What may enter a prompt: the document's own window; files of its workspace root that the index admits (see
ignore.py); recent edits of other open documents under that same root. A private document (secret-looking path,
see secret_paths.py, or matched by the user's exclude globs) gives nothing to other prompts and takes no
cross-file context itself: its prompt is its own window.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from codeassist.context.budget import DEFAULT_BUDGET, ENGINE_MIN_BUDGET, Split, check_budget, pack
from codeassist.context.errors import ContextError, PositionError
from codeassist.context.imports import extract_imports
from codeassist.context.index import RepoIndex
from codeassist.context.langs import language_for_path, path_header
from codeassist.context.occur import occurrences
from codeassist.context.parse import ParsedDoc
from codeassist.context.recent import recent_snippets
from codeassist.context.retrieve import (
    Snippet,
    dedup,
    definition_snippets,
    enclosing_class_bases,
    receiver_types,
    similar_snippets,
)
from codeassist.context.roots import Roots
from codeassist.context.secret_paths import is_secret_path
from codeassist.context.syntax_window import syntax_window
from codeassist.context.templates import Template
from codeassist.context.tokens import TokenCounter, default_counter
from codeassist.context.uris import uri_to_path
from codeassist.context.window import PromptParts

__all__ = ["ContextEngine"]

log = logging.getLogger(__name__)

CROSS_ENTRIES = 64  # cached cross-file packs (a few per open document)
SLOW_SUFFIX_TOKENS = 64


class ContextEngine:
    def __init__(
        self,
        budget: int = DEFAULT_BUDGET,
        split: Split | None = None,
        counter: TokenCounter | None = None,
        max_files: int = 20_000,
        sources: tuple[str, ...] = ("imports", "symbols", "recent", "similar"),
        exclude: Sequence[str] = (),
    ) -> None:
        self.budget = check_budget(budget)
        self.split = split or Split()
        self.counter = counter or default_counter()
        self.sources = sources
        self.roots = Roots(max_files, exclude)
        self.docs: dict[str, ParsedDoc] = {}
        self.recent: deque[tuple[str, int, float]] = deque(maxlen=32)  # (uri, line, when)
        self._resolve_cache: dict[object, object] = {}
        self._cache_gen: dict[Path, int] = {}
        self._parsed: dict[str, ParsedDoc] = {}
        self._cross: dict[tuple[object, ...], object] = {}  # cross-file candidates and packs, per cursor line
        self._edits: dict[str, int] = {}  # edits per document, and in all (``_edit_total``): cache keys
        self._edit_total = 0
        self._docs_gen = 0  # bumped when a document opens or closes (other open documents feed "recent")
        self._resolved: dict[Path, Path] = {}
        self.cross_hits = self.cross_misses = 0  # for tests and stats

    # -- roots -------------------------------------------------------------------------------------
    @property
    def indexes(self) -> dict[Path, RepoIndex]:
        return self.roots.indexes

    def add_root(
        self, root: str | Path, background: bool = True, watch: bool = True, exclude: Sequence[str] = ()
    ) -> RepoIndex:
        """Index (and watch) a workspace root (see ``Roots.add``)."""
        return self.roots.add(root, background, watch, exclude)

    def index_for(self, path: Path | None) -> tuple[RepoIndex | None, str | None]:
        return self.roots.index_for(path)

    def _scope(self, path: Path | None) -> tuple[RepoIndex | None, str | None, bool]:
        """(index of the workspace root, path there, private?) of a document. Private: a secret-looking path
        (as named, or as resolved into the root) or one the root's exclude globs match."""
        if path is None:
            return None, None, False
        index, rel = self.index_for(self._resolve(path))
        private = is_secret_path(path.name) or (
            index is not None and rel is not None and (is_secret_path(rel) or index.rules.excluded(rel))
        )
        return index, rel, private

    def close(self) -> None:
        self.roots.close()

    # -- documents -------------------------------------------------------------------------------
    def open_document(self, uri: str, text: str, language: str = "") -> None:
        self.attach(uri, ParsedDoc(text, language_for_path(uri_to_path(uri), language)))

    def attach(self, uri: str, doc: ParsedDoc) -> None:
        """Use the caller's parsed document for ``uri`` (the daemon's store owns it; nothing is copied)."""
        self.docs[uri] = doc
        self._docs_gen += 1

    def change_document(self, uri: str, edits: list[tuple[int, int, str]]) -> None:
        """Apply ``edits`` (code points) to a document this engine opened, and note them."""
        doc = self.docs.get(uri)
        if doc is None:
            return
        for start, end, new_text in edits:
            doc.edit(int(start), int(end), str(new_text))
        self.note_edits(uri, edits)

    def note_edits(self, uri: str, edits: list[tuple[int, int, str]]) -> None:
        """Edits already applied to an attached document: they feed "recently edited" and the caches' keys."""
        doc = self.docs.get(uri)
        if doc is None:
            return
        now = time.monotonic()
        for start, _end, _new in edits:
            self.recent.append((uri, doc.text.count("\n", 0, min(int(start), len(doc.text))), now))
        self._edits[uri] = self._edits.get(uri, 0) + len(edits)
        self._edit_total += len(edits)

    def close_document(self, uri: str) -> None:
        self.docs.pop(uri, None)
        self._docs_gen += 1

    def refresh(self, uri: str) -> bool:
        """Re-parse the document if it was edited since its last parse: for idle time, off the keystroke path."""
        doc = self.docs.get(uri)
        return doc.refresh() if doc is not None else False

    def _doc(self, uri: str | None, text: str, lang: str | None) -> ParsedDoc:
        doc = self.docs.get(uri) if uri else None
        if doc is None:  # not open in an editor (CLI, benchmarks): keep a few parsed files around
            key = f"{lang}:{uri}"
            doc = self._parsed.get(key)
            if doc is None or doc.text != text:
                doc = ParsedDoc(text, lang)
            self._parsed.pop(key, None)
            self._parsed[key] = doc
            while len(self._parsed) > 8:
                self._parsed.pop(next(iter(self._parsed)))
            return doc
        if doc.text != text:
            # A speculation (the document plus a guessed completion): a scratch copy derived from the live
            # document's tree. Never ``set_text`` the live document: that threw its tree
            # away (a full re-parse, twice: there and back).
            key = f"derived:{uri}"
            derived = self._parsed.pop(key, None)
            if derived is None or derived.text != text:
                derived = doc.derive(text)
            self._parsed[key] = derived
            while len(self._parsed) > 8:
                self._parsed.pop(next(iter(self._parsed)))
            return derived
        return doc

    def _resolve(self, path: Path) -> Path:
        """``Path.resolve`` (syscalls) once per path: a build per keystroke need not stat the same file again."""
        hit = self._resolved.get(path)
        if hit is None:
            if len(self._resolved) > 4096:
                self._resolved.clear()
            hit = self._resolved[path] = path.resolve()
        return hit

    # -- building --------------------------------------------------------------------------------
    def build(
        self,
        text: str,
        offset: int,
        template: Template,
        path: str | Path | None = None,
        uri: str | None = None,
        language: str = "",
        budget: int | None = None,
        region_lines: int = 1,
    ) -> PromptParts:
        """``region_lines`` > 1 (a slow server): the prefix starts on a grid of that many lines and the cross-file
        part is chosen once per region, so consecutive prompts share their start (the server's prompt cache)."""
        t0 = time.perf_counter()
        budget = check_budget(budget or self.budget, ENGINE_MIN_BUDGET)
        if not 0 <= offset <= len(text):
            raise PositionError(f"offset {offset} is outside the document (length {len(text)})")
        if 0 < offset < len(text) and "\udc00" <= text[offset] <= "\udfff" and "\ud800" <= text[offset - 1] <= "\udbff":
            raise PositionError(f"offset {offset} falls inside a surrogate pair")
        fpath = Path(path) if path is not None else (uri_to_path(uri) if uri else None)
        lang = language_for_path(fpath, language)
        doc = self._doc(uri or (str(fpath) if fpath else None), text, lang)
        index, rel, private = self._scope(fpath)
        rel_name = rel or (fpath.name if fpath else "untitled")
        c = self.counter
        overhead = c.count_piece(template.render("", "")) + (
            c.count_piece(f"{template.file_sep}{rel_name}\n") if template.file_sep else 0
        )
        room = budget - overhead
        snip_budget = int(room * self.split.snippets)
        suffix_budget = int(room * self.split.suffix) if template.fim else 0
        if region_lines > 1:  # the suffix follows the prefix (PSM): a slow server prefills it again per keystroke
            suffix_budget = min(suffix_budget, SLOW_SUFFIX_TOKENS)
        cursor_line = text.count("\n", 0, offset)
        if not private and index is not None:
            snip_budget += self._spare(doc, offset, room - suffix_budget - snip_budget, suffix_budget)

        def render(s: Snippet) -> str:
            if template.file_sep:
                return f"{template.file_sep}{s.path}\n{s.text}\n"
            return f"{path_header(lang, s.path)}{s.text}\n"

        chosen, costs = (
            ([], [])
            if private
            else self._cross_file(
                doc, index, rel, lang, cursor_line, uri, render, snip_budget, template.file_sep, region_lines
            )
        )
        prefix_budget = room - suffix_budget - sum(costs)
        for _ in range(100):
            window = syntax_window(doc, offset, c, max(0, prefix_budget), suffix_budget, region_lines)
            prefix = "".join(window.headers) + window.prefix
            # Snippets overlapping the window of the current file would repeat it.
            keep = [
                (s, k)
                for s, k in zip(chosen, costs, strict=True)
                if not (s.path == rel and s.start <= window.end_line and window.start_line <= s.end)
            ]
            order = list(reversed(keep))  # best snippet nearest the cursor
            block = "".join(render(s) for s, _ in order)
            if template.file_sep:
                prompt = block + f"{template.file_sep}{rel_name}\n" + template.render(prefix, window.suffix)
            elif template.fim:
                prompt = template.render(block + prefix, window.suffix)
            else:
                prompt = block + prefix
            tokens = c.count_text(prompt)
            if tokens <= budget:
                break
            over = tokens - budget
            if chosen:
                chosen, costs = chosen[:-1], costs[:-1]
            else:
                prefix_budget -= max(over, prefix_budget // 10 + 1)
                if prefix_budget <= 0 and suffix_budget > 0:
                    suffix_budget = max(0, suffix_budget - over)
        else:
            raise ContextError(f"cannot fit the prompt into {budget} tokens")
        snippets: list[dict[str, object]] = [
            {
                "path": s.path,
                "text": s.text,
                "tokens": k,
                "reason": s.reason,
                "kind": s.kind,
                "lines": [s.start + 1, s.end],
            }
            for s, k in order
        ]
        header = path_header(lang, "").rstrip("\n") if order and not template.file_sep else None
        return PromptParts(
            prompt=prompt,
            prefix=prefix,
            suffix=window.suffix if template.fim else "",
            snippets=snippets,
            tokens=tokens,
            budget=budget,
            token_counter=c.name,
            ms=(time.perf_counter() - t0) * 1000,
            header=header,
        )

    def _spare(self, doc: ParsedDoc, offset: int, prefix_budget: int, suffix_budget: int) -> int:
        """Tokens the prefix/suffix window leaves unused (a short file, a cursor near the top), in steps of 128
        so that the cross-file pack, keyed by its budget, is reused while the user types: snippets take them."""
        c = self.counter
        probe = syntax_window(doc, offset, c, max(0, prefix_budget), suffix_budget)
        used = c.count_text("".join(probe.headers) + probe.prefix) + (
            c.count_text(probe.suffix) if suffix_budget else 0
        )
        spare = prefix_budget + suffix_budget - used - 64
        return spare // 128 * 128 if spare >= 128 else 0

    def _cross_file(
        self,
        doc: ParsedDoc,
        index: RepoIndex | None,
        rel: str | None,
        lang: str | None,
        cursor_line: int,
        uri: str | None,
        render: Callable[[Snippet], str],
        snip_budget: int,
        file_sep: str,
        region_lines: int = 1,
    ) -> tuple[list[Snippet], list[int]]:
        """The packed cross-file snippets, reused while the cursor stays on one line (or one region of
        ``region_lines``) and nothing they depend on changed: the index (generation), other documents (edits,
        opens, closes). Typing on the line itself does not invalidate them: what the line adds is a few
        characters of one identifier."""
        other_edits = self._edit_total - self._edits.get(uri or "", 0)
        # An open document is one evolving text (reuse across its keystrokes is the point); any other text
        # (CLI, benchmarks: a path and a text) is keyed by its content.
        ident: object = uri if uri is not None and uri in self.docs else hash(doc.text)
        key = (
            ident,
            rel,
            lang,
            cursor_line // max(1, region_lines),
            index.root if index is not None else None,
            index.generation if index is not None else -1,
            self._docs_gen + self.roots.generation,  # "recent" snippets depend on the documents and the roots
            other_edits,
            snip_budget,
            file_sep,
        )
        hit = self._cross.pop(key, None)
        if hit is None:
            self.cross_misses += 1
            cands = self._candidates(doc, index, rel, lang, doc.text, doc.lines, cursor_line, uri)
            hit = pack(cands, render, self.counter, snip_budget)
        else:
            self.cross_hits += 1
        self._cross[key] = hit
        while len(self._cross) > CROSS_ENTRIES:
            self._cross.pop(next(iter(self._cross)))
        chosen, costs = hit
        return list(chosen), list(costs)

    def _candidates(
        self,
        doc: ParsedDoc,
        index: RepoIndex | None,
        rel: str | None,
        lang: str | None,
        text: str,
        lines: list[str],
        cursor_line: int,
        uri: str | None,
    ) -> list[Snippet]:
        out: list[Snippet] = []
        if index is not None:
            if self._cache_gen.get(index.root) != index.generation:
                self._resolve_cache.clear()
                self._cache_gen[index.root] = index.generation
            root = doc.window_root()  # imports sit lines away from the typing: the shifted tree has them
            imports = doc.memo.get("imports")
            if imports is None:
                imports = doc.memo["imports"] = extract_imports(root, lang) if root is not None and lang else []
            occ = occurrences(text, lines, cursor_line)
            bases = enclosing_class_bases(lines, cursor_line) if lang == "python" else None
            out += definition_snippets(
                index,
                rel,
                lang,
                imports,
                occ,
                self._resolve_cache,
                bases,
                use_imports="imports" in self.sources,
                use_symbols="symbols" in self.sources,
                receivers=receiver_types(lines, cursor_line),
            )
            if "similar" in self.sources:
                query = "\n".join(lines[max(0, cursor_line - 25) : cursor_line + 6])
                out += similar_snippets(index, query, rel, k=4)
        if "recent" in self.sources and index is not None:
            out += recent_snippets(self.recent, self.docs, self._scope, uri, index)
        return dedup(out)
