"""lsp/framing.py: any byte stream becomes frames or single errors, with bounded memory and no hang."""

from __future__ import annotations

import json
import random

import pytest
from codeassist.lsp.framing import CHUNK, MAX_HEADER, FrameReader, FramingError, Truncated

from tests.lsp.fuzz_cases import Fuzzer
from tests.lsp.harness import frame

Item = bytes | FramingError | Truncated


class Feed:
    """Serves a byte string in chunks of seeded random sizes; records the reader's largest buffer."""

    def __init__(self, data: bytes, seed: int = 0, max_chunk: int = 4096) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.rng = random.Random(seed)
        self.max_chunk = max_chunk
        self.reader: FrameReader | None = None
        self.peak = 0

    async def read(self, size: int) -> bytes:
        if self.reader is not None:
            self.peak = max(self.peak, self.reader.buffered)
        n = min(size, self.rng.randint(1, self.max_chunk))
        chunk = bytes(self.data[self.pos : self.pos + n])
        self.pos += len(chunk)
        return chunk


async def frames(data: bytes, seed: int = 0, max_chunk: int = 4096) -> list[Item]:
    feed = Feed(data, seed, max_chunk)
    feed.reader = FrameReader(feed.read)
    return [item async for item in feed.reader]


def body(n: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": n, "method": "x"}).encode()


async def test_frames_survive_any_chunking() -> None:
    bodies = [body(i) for i in range(200)]
    data = b"".join(frame(b) for b in bodies)
    for seed in range(20):
        assert await frames(data, seed, max_chunk=seed + 1) == bodies


@pytest.mark.parametrize("length", [str(2**63), str(2**64), "9" * 5000, str(64 * 1024 * 1024 + 1)])
async def test_absurd_length_is_one_error_then_the_next_frame(length: str) -> None:
    data = f"Content-Length: {length}\r\n\r\n".encode() + body(1) + frame(body(2))
    error, after = await frames(data)
    assert isinstance(error, FramingError) and error.code == -32600 and "exceeds" in error.message
    assert after == body(2)


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: -1\r\n\r\n",
        b"Content-Length: abc\r\n\r\n",
        b"Content-Length: \r\n\r\n",
        b"Content-Length: 1e3\r\n\r\n",
        b"Content-Type: x\r\n\r\n",
        b"garbage\r\n\r\n",
        b"\xff\xfe: 1\r\n\r\n",
        b"X: " + b"a" * (MAX_HEADER + 10) + b"\r\n\r\n",
        b"Content-Length: \xd9\xa1\xd9\xa2\r\n\r\n",
    ],
    ids=["negative", "letters", "empty", "exponent", "missing", "no colon", "bad name", "too long", "arabic"],
)
async def test_bad_header_block_is_one_error_and_its_body_is_skipped(head: bytes) -> None:
    items = await frames(head + body(1) + frame(body(2)))
    assert len(items) == 2 and isinstance(items[0], FramingError) and items[0].code == -32700, items
    assert items[1] == body(2)


async def test_accepted_variants() -> None:
    b = body(1)
    for head in [
        f"content-length: {len(b)}\r\n\r\n",
        f"Content-Length:{len(b)}\n\n",
        f"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: {len(b)}\r\n\r\n",
        f"\r\n\r\n  CONTENT-LENGTH:  {len(b)}  \r\nX-Other: y\r\n\r\n",
    ]:
        assert await frames(head.encode() + b) == [b], head


async def test_repeated_content_length() -> None:
    b = body(1)
    assert await frames(f"Content-Length: {len(b)}\r\ncontent-length: {len(b)}\r\n\r\n".encode() + b) == [b]
    # Conflicting: an error, then resync lands on the second header, which wins.
    items = await frames(f"Content-Length: 3\r\nContent-Length: {len(b)}\r\n\r\n".encode() + b)
    assert isinstance(items[0], FramingError) and items[1:] == [b]


async def test_garbage_between_frames_is_one_error() -> None:
    items = await frames(frame(body(1)) + b"}]junk without a header" + frame(body(2)) + b"\r\n\t " + frame(body(3)))
    assert items[0] == body(1) and isinstance(items[1], FramingError) and items[2:] == [body(2), body(3)]


async def test_empty_body_is_a_frame() -> None:
    assert await frames(b"Content-Length: 0\r\n\r\n" + frame(body(1))) == [b"", body(1)]


@pytest.mark.parametrize("tail", [b'Content-Length: 50\r\n\r\n{"a"', b"Content-Length: 50\r\n", b"Content-Le"])
async def test_end_of_input_inside_a_frame_is_reported_once(tail: bytes) -> None:
    items = await frames(frame(body(1)) + tail)
    assert items[0] == body(1) and len(items) == 2 and isinstance(items[1], Truncated)


async def test_clean_end_of_input() -> None:
    assert await frames(frame(body(1)) + b"\r\n") == [body(1)]
    assert await frames(b"") == []


async def test_token_split_across_reads_is_found() -> None:
    data = b"xx" * 100 + frame(body(1))
    for size in range(1, 20):
        items = await frames(data, max_chunk=size)
        assert isinstance(items[0], FramingError) and items[1:] == [body(1)], size


async def test_memory_stays_bounded_on_endless_garbage() -> None:
    feed = Feed(b"a" * (8 * 1024 * 1024) + b"\n" * 3 + b"b: " * 1_000_000 + frame(body(1)), max_chunk=CHUNK)
    feed.reader = FrameReader(feed.read)
    items = [item async for item in feed.reader]
    assert items[-1] == body(1) and 0 < feed.peak <= MAX_HEADER + 2 * CHUNK


async def test_seeded_fuzz_every_probe_after_a_broken_frame_comes_through() -> None:
    fuzz = Fuzzer(7, "file:///tmp/fuzz.py")
    probes, data = [], bytearray()
    for n in range(3000):
        raw, _ = fuzz.bad_frame()
        probes.append(body(10_000_000 + n))
        data += raw + frame(probes[-1])
    items = await frames(bytes(data), seed=3, max_chunk=1500)
    got = [i for i in items if isinstance(i, bytes) and i in set(probes)]
    assert got == probes
    assert not any(isinstance(i, bytes) and b'"skip' in i for i in items)
