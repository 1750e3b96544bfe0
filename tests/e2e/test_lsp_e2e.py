"""A keystroke in a real LSP client travels bridge -> daemon -> real local model server -> ghost text."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from lsprotocol import types

from tests.conftest import free_port
from tests.lsp_client import inline_at, open_doc, start_client

SAMPLE = '''def rectangle_area(width: float, height: float) -> float:
    """Return the area of a rectangle."""
    return '''


def _direct_completion(model_url: str, prompt: str, max_tokens: int) -> str:
    """What the model itself answers for the prompt, asked without codeassist in between."""
    r = httpx.post(
        f"{model_url}/completions",
        json={"model": "x", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stop": ["\n"]},
        timeout=30,
    )
    return r.json()["choices"][0]["text"]


async def test_inline_completion_from_real_model(daemon_env, local_model_url, tmp_path: Path) -> None:
    client, init = await start_client(daemon_env.env, tmp_path)
    try:
        assert init.capabilities.inline_completion_provider is not None
        # Inline-capable clients must not also get popup items.
        assert init.capabilities.completion_provider is None
        uri = open_doc(client, tmp_path / "shapes.py", SAMPLE)
        result = await inline_at(client, uri, 2, len("    return "))
        assert result is not None and len(result.items) == 1
        item = result.items[0]
        assert isinstance(item.insert_text, str) and item.insert_text.strip()
        assert item.range.start == types.Position(line=2, character=11)
        assert item.command is not None and item.command.command == "codeassist.accept"
        # The text came from the model: it begins what the model says for the same prefix.
        direct = _direct_completion(local_model_url, SAMPLE, 32).rstrip()
        assert direct.startswith(item.insert_text.split("\n")[0][:8])
    finally:
        await client.shutdown_session()


async def test_completion_fallback_for_clients_without_inline(daemon_env, tmp_path: Path) -> None:
    client, init = await start_client(daemon_env.env, tmp_path, inline=False)
    try:
        assert init.capabilities.inline_completion_provider is not None
        assert init.capabilities.completion_provider is not None
        text = SAMPLE + "wid"
        uri = open_doc(client, tmp_path / "shapes.py", text)
        result = await client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=14)
            )
        )
        assert isinstance(result, types.CompletionList) and len(result.items) == 1
        item = result.items[0]
        assert item.text_edit is not None
        # The edit replaces the word being typed, so the editor's filter keeps the item.
        assert item.text_edit.range.start == types.Position(line=2, character=11)
        assert item.text_edit.range.end == types.Position(line=2, character=14)
        assert item.text_edit.new_text.startswith("wid") and len(item.text_edit.new_text) > 3
    finally:
        await client.shutdown_session()


async def test_two_clients_share_one_daemon(daemon_env, tmp_path: Path) -> None:
    a, _ = await start_client(daemon_env.env, tmp_path)
    b, _ = await start_client(daemon_env.env, tmp_path)
    try:
        ua = open_doc(a, tmp_path / "a.py", SAMPLE)
        ub = open_doc(b, tmp_path / "b.py", SAMPLE)
        ra, rb = await asyncio.gather(inline_at(a, ua, 2, 11), inline_at(b, ub, 2, 11))
        assert ra.items and rb.items
        status = json.loads(daemon_env.run("status", "--json").stdout)
        assert status["running"] and status["clients"] == 2
        assert status["documents"] == 2
        # One daemon process: the run lock names it and only one socket exists.
        assert status["pid"] == daemon_env.daemon_pid()
    finally:
        await a.shutdown_session()
        await b.shutdown_session()


async def test_utf8_negotiation_and_astral_positions(daemon_env, tmp_path: Path) -> None:
    client, init = await start_client(daemon_env.env, tmp_path, encodings=["utf-8", "utf-16"])
    try:
        assert init.capabilities.position_encoding == types.PositionEncodingKind.Utf8
        text = 'label = "😀 面积"  # '
        uri = open_doc(client, tmp_path / "u.py", text)
        # In UTF-8 the line is len(text.encode()) units long; a UTF-16 count would be too short.
        result = await inline_at(client, uri, 0, len(text.encode("utf-8")))
        assert result is not None
        with pytest.raises(Exception, match="past the end of line"):
            await inline_at(client, uri, 0, len(text.encode("utf-8")) + 1)
        with pytest.raises(Exception, match="inside a multi-unit character"):
            await inline_at(client, uri, 0, text.encode("utf-8").index("😀".encode()) + 1)
    finally:
        await client.shutdown_session()


async def test_incremental_edits_reach_the_daemon(daemon_env, tmp_path: Path) -> None:
    client, _ = await start_client(daemon_env.env, tmp_path)
    try:
        uri = open_doc(client, tmp_path / "e.py", "x = 1\n")
        # Insert an emoji line then type after it: offsets must survive UTF-16 surrogate pairs.
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(
                            start=types.Position(line=1, character=0), end=types.Position(line=1, character=0)
                        ),
                        text="s = '😀'\nname = ",
                    )
                ],
            )
        )
        result = await inline_at(client, uri, 2, 7)
        assert result is not None
        # Past the end of the document: a clear error, not a crash.
        with pytest.raises(Exception, match="past the end of the document"):
            await inline_at(client, uri, 9, 0)
        # The server is still alive.
        assert await inline_at(client, uri, 2, 7) is not None
    finally:
        await client.shutdown_session()


async def test_dead_server_gives_empty_result_quickly(daemon_env_factory, tmp_path: Path) -> None:
    env = daemon_env_factory(f"http://127.0.0.1:{free_port()}/v1")
    client, _ = await start_client(env.env, tmp_path)
    try:
        uri = open_doc(client, tmp_path / "d.py", SAMPLE)
        t = time.monotonic()
        result = await asyncio.wait_for(inline_at(client, uri, 2, 11), timeout=10)
        assert list(result.items) == []
        assert time.monotonic() - t < 5
        await asyncio.sleep(0.2)
        assert any("codeassist" in m.message for m in client.messages)
    finally:
        await client.shutdown_session()
