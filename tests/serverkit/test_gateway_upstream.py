"""The gateway's own upstream client (httptools, pooled keep-alive) and its cheap token counting."""

from __future__ import annotations

import asyncio
import json

import pytest
from codeassist.serverkit.gateway.proxy import completion_tokens
from codeassist.serverkit.gateway.upstream import UpstreamClient, UpstreamConnectError, UpstreamError
from codeassist.serverkit.standin import StandinBehaviour, StandinServer

BODY = json.dumps({"model": "m", "prompt": "x", "max_tokens": 4, "stream": True}).encode()


async def _serve(handler) -> tuple[asyncio.Server, str, list[int]]:
    conns: list[int] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(1)
        await handler(reader, writer)

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", conns


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    length = lengths[0] if lengths else 0
    await reader.readexactly(length)


async def _start_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the request, then answer a chunked 200 whose first chunk is "hello" (the rest is the caller's)."""
    await _read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
    await writer.drain()


async def test_streams_chunks_and_reuses_the_connection():
    with StandinServer(behaviour=StandinBehaviour(gap_s=0.1, tokens=["a", "b", "c"])) as up:
        client = UpstreamClient()
        for _ in range(3):
            resp = await client.stream("POST", up.base_url + "/completions", BODY)
            chunks = []
            while chunk := await resp.next_chunk():
                chunks.append(chunk)
            resp.close()
            assert resp.status_code == 200 and resp.headers["content-type"] == "text/event-stream"
            assert len(chunks) >= 2 and b"".join(chunks).count(b"data: ") == 4  # streamed, not one blob
        assert up.stats.connections == 1  # keep-alive: one connection for all three
        for _ in range(200):  # the stand-in counts a stream after its last write: the client may read it first
            if up.stats.completed == 3:
                break
            await asyncio.sleep(0.01)
        assert up.stats.completed == 3
        await client.aclose()


async def test_closing_an_unfinished_response_drops_the_connection():
    with StandinServer(behaviour=StandinBehaviour(gap_s=0.2, tokens=[f"t{i}" for i in range(20)])) as up:
        client = UpstreamClient()
        resp = await client.stream("POST", up.base_url + "/completions", BODY.replace(b'"max_tokens": 4', b'"x": 1'))
        assert await resp.next_chunk()
        resp.close()
        for _ in range(100):
            if up.stats.disconnected:
                break
            await asyncio.sleep(0.01)
        assert up.stats.disconnected == 1
        assert (await client.request("GET", up.base_url + "/models"))[0] == 200
        assert up.stats.connections == 2  # the cut connection was not pooled: the next request opened another
        await client.aclose()


async def test_idle_connection_closed_by_the_server_is_retried_once_on_a_new_one():
    async def one_answer_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")  # keep-alive by default…
        await writer.drain()
        await _read_request(reader)
        writer.close()  # …but the next request meets a close, as when an idle timeout fires just then

    server, url, conns = await _serve(one_answer_per_connection)
    async with server:
        client = UpstreamClient()
        assert await client.request("GET", url + "/a") == (200, b"ok")
        assert await client.request("GET", url + "/b") == (200, b"ok")
        assert len(conns) == 2
        await client.aclose()


async def test_silence_is_a_timeout_and_refused_connect_an_error():
    async def head_then_silence(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _start_hello(reader, writer)
        await asyncio.sleep(5)

    server, url, _ = await _serve(head_then_silence)
    async with server:
        client = UpstreamClient(read_timeout_s=0.2)
        resp = await client.stream("POST", url + "/completions", BODY)
        assert await resp.next_chunk() == b"hello"
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(TimeoutError):
            await resp.next_chunk()
        assert 0.15 < loop.time() - t0 < 1.0
        resp.close()
        with pytest.raises(UpstreamConnectError):
            await client.stream("GET", "http://127.0.0.1:9/health")
        await client.aclose()


async def test_upstream_dying_mid_body_raises():
    async def die(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _start_hello(reader, writer)
        writer.transport.abort()

    server, url, _ = await _serve(die)
    async with server:
        client = UpstreamClient()
        resp = await client.stream("POST", url + "/completions", BODY)
        with pytest.raises(UpstreamError):
            while await resp.next_chunk():
                pass
        resp.close()
        await client.aclose()


def test_completion_tokens_counts_events_or_reads_usage_from_the_tail():
    events = b"".join(b'data: {"choices":[{"text":"t"}]}\n\n' for _ in range(5)) + b"data: [DONE]\n\n"
    assert completion_tokens(events.count(b"data: "), events) == 5
    usage = (
        b'data: {"choices":[],"usage":{"prompt_tokens":700,"total_tokens":712,"completion_tokens":12}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert completion_tokens(7, usage) == 12  # the usage event itself is not a token
    assert completion_tokens(0, b"") is None
