"""Through real LSP clients (pytest-lsp over stdio) and a real daemon process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from lsprotocol import types

from tests.lsp_client import inline_at, open_doc, start_client

SAMPLE = '''def rectangle_area(width: float, height: float) -> float:
    """Return the area of a rectangle."""
    return '''


def stats(env) -> dict:
    out = env.run("stats", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


async def test_typing_through_across_two_editors_sharing_one_daemon(daemon_env, tmp_path: Path) -> None:
    a, _ = await start_client(daemon_env.env, tmp_path)
    b, _ = await start_client(daemon_env.env, tmp_path)
    try:
        path = tmp_path / "shapes.py"
        uri = open_doc(a, path, SAMPLE)
        first = await inline_at(a, uri, 2, 11)
        for _ in range(2):  # a loaded machine can time out a request; the same prompt is asked again
            if first.items:
                break
            first = await inline_at(a, uri, 2, 11)
        assert first.items, "the real model gave no completion"
        shown = first.items[0].insert_text
        assert isinstance(shown, str) and len(shown) >= 2
        # wait for the speculation so the request count below is stable
        for _ in range(200):
            s = stats(daemon_env)
            if s["counts"]["upstream_requests"] >= 2:
                break
            await asyncio.sleep(0.05)
        before = stats(daemon_env)["counts"]
        # The second editor has the same file open and types the first characters of the suggestion.
        open_doc(b, path, SAMPLE)
        typed = shown[:2]
        for i, ch in enumerate(typed):
            pos = types.Position(line=2, character=11 + i)
            b.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2 + i),
                    content_changes=[
                        types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text=ch)
                    ],
                )
            )
        second = await inline_at(b, uri, 2, 11 + len(typed))
        # the rest of what was shown (and, at a line end, the next line that streamed into the cache after it)
        assert second.items and second.items[0].insert_text.startswith(shown[len(typed) :])
        after = stats(daemon_env)["counts"]
        assert after["typed_through"] == before["typed_through"] + 1
        assert (
            after["upstream_requests"] - after["prefetch_requests"]
            == before["upstream_requests"] - before["prefetch_requests"]
        )  # no interactive request went out
        # accepting through the item command is counted
        await b.workspace_execute_command_async(
            types.ExecuteCommandParams(command="codeassist.accept", arguments=[second.items[0].command.arguments[0]])
        )
        for _ in range(100):
            if stats(daemon_env)["counts"]["accepted"] == 1:
                break
            await asyncio.sleep(0.05)
        assert stats(daemon_env)["counts"]["accepted"] == 1
    finally:
        await a.shutdown_session()
        await b.shutdown_session()


async def test_lsp_cancel_request_closes_upstream_stream(daemon_env_factory, standin, tmp_path: Path) -> None:
    standin.behaviour.ttft_s = 4
    env = daemon_env_factory(standin.base_url)
    client, _ = await start_client(env.env, tmp_path)
    try:
        uri = open_doc(client, tmp_path / "x.py", "x = ")
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=0, character=4),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
        fut = client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="req-1")
        for _ in range(300):
            if standin.stats.requests:
                break
            await asyncio.sleep(0.02)
        assert standin.stats.requests, "the request never reached the server"
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="req-1"))
        for _ in range(150):
            if standin.stats.disconnected:
                break
            await asyncio.sleep(0.02)
        assert standin.stats.disconnected == 1  # the server saw the stream closed, well before its 4 s
        assert standin.stats.completed == 0
        fut.cancel()
        assert stats(env)["counts"]["cancelled"] >= 1
    finally:
        await client.shutdown_session()
