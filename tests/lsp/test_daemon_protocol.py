"""client/protocol.py: daemon lines are checked before anyone indexes by their id; bad lines are not fatal."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from codeassist.client.protocol import MessageError, RpcConnection, parse_message, write_message

from tests.lsp.fuzz_cases import NULL, Fuzzer, daemon_expected
from tests.lsp.harness import id_key


@pytest.mark.parametrize(
    ("line", "code", "msg_id"),
    [
        (b"{", -32700, None),
        (b"\xff{}", -32700, None),
        (b"NaN", -32700, None),
        (b'{"id": NaN}', -32700, None),
        (b"[" * 100_000, -32700, None),
        (b"[1]", -32600, None),
        (b'{"id": [1], "method": "hello"}', -32600, None),
        (b'{"id": true, "method": "hello"}', -32600, None),
        (b'{"id": 1.5, "method": "hello"}', -32600, None),
        (b'{"id": 4, "method": "cancel", "params": {"id": 1}}', -32600, 4),
        (b'{"method": "cancel", "params": [1]}', -32602, None),
        (b'{"method": "cancel", "params": {"id": {"a": 1}}}', -32602, None),
    ],
)
def test_refused_lines(line: bytes, code: int, msg_id: Any) -> None:
    with pytest.raises(MessageError) as info:
        parse_message(line)
    assert (info.value.code, info.value.id) == (code, msg_id)


@pytest.mark.parametrize(
    "line",
    [
        b'{"id": 1, "method": "hello"}',
        b'{"id": "a", "method": 5}',
        b'{"id": null, "method": "x"}',
        b'{"method": "cancel", "params": {"id": "a"}}',
        b'{"method": "cancel"}',
        b'{"id": 2, "params": 7}\r\n',
    ],
)
def test_accepted_lines(line: bytes) -> None:
    assert parse_message(line) == json.loads(line)


def test_refusals_agree_with_the_contract_on_seeded_fuzz() -> None:
    fuzz = Fuzzer(13, "file:///tmp/d.py")
    for _ in range(20_000):
        line = fuzz.daemon_line()
        try:
            msg = parse_message(line)
        except MessageError as exc:
            assert daemon_expected(line) == [id_key(exc.id) if exc.id is not None else NULL]
            assert daemon_expected(line, echo_rejected=False) == [NULL]
        else:
            assert daemon_expected(line) == ([id_key(msg["id"])] if msg.get("id") is not None else [])


class _Writer:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        pass


def test_lone_surrogates_travel_escaped() -> None:
    writer = _Writer()
    write_message(writer, {"method": "doc/open", "params": {"text": "a\ud800é"}})  # type: ignore[arg-type]
    assert writer.data.endswith(b"\n") and b"\n" not in writer.data[:-1]
    assert parse_message(bytes(writer.data))["params"]["text"] == "a\ud800é"
    writer = _Writer()
    write_message(writer, {"text": "é"})  # type: ignore[arg-type]
    assert writer.data == '{"text":"é"}\n'.encode()


async def test_client_skips_bad_lines_and_bad_notifications() -> None:
    reader = asyncio.StreamReader()
    seen: list[tuple[str, dict[str, Any]]] = []

    def on_notification(method: str, params: dict[str, Any]) -> None:
        seen.append((method, params))
        if method == "boom":
            raise ValueError("bad notification")

    conn = RpcConnection(reader, _Writer(), on_notification=on_notification)  # type: ignore[arg-type]
    first = asyncio.create_task(conn.request("hello"))
    second = asyncio.create_task(conn.request("hello"))
    await asyncio.sleep(0)
    reader.feed_data(
        b'not json\n[1]\n{"id": [1], "result": 1}\n{"method": "boom", "params": 3}\n'
        b'{"method": 5}\n{"id": 1, "error": "text"}\n{"method": "window/showMessage", "params": {}}\n'
        b'{"id": 2, "result": {"ok": true}}\n'
    )
    with pytest.raises(Exception, match="error"):
        await asyncio.wait_for(first, 5)
    assert await asyncio.wait_for(second, 5) == {"ok": True}
    assert seen == [("boom", {}), ("window/showMessage", {})]
    assert not conn.closed.is_set()
    reader.feed_eof()
    await asyncio.wait_for(conn.closed.wait(), 5)
    await conn.aclose()
