"""The HTTP transport against the scripted stand-in server (exact timings and faults)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from codeassist.client.transport import HttpTransport, TransportError
from codeassist.client.transport.base import CompletionParams
from codeassist.serverkit.standin import StandinBehaviour

PARAMS = CompletionParams(prompt="x", model="m", max_tokens=16, stop=("\n\n",), priority="prefetch")


async def _collect(t: HttpTransport) -> str:
    return "".join([c.text async for c in t.stream(PARAMS)])


async def test_streams_text_and_sends_fim_fields(standin) -> None:
    standin.behaviour = StandinBehaviour(tokens=["a", "b", "c"])
    t = HttpTransport(standin.base_url)
    try:
        timings: dict[str, float] = {}
        assert "".join([c.text async for c in t.stream(PARAMS, timings)]) == "abc"
        req = standin.stats.requests[-1]
        assert req["stream"] is True and req["stop"] == ["\n\n"] and "suffix" not in req
        assert standin.stats.headers[-1]["x-priority"] == "prefetch"
        assert 0 < timings["ttft_ms"] <= timings["total_ms"]
        assert await t.models() == ["standin-model"]
    finally:
        await t.aclose()


async def test_llama_server_known_from_its_header_before_any_timings(standin) -> None:
    # a stream closed after its first piece carries no `timings`; llama-server's Server header says who answers
    t = HttpTransport(standin.base_url)
    try:
        for server, llama in ((None, False), ("llama.cpp", True)):
            standin.behaviour = StandinBehaviour(tokens=["a", "b"], server=server)
            timings: dict[str, float] = {}
            async with contextlib.aclosing(t.stream(PARAMS, timings)) as chunks:
                async for _ in chunks:
                    break
            assert ("server_llama" in timings) is llama
    finally:
        await t.aclose()


async def test_slots_only_from_llama_server_on_this_machine(standin) -> None:
    t = HttpTransport(standin.base_url)
    far = HttpTransport("http://192.0.2.1:9/v1", connect_timeout=5)  # TEST-NET: a connect would hang, not fail
    try:
        assert await t.slots() == 0  # not llama-server: no /props
        standin.behaviour = StandinBehaviour(server="llama.cpp", slots=3)
        assert await t.slots() == 3
        standin.behaviour.fault = "loading"
        assert await t.slots() is None  # 503 while its model loads: asked again later, not "none"
        assert await asyncio.wait_for(far.slots(), 0.5) == 0  # another machine's: not even asked
        down = HttpTransport("http://127.0.0.1:1/v1")  # nothing listens there: refused
        assert await down.slots() is None  # not known now (asked again at the next request)
        await down.aclose()
    finally:
        await t.aclose()
        await far.aclose()


@pytest.mark.parametrize(("fault", "kind"), [("500", "http"), ("401", "auth"), ("hang", "first_token_timeout")])
async def test_faults_become_typed_errors(standin, fault: str, kind: str) -> None:
    standin.behaviour = StandinBehaviour(fault=fault)
    t = HttpTransport(standin.base_url, first_token_timeout=0.3, total_timeout=2)
    try:
        with pytest.raises(TransportError) as exc:
            await _collect(t)
        assert exc.value.kind == kind
    finally:
        await t.aclose()


async def test_total_timeout_while_streaming(standin) -> None:
    standin.behaviour = StandinBehaviour(tokens=["a"] * 50, gap_s=0.1)
    t = HttpTransport(standin.base_url, first_token_timeout=1, total_timeout=0.5)
    try:
        with pytest.raises(TransportError) as exc:
            await _collect(t)
        assert exc.value.kind == "total_timeout"
    finally:
        await t.aclose()


async def test_dropped_stream_is_a_connect_error(standin) -> None:
    standin.behaviour = StandinBehaviour(tokens=["a"] * 6, fault="drop")
    t = HttpTransport(standin.base_url)
    try:
        with pytest.raises(TransportError):
            await _collect(t)
    finally:
        await t.aclose()


async def test_cancellation_closes_the_upstream_stream(standin) -> None:
    standin.behaviour = StandinBehaviour(tokens=["a"] * 100, gap_s=0.05)
    t = HttpTransport(standin.base_url)
    try:
        task = asyncio.create_task(_collect(t))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(40):
            if standin.stats.disconnected:
                break
            await asyncio.sleep(0.05)
        assert standin.stats.disconnected == 1 and standin.stats.completed == 0
    finally:
        await t.aclose()


async def test_connection_is_reused(standin) -> None:
    standin.behaviour = StandinBehaviour(tokens=["a"])
    t = HttpTransport(standin.base_url)
    try:
        for _ in range(3):
            await _collect(t)
        assert t.connections() == 1
    finally:
        await t.aclose()


async def test_a_reused_connection_the_server_dropped_is_retried_once() -> None:
    """A scripted stand-in that answers the first request on a connection, then closes it on the second
    without a response (what a server's keep-alive timeout looks like mid-race): not an outage."""
    body = b'data: {"choices":[{"text":"ok","finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    connections = 0

    async def read_request(reader: asyncio.StreamReader) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(v)
            for k, _, v in (line.partition(b":") for line in head.split(b"\r\n"))
            if k.lower() == b"content-length"
        )
        await reader.readexactly(length)
        return True

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            await read_request(reader)
            writer.write(answer)
            await writer.drain()
            await read_request(reader)  # the second request on this connection: hang up instead
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    t = HttpTransport(f"http://127.0.0.1:{port}/v1")
    try:
        assert await _collect(t) == "ok"
        assert await _collect(t) == "ok"  # the reused connection is dropped; the retry gets a fresh one
        assert connections == 2
    finally:
        await t.aclose()
        server.close()
