"""Languages: file extension -> tree-sitter grammar, comment syntax and the node kinds the engine cares about."""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import PurePath

from tree_sitter import Language, Parser

__all__ = ["COMMENT", "EXTENSIONS", "comment_prefix", "language_for_path", "parser_for", "ts_language"]

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
}

# LSP language ids that differ from our names.
_LSP_IDS = {"typescriptreact": "tsx", "javascriptreact": "javascript", "c++": "cpp"}

COMMENT: dict[str, str] = {"python": "#"}

_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}


def language_for_path(path: str | PurePath | None, language_id: str = "") -> str | None:
    """Our language name for a file, from its extension (or the editor's language id); None = plain text."""
    if path is not None:
        lang = EXTENSIONS.get(PurePath(path).suffix.lower())
        if lang:
            return lang
    lid = _LSP_IDS.get(language_id, language_id)
    return lid if lid in _GRAMMARS else None


def comment_prefix(lang: str | None) -> str:
    return COMMENT.get(lang or "", "//" if lang else "#")


def path_header(lang: str | None, path: str) -> str:
    """The line above each retrieved snippet in prompts without a file separator token."""
    return f"{comment_prefix(lang)} Path: {path}\n"


@cache
def ts_language(lang: str) -> Language | None:
    spec = _GRAMMARS.get(lang)
    if spec is None:
        return None
    try:
        module = importlib.import_module(spec[0])
    except ImportError:
        return None
    return Language(getattr(module, spec[1])())


def parser_for(lang: str | None) -> Parser | None:
    """A new parser (parsers are not thread-safe, so each owner keeps its own)."""
    language = ts_language(lang) if lang else None
    return Parser(language) if language is not None else None
