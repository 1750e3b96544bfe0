"""The LSP bridge: a pygls server on stdio that mirrors documents to the daemon and asks it for completions.

It keeps its own copy of each open document so incremental edits can be forwarded as code-point
offsets (the daemon never sees LSP positions) and so a restarted daemon can be re-primed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

from codeassist.client.daemon_client import DaemonUnavailable, connect
from codeassist.client.protocol import DaemonError, RpcConnection
from codeassist.client.version import VERSION
from codeassist.lsp.log_format import configure_logging, one_line
from codeassist.lsp.positions import PositionError, offset_to_position, position_to_offset
from codeassist.lsp.protocol import BridgeProtocol
from codeassist.lsp.stdio import run_stdio
from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcMethodNotFound
from pygls.lsp.server import LanguageServer

__all__ = ["BridgeServer", "create_server"]

log = logging.getLogger(__name__)

ACCEPT_COMMAND = "codeassist.accept"


def _request_timeout() -> float:
    """The bridge gives up on the daemon a little after the daemon gives up on the server: never a hang."""
    if "CODEASSIST_BRIDGE_TIMEOUT" in os.environ:
        return float(os.environ["CODEASSIST_BRIDGE_TIMEOUT"])
    from codeassist.client.config import ConfigError, load_config

    try:
        return load_config().total_timeout + 5.0
    except ConfigError:
        return 20.0


@dataclass
class _Doc:
    text: str
    language: str
    version: int


class BridgeServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("codeassist", VERSION, protocol_cls=BridgeProtocol)
        self.docs: dict[str, _Doc] = {}
        self.roots: list[str] = []
        self._daemon: RpcConnection | None = None
        self._daemon_lock = asyncio.Lock()
        self._warned: set[str] = set()
        self.request_timeout = _request_timeout()

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        # pygls's reader dies on some input (see lsp/stdio.py); this one answers it instead.
        run_stdio(self, stdin, stdout)

    def report_server_error(self, error: Exception, source: Any) -> None:
        if isinstance(error, JsonRpcMethodNotFound):
            return  # already answered and logged
        log.error("%s: %s", getattr(source, "__name__", source), one_line(error))

    @property
    def encoding(self) -> str:
        enc = self.workspace.position_encoding if self.protocol._workspace else "utf-16"
        return str(getattr(enc, "value", enc) or "utf-16")

    # -- daemon connection ----------------------------------------------------------------------
    async def daemon(self) -> RpcConnection:
        async with self._daemon_lock:
            if self._daemon is None or self._daemon.closed.is_set():
                self._daemon = await connect(on_notification=self._on_daemon_notification)
                # A fresh daemon knows nothing: replay roots and open documents.
                self._daemon.notify("workspace/roots", {"roots": self.roots})
                for uri, doc in self.docs.items():
                    self._daemon.notify(
                        "doc/open", {"uri": uri, "text": doc.text, "language": doc.language, "version": doc.version}
                    )
            return self._daemon

    async def notify_daemon(self, method: str, params: dict[str, Any]) -> None:
        try:
            (await self.daemon()).notify(method, params)
        except (DaemonUnavailable, ConnectionError) as exc:
            self.warn_once("daemon", f"codeassist: daemon unavailable ({exc})")

    async def request_daemon(self, method: str, params: dict[str, Any]) -> Any:
        for attempt in (1, 2):
            conn = await self.daemon()
            try:
                return await asyncio.wait_for(conn.request(method, params), self.request_timeout)
            except ConnectionError:
                if attempt == 2:
                    raise
        return None

    async def _on_daemon_notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "window/showMessage":
            self.window_show_message(
                types.ShowMessageParams(type=types.MessageType(params.get("type", 3)), message=params["message"])
            )

    def warn_once(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        with contextlib.suppress(Exception):
            self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))

    # -- completion ----------------------------------------------------------------------------
    def offset_of(self, uri: str, position: types.Position) -> tuple[_Doc, int]:
        doc = self.docs.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"document not open: {uri}")
        try:
            return doc, position_to_offset(doc.text, position.line, position.character, self.encoding)
        except PositionError as exc:
            raise JsonRpcInvalidParams(f"bad position {position.line}:{position.character}: {exc}") from None

    async def complete(self, uri: str, offset: int) -> dict[str, Any] | None:
        try:
            result = await self.request_daemon("complete", {"uri": uri, "offset": offset})
        except (TimeoutError, DaemonUnavailable, ConnectionError, DaemonError) as exc:
            log.warning("completion failed: %r", exc)
            self.warn_once("complete", f"codeassist: no completion ({exc or type(exc).__name__})")
            return None
        # Outages (no endpoint reachable) are announced by the daemon itself, once per outage.
        if result and result.get("error") and not str(result["error"]).startswith("connect:"):
            self.warn_once("server", f"codeassist: model server problem: {result['error']}")
        return result


def create_server() -> BridgeServer:
    server = BridgeServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: BridgeServer, params: types.InitializeParams) -> None:
        folders = params.workspace_folders or []
        ls.roots = [f.uri for f in folders] or ([params.root_uri] if params.root_uri else [])
        inline = params.capabilities.text_document and params.capabilities.text_document.inline_completion
        if inline is not None and os.environ.get("CODEASSIST_LSP_COMPLETION") != "always":
            # Editors with ghost text should not also get the suggestion in their popup.
            ls.protocol.fm.features.pop(types.TEXT_DOCUMENT_COMPLETION, None)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: BridgeServer, params: types.InitializedParams) -> None:
        await ls.notify_daemon("workspace/roots", {"roots": ls.roots})

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def folders_changed(ls: BridgeServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
        removed = {f.uri for f in params.event.removed}
        ls.roots = [r for r in ls.roots if r not in removed] + [f.uri for f in params.event.added]
        await ls.notify_daemon("workspace/roots", {"roots": ls.roots})

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: BridgeServer, params: types.DidOpenTextDocumentParams) -> None:
        td = params.text_document
        ls.docs[td.uri] = _Doc(td.text, td.language_id, td.version)
        await ls.notify_daemon(
            "doc/open", {"uri": td.uri, "text": td.text, "language": td.language_id, "version": td.version}
        )

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: BridgeServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        doc = ls.docs.get(uri)
        if doc is None:
            log.warning("change for unopened document %s", uri)
            return
        edits: list[tuple[int, int, str]] = []
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                r = change.range
                try:
                    start = position_to_offset(doc.text, r.start.line, r.start.character, ls.encoding, strict=False)
                    end = position_to_offset(doc.text, r.end.line, r.end.character, ls.encoding, strict=False)
                except PositionError:
                    # A line past the end: resync the whole document rather than lose the edit.
                    log.warning("edit outside %s; resyncing", uri)
                    start, end = len(doc.text), len(doc.text)
                doc.text = doc.text[:start] + change.text + doc.text[end:]
                edits.append((start, end, change.text))
            else:
                edits.append((0, len(doc.text), change.text))
                doc.text = change.text
        doc.version = params.text_document.version
        await ls.notify_daemon("doc/change", {"uri": uri, "version": doc.version, "edits": edits})

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: BridgeServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.docs.pop(params.text_document.uri, None)
        await ls.notify_daemon("doc/close", {"uri": params.text_document.uri})

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: BridgeServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        uri = params.text_document.uri
        doc, offset = ls.offset_of(uri, params.position)
        text = doc.text  # as the daemon sees it: the closers the answer replaces are counted in this text
        result = await ls.complete(uri, offset)
        if not result or not result.get("text"):
            return types.InlineCompletionList(items=[])
        pos = params.position
        item = types.InlineCompletionItem(
            insert_text=result["text"],
            range=types.Range(start=pos, end=replace_end(text, offset, pos, result, ls.encoding)),
            command=types.Command(title="Accept", command=ACCEPT_COMMAND, arguments=[result["id"]]),
        )
        return types.InlineCompletionList(items=[item])

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(ls: BridgeServer, params: types.CompletionParams) -> types.CompletionList:
        uri = params.text_document.uri
        doc, offset = ls.offset_of(uri, params.position)
        result = await ls.complete(uri, offset)
        if not result or not result.get("text"):
            return types.CompletionList(is_incomplete=True, items=[])
        formats = (
            get_capability(ls.client_capabilities, "text_document.completion.completion_item.documentation_format", [])
            or []
        )
        item = completion_item(
            doc.text, offset, params.position, result, ls.encoding, markdown=types.MarkupKind.Markdown in formats
        )
        return types.CompletionList(is_incomplete=True, items=[item])

    @server.command(ACCEPT_COMMAND)
    async def accept(ls: BridgeServer, *args: Any) -> None:
        # pygls 2 spreads the command's arguments over the handler's parameters: [completion_id] or
        # [completion_id, accepted_chars] (partial accept).
        completion_id = args[0] if args else None
        accepted_chars = args[1] if len(args) > 1 else None
        await ls.notify_daemon("accept", {"id": completion_id, "chars": accepted_chars})

    return server


def replace_end(
    text: str, offset: int, position: types.Position, result: dict[str, Any], encoding: str
) -> types.Position:
    """Where the answer's edit ends: past the editor's closers the completion replaces (``console.log(|)`` +
    ``"hi");``), never past the cursor's line; the cursor itself when it replaces nothing."""
    n = result.get("replace_suffix_chars") or 0
    eol = text.find("\n", offset)
    end = min(offset + n, len(text) if eol < 0 else eol)
    if end <= offset:
        return position
    line, char = offset_to_position(text, end, encoding)
    return types.Position(line=line, character=char)


