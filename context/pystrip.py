"""Cheaper cold parse of Python: function bodies past the docstring become empty lines before tree-sitter sees
them (line numbers unchanged), since the index keeps signatures, docstring heads and class members only."""

from __future__ import annotations

import re

__all__ = ["strip_bodies"]

_DEF = re.compile(rb"[ \t]*(?:async[ \t]+)?def[ \t]")
_DOC = re.compile(rb"[rRbBuUfF]{0,2}(\"\"\"|'''|\"|')")
_TRIPLE = re.compile(rb"\"\"\"|'''")
_OPEN = re.compile(rb"[(\[{]")
_CLOSE = re.compile(rb"[)\]}]")


def _string_state(lines: list[bytes]) -> list[bytes | None]:
    """Per line, the triple quote it starts inside of (None: outside any triple-quoted string)."""
    state: bytes | None = None
    out: list[bytes | None] = []
    for line in lines:
        out.append(state)
        if b'"""' in line or b"'''" in line:
            for m in _TRIPLE.finditer(line):
                q = m.group()
                if state is None:
                    state = q
                elif state == q:
                    state = None
    return out


def _indent(line: bytes) -> int:
    return len(line) - len(line.lstrip(b" \t"))


def strip_bodies(data: bytes) -> bytes:
    """``data`` with the statements of every function body after its docstring turned into empty lines (the
    first statement becomes ``pass`` when there is no docstring). A heuristic over lines and triple quotes: the
    caller re-parses the original when the result does not parse cleanly."""
    lines = data.split(b"\n")
    n = len(lines)
    state = _string_state(lines)
    i = 0
    changed = False
    while i < n:
        line = lines[i]
        if state[i] is not None or not _DEF.match(line):
            i += 1
            continue
        ind = _indent(line)
        depth, j, code = 0, i, b""  # the header may span lines (open brackets); it ends with a ':'
        while j < n and j - i < 60:
            code = lines[j]
            if b"#" in code and b"'" not in code and b'"' not in code:
                code = code.split(b"#", 1)[0]
            depth += len(_OPEN.findall(code)) - len(_CLOSE.findall(code))
            if depth <= 0:
                break
            j += 1
        if j >= n or j - i >= 60:
            break
        if not code.rstrip().endswith(b":"):  # a one-line body (def f(): ...) or something unexpected
            i = j + 1
            continue
        k = j + 1  # first body statement (comments before it belong to the signature's text)
        while k < n and (not lines[k].strip() or lines[k].lstrip().startswith(b"#")):
            k += 1
        if k >= n or _indent(lines[k]) <= ind or state[k] is not None:
            i = j + 1
            continue
        end = k + 1  # end of the body: first code line at or left of the def's indentation, outside strings
        while end < n:
            s = lines[end]
            body = s.lstrip(b" \t")
            if body and state[end] is None and len(s) - len(body) <= ind and not body.startswith(b"#"):
                break
            end += 1
        keep = end  # comments (and blank lines) left of the body that lead the next definition: keep them
        while keep - 1 > k and (not lines[keep - 1].strip() or lines[keep - 1].lstrip(b" \t").startswith(b"#")):
            keep -= 1
            if lines[keep].strip() and _indent(lines[keep]) <= ind:
                end = keep
        first = lines[k].lstrip(b" \t")
        m = _DOC.match(first)
        if m:  # keep the docstring
            q = m.group(1)
            d = k + 1
            if len(q) == 3 and first.count(q) < 2:
                while d < end and state[d] is not None:
                    d += 1
                d = min(d, end)
            start = d
        else:
            lines[k] = lines[k][: _indent(lines[k])] + b"pass"
            start = k + 1
        for x in range(start, end):
            lines[x] = b""
        changed = True
        i = end
    return b"\n".join(lines) if changed else data
