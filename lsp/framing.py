"""LSP base-protocol framing that no input can crash or stall, with bounded memory.

A frame is a header block ("Name: value" lines ending in CRLF, or a bare LF, closed by an empty
line) holding exactly one Content-Length of at most MAX_BODY, then that many bytes of body. Header
names are case-insensitive, headers other than Content-Length are ignored (the body is always
UTF-8) and whitespace between frames is skipped.

Anything else is reported once as a FramingError and the reader resynchronises: it drops input up
to the next "Content-Length" token (any case) after the start of the bad block. A JSON body can only
hold that token inside a string, where it cannot be followed by the raw line break a header needs,
so a skipped body never yields a false frame. Input that ends inside a frame yields Truncated.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

__all__ = ["MAX_BODY", "MAX_HEADER", "FrameReader", "FramingError", "Truncated"]

MAX_BODY = 64 * 1024 * 1024  # a whole document travels on didOpen; the daemon's line limit matches
MAX_HEADER = 8 * 1024
CHUNK = 64 * 1024
MAX_READ = 1024 * 1024  # one read while a large body is coming in

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

_WHITESPACE = b" \t\r\n"
_BLOCK_END = re.compile(rb"\r?\n\r?\n")
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*(.*?)[ \t]*")
_TOKEN = re.compile(rb"content-length", re.IGNORECASE)
_DIGITS = re.compile(rb"[0-9]+")

ReadChunk = Callable[[int], Awaitable[bytes]]  # up to n bytes; b"" at the end of input


@dataclass(frozen=True)
class FramingError:
    """A bad header block or an oversized body: answered with one id-less JSON-RPC error."""

    code: int
    message: str


@dataclass(frozen=True)
class Truncated:
    """The input ended inside a frame: nothing to answer, the stream is over."""

    message: str


class _BadBlock(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def content_length(block: bytes, max_body: int = MAX_BODY) -> int:
    """The body length a header block announces; _BadBlock if the block is not a valid one."""
    length: int | None = None
    first = b""
    for raw in block.split(b"\n"):
        line = raw.removesuffix(b"\r")
        match = _HEADER.fullmatch(line)
        if match is None:
            raise _BadBlock(PARSE_ERROR, f"bad header line {_show(line)}")
        if match.group(1).lower() != b"content-length":
            continue
        value = match.group(2)
        if length is not None and value != first:
            # Resync then finds the second one: with no way to tell which is right, the later wins.
            raise _BadBlock(PARSE_ERROR, "conflicting Content-Length headers")
        first = value
        if not _DIGITS.fullmatch(value):
            raise _BadBlock(PARSE_ERROR, f"Content-Length is not a non-negative integer: {_show(value)}")
        # Compare digit counts first: int() refuses very long digit strings, and needs no huge ints.
        if len(value.lstrip(b"0")) > len(str(max_body)) or int(value) > max_body:
            raise _BadBlock(INVALID_REQUEST, f"Content-Length {_show(value)} exceeds the {max_body} byte limit")
        length = int(value)
    if length is None:
        raise _BadBlock(PARSE_ERROR, "header block without Content-Length")
    return length


def _show(data: bytes, limit: int = 60) -> str:
    text = repr(data[:limit])[1:]
    return text + ("…" if len(data) > limit else "")


class FrameReader:
    """Async iterator of frame bodies (bytes), FramingError and, last, Truncated."""

    def __init__(self, read: ReadChunk, max_body: int = MAX_BODY, max_header: int = MAX_HEADER) -> None:
        self._read = read
        self._max_body = max_body
        self._max_header = max_header
        self._buf = bytearray()
        self._eof = False

    @property
    def buffered(self) -> int:
        """Bytes read from the stream and held, not yet given out as a frame or skipped."""
        return len(self._buf)

    def __aiter__(self) -> AsyncIterator[bytes | FramingError | Truncated]:
        return self._frames()

    async def _fill(self, want: int = CHUNK) -> bool:
        if self._eof:
            return False
        chunk = await self._read(min(max(want, CHUNK), MAX_READ))
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    async def _frames(self) -> AsyncIterator[bytes | FramingError | Truncated]:
        buf = self._buf
        while True:
            if not await self._skip_whitespace():
                return
            block_end = await self._find_block_end()
            if block_end is None:
                if self._eof:
                    yield Truncated(f"input ended inside a header block ({len(buf)} bytes)")
                    return
                yield FramingError(PARSE_ERROR, f"header block longer than {self._max_header} bytes")
                if not await self._resync():
                    return
                continue
            start, end = block_end
            try:
                length = content_length(bytes(buf[:start]), self._max_body)
            except _BadBlock as exc:
                yield FramingError(exc.code, str(exc))
                if not await self._resync():
                    return
                continue
            del buf[:end]
            while len(buf) < length:
                if not await self._fill(length - len(buf)):
                    yield Truncated(f"input ended inside a body ({len(buf)} of {length} bytes)")
                    return
            body = bytes(buf[:length])
            del buf[:length]
            yield body

    async def _skip_whitespace(self) -> bool:
        """Drop whitespace before the next block; False at a clean end of input."""
        buf = self._buf
        while True:
            stripped = len(buf) - len(buf.lstrip(_WHITESPACE))
            if stripped < len(buf):
                del buf[:stripped]
                return True
            buf.clear()
            if not await self._fill():
                return False

    async def _find_block_end(self) -> tuple[int, int] | None:
        """(end of the last header line, start of the body), or None: too long, or end of input."""
        buf = self._buf
        while True:
            match = _BLOCK_END.search(buf, 0, self._max_header + 4)
            if match is not None:
                return match.start(), match.end()
            if len(buf) > self._max_header + 4 or not await self._fill():
                return None

    async def _resync(self) -> bool:
        """Drop input up to the next Content-Length token past the bad block's first byte."""
        buf = self._buf
        pos = 1
        keep = len(b"content-length") - 1  # a token may straddle two reads
        while True:
            match = _TOKEN.search(buf, pos)
            if match is not None:
                del buf[: match.start()]
                return True
            del buf[: max(pos, len(buf) - keep)]
            pos = 0
            if not await self._fill():
                return False