def completion_label(word: str, suggestion: str) -> str:
    """The popup's one line: the word and the suggestion's first line; one that starts on the next line (at a
    line end) says so, rather than gluing that line to the word."""
    head, nl, rest = suggestion.partition("\n")
    if head.strip() or not nl:
        return (word + (head.strip() or suggestion.strip()))[:60]
    next_line = rest.strip().split("\n", 1)[0]
    return f"{word} ⏎ {next_line}"[:60]


def completion_item(
    text: str, offset: int, position: types.Position, result: dict[str, Any], encoding: str, markdown: bool = True
) -> types.CompletionItem:
    """The whole suggestion as one popup item (Helix): the edit starts at the word being typed so the
    editor's fuzzy filter keeps the item."""
    start = offset
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    word = text[start:offset]
    line, char = offset_to_position(text, start, encoding)
    suggestion = result["text"]
    label = completion_label(word, suggestion)
    return types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Text,
        detail="codeassist",
        documentation=(
            types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{word}{suggestion}\n```")
            if markdown
            else types.MarkupContent(kind=types.MarkupKind.PlainText, value=word + suggestion)
        ),
        filter_text=word + suggestion,
        sort_text="0",
        text_edit=types.TextEdit(
            range=types.Range(
                start=types.Position(line=line, character=char),
                end=replace_end(text, offset, position, result, encoding),
            ),
            new_text=word + suggestion,
        ),
        command=types.Command(title="Accept", command=ACCEPT_COMMAND, arguments=[result["id"]]),
    )


TTY_HINT = (
    "codeassist lsp speaks the Language Server Protocol to an editor over stdin/stdout; it is not for a "
    "terminal. To try codeassist here: `codeassist demo`, or `codeassist complete FILE:LINE:COL`; "
    "editor setup: see the README's Editors section."
)


def main() -> int:
    if sys.stdin.isatty():  # a person ran it by hand: say what it is instead of waiting silently for LSP frames
        print(TTY_HINT, file=sys.stderr)
        return 2
    configure_logging()
    create_server().start_io()
    return 0
