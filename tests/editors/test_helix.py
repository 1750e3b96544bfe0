"""The Helix path: a real LSP client (pytest-lsp) that, like Helix, announces no inline completion, against
`codeassist lsp` and the real local model server. It must get the suggestion as one completion item."""

from __future__ import annotations

import asyncio
import json
import sys
import tomllib
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

REPO = Path(__file__).resolve().parents[2]
LSP_COMMAND = [sys.executable, "-m", "codeassist.client.cli", "lsp"]

# An astral character before the word: one code point, two UTF-16 units, four UTF-8 bytes.
PREFIX = '    s = "😀"; return fib'
TEXT = f'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n{PREFIX}'
WORD_START = PREFIX.index("fib")


def helix_capabilities(encodings: list[str] | None) -> types.ClientCapabilities:
    """What Helix announces for completion (no textDocument.inlineCompletion)."""
    return types.ClientCapabilities(
        general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind(e) for e in encodings])
        if encodings
        else None,
        text_document=types.TextDocumentClientCapabilities(
            synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
            completion=types.CompletionClientCapabilities(
                completion_item=types.ClientCompletionItemOptions(
                    snippet_support=True,
                    insert_replace_support=True,
                    deprecated_support=True,
                    resolve_support=types.ClientCompletionItemResolveOptions(
                        properties=["documentation", "detail", "additionalTextEdits"]
                    ),
                    documentation_format=[types.MarkupKind.Markdown],
                ),
                completion_item_kind=types.ClientCompletionItemOptionsKind(),
            ),
        ),
        workspace=types.WorkspaceClientCapabilities(
            workspace_folders=True, execute_command=types.ExecuteCommandClientCapabilities()
        ),
    )


def column(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-16":
        return len(text.encode("utf-16-le")) // 2
    return len(text)


@pytest.mark.parametrize(
    "encodings", [None, ["utf-8", "utf-32", "utf-16"], ["utf-32"]], ids=["utf-16-default", "helix-utf-8", "utf-32"]
)
async def test_completion_item_for_a_client_without_inline_completion(
    encodings: list[str] | None, daemon_env, tmp_path: Path
) -> None:
    client: LanguageClient = await ClientServerConfig(server_command=LSP_COMMAND, server_env=daemon_env.env).start()
    try:
        result = await client.initialize_session(
            types.InitializeParams(
                capabilities=helix_capabilities(encodings),
                root_uri=tmp_path.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=tmp_path.as_uri(), name="proj")],
            )
        )
        caps = result.capabilities
        assert caps.completion_provider is not None, "no completionProvider for a client without inline completion"
        encoding = str(getattr(caps.position_encoding, "value", caps.position_encoding) or "utf-16")
        assert encoding == (encodings[0] if encodings else "utf-16")

        uri = (tmp_path / "fib.py").as_uri()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=TEXT)
            )
        )
        cursor = types.Position(line=4, character=column(PREFIX, encoding))

        items: list[types.CompletionItem] = []
        for _ in range(6):  # a busy CPU model can time out: ask again, as Helix does on the next keystroke
            answer = await client.text_document_completion_async(
                types.CompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=cursor,
                    context=types.CompletionContext(trigger_kind=types.CompletionTriggerKind.Invoked),
                )
            )
            items = answer.items if isinstance(answer, types.CompletionList) else list(answer or [])
            if items:
                break
            await asyncio.sleep(3)
        assert len(items) == 1, f"expected the suggestion as one item, got {items}"
        item = items[0]

        edit = item.text_edit
        assert isinstance(edit, types.TextEdit)
        # The edit replaces the word being typed ("fib"), so Helix's fuzzy filter keeps the item.
        assert edit.range == types.Range(
            start=types.Position(line=4, character=column(PREFIX[:WORD_START], encoding)), end=cursor
        )
        assert edit.new_text.startswith("fib") and len(edit.new_text) > len("fib")
        suggestion = edit.new_text[len("fib") :]
        head, nl, rest = suggestion.partition("\n")
        next_line = rest.strip().split("\n", 1)[0]
        assert item.label == (("fib" + head.strip()) if head.strip() or not nl else f"fib ⏎ {next_line}")[:60]
        assert item.filter_text == edit.new_text
        assert isinstance(item.documentation, types.MarkupContent)
        assert item.documentation.kind == types.MarkupKind.Markdown
        assert edit.new_text in item.documentation.value

        # Accepting runs the item's command: the daemon learns the acceptance.
        assert item.command is not None and item.command.command == "codeassist.accept"
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments)
        )
        for _ in range(50):
            counters = json.loads(daemon_env.run("status", "--json").stdout).get("counters", {})
            if counters.get("accepted"):
                break
            await asyncio.sleep(0.1)
        assert counters.get("accepted") == 1, counters
    finally:
        await client.shutdown_session()


def test_helix_snippet_adds_codeassist_to_every_listed_language() -> None:
    config = tomllib.loads((REPO / "editors" / "helix" / "languages.toml").read_text())
    server = config["language-server"]["codeassist"]
    assert server["command"] == "codeassist" and server["args"] == ["lsp"]
    names = [lang["name"] for lang in config["language"]]
    assert len(names) == len(set(names)) and "python" in names
    for lang in config["language"]:
        assert lang["language-servers"][-1] == "codeassist", lang
        assert len(lang["language-servers"]) >= 2, f"{lang['name']}: keep the language's own server(s)"
