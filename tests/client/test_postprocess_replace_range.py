"""Replace ranges (issue 16, item 6): a completion that writes the editor's auto-inserted closers itself
replaces them — counted by ``postprocess.replace_range``, carried as ``replace_suffix_chars``, and sent by the
LSP bridge as the inline item's ``range`` and the completion fallback's ``textEdit`` range."""

from __future__ import annotations

from pathlib import Path

import pytest
from codeassist.client.postprocess import FilterContext, replace_range
from codeassist.client.result import CompletionResult
from codeassist.lsp.server import completion_item, replace_end
from codeassist.serverkit.standin import StandinBehaviour
from lsprotocol import types

from tests.lsp_client import inline_at, open_doc, start_client


def _at(marked: str) -> tuple[str, int]:
    return marked.replace("|", ""), marked.index("|")


@pytest.mark.parametrize(
    ("document", "completion", "expected"),
    [
        ("console.log(|)", '"hi");', 1),
        ('print("|")', 'done").strip()', 2),
        ("s.on('data', (d) => {|})", "\n  push(d);\n});", 2),
        ("fn main() {|}", "\n    run();\n}", 1),
        ("go func() {|}", "\n\tserve()\n}()", 1),
        ("foo(|)", "a, b", 0),  # leaves the call open: the editor's ) is still needed
        ("foo(|)", "a, b)", 1),
        ("x = |", "1", 0),  # nothing after the cursor
        ("if (|) {", "ok", 0),  # the rest is not only closers
        ("foo(|) + 1", "a)", 0),
    ],
)
def test_for_document(document: str, completion: str, expected: int) -> None:
    text, offset = _at(document)
    assert replace_range.for_document(completion, text, offset) == expected


def test_only_the_cursor_line_counts() -> None:
    ctx = FilterContext(prefix="items.map((x) => {", suffix="})\nrest()\n", multiline=True, language="javascript")
    assert replace_range.suffix_chars("\n  return x;\n})", ctx) == 2
    assert replace_range.suffix_chars("\n  return x;\n", ctx) == 0


def test_result_carries_the_count() -> None:
    assert CompletionResult(text="x").as_dict()["replace_suffix_chars"] == 0
    assert CompletionResult(text='"hi");', replace_suffix_chars=1).as_dict()["replace_suffix_chars"] == 1


def test_bridge_ranges() -> None:
    text = 'console.log()\nnext("é")\n'
    pos = types.Position(line=0, character=12)
    assert replace_end(text, 12, pos, {"replace_suffix_chars": 1}, "utf-16") == types.Position(line=0, character=13)
    assert replace_end(text, 12, pos, {"replace_suffix_chars": 0}, "utf-16") == pos
    assert replace_end(text, 12, pos, {}, "utf-16") == pos  # an older daemon
    # never past the cursor's line, whatever the daemon said
    assert replace_end(text, 12, pos, {"replace_suffix_chars": 40}, "utf-16") == types.Position(line=0, character=13)
    item = completion_item(text, 12, pos, {"text": '"hi");', "id": "c1", "replace_suffix_chars": 1}, "utf-16")
    assert item.text_edit.range.start == pos and item.text_edit.range.end == types.Position(line=0, character=13)
    assert item.text_edit.new_text == '"hi");'


@pytest.mark.parametrize("inline", [True, False])
async def test_real_bridge_and_daemon_send_the_range(daemon_env_factory, standin, tmp_path: Path, inline: bool) -> None:
    """Bridge -> daemon -> (scripted server answering ``"ready");``) -> filters: the item replaces the ``)``."""
    standin.behaviour = StandinBehaviour(tokens=['"rea', 'dy");'])
    env = daemon_env_factory(standin.base_url)
    client, _ = await start_client(env.env, tmp_path, inline=inline)
    try:
        uri = open_doc(client, tmp_path / "main.js", "console.log()\n", language="javascript")
        if inline:
            result = await inline_at(client, uri, 0, 12)
            assert result is not None and len(result.items) == 1
            item = result.items[0]
            assert item.insert_text == '"ready");'
            assert item.range == types.Range(
                start=types.Position(line=0, character=12), end=types.Position(line=0, character=13)
            )
        else:
            result = await client.text_document_completion_async(
                types.CompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=0, character=12)
                )
            )
            assert isinstance(result, types.CompletionList) and len(result.items) == 1
            edit = result.items[0].text_edit
            assert isinstance(edit, types.TextEdit) and edit.new_text == '"ready");'
            assert edit.range.end == types.Position(line=0, character=13)
    finally:
        await client.shutdown_session()
