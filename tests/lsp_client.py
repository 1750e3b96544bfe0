"""Start a real LSP client (pytest-lsp) against `codeassist lsp` over stdio."""

from __future__ import annotations

import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

LSP_COMMAND = [sys.executable, "-m", "codeassist.client.cli", "lsp"]


def capabilities(inline: bool = True, encodings: list[str] | None = None) -> types.ClientCapabilities:
    td = types.TextDocumentClientCapabilities(
        synchronization=types.TextDocumentSyncClientCapabilities(),
        completion=types.CompletionClientCapabilities(),
        inline_completion=types.InlineCompletionClientCapabilities() if inline else None,
    )
    general = (
        types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind(e) for e in encodings])
        if encodings
        else None
    )
    return types.ClientCapabilities(text_document=td, general=general)


async def start_client(
    env: dict[str, str], root: Path, inline: bool = True, encodings: list[str] | None = None
) -> tuple[LanguageClient, types.InitializeResult]:
    client = await ClientServerConfig(server_command=LSP_COMMAND, server_env=env).start()
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(inline, encodings),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        )
    )
    return client, result


def open_doc(client: LanguageClient, path: Path, text: str, language: str = "python", version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)
        )
    )
    return uri


async def inline_at(client: LanguageClient, uri: str, line: int, character: int) -> types.InlineCompletionList:
    return await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
    )
