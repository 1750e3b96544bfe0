"""lsp/log_format.py: whatever a client sends, one log call is one line, never a traceback."""

from __future__ import annotations

import logging

from codeassist.lsp.log_format import OneLineFormatter, one_line


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("codeassist.lsp", logging.WARNING, __file__, 1, msg, args, info)


def test_one_line_even_with_line_breaks_and_exceptions() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError as exc:
        error = exc
    text = OneLineFormatter().format(_record("method %s\r\nfailed", "x\ny", exc=error))
    assert "\n" not in text and "\r" not in text
    assert "Traceback" not in text and "ValueError: bad\\nvalue" in text


def test_one_line_caps_length() -> None:
    assert one_line("a\nb") == "a\\nb"
    assert len(one_line("x" * 1000)) == 301
