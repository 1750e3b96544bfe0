"""Malformed frames and unknown methods get JSON-RPC errors and never kill the bridge."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from typing import Any

from tests.lsp_client import LSP_COMMAND


class RawLsp:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(LSP_COMMAND, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)

    def send_bytes(self, body: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        self.proc.stdin.flush()

    def send(self, msg: dict[str, Any]) -> None:
        self.send_bytes(json.dumps(msg).encode())

    def read(self, timeout: float = 15.0) -> dict[str, Any]:
        out: list[dict[str, Any]] = []

        def reader() -> None:
            assert self.proc.stdout is not None
            length = 0
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                elif line in (b"\r\n", b"\n"):
                    out.append(json.loads(self.proc.stdout.read(length)))
                    return

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        t.join(timeout)
        assert out, "no answer from the bridge"
        return out[0]

    def read_response(self, req_id: Any) -> dict[str, Any]:
        while True:
            msg = self.read()
            if "method" not in msg and msg.get("id") == req_id:
                return msg


def test_malformed_messages_get_errors_and_bridge_survives(daemon_env, tmp_path) -> None:
    lsp = RawLsp(daemon_env.env)
    try:
        lsp.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {}}})
        assert "capabilities" in lsp.read_response(1)["result"]
        lsp.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})

        lsp.send_bytes(b'{"jsonrpc": "2.0", "id": 2, "method": ')  # truncated JSON
        err = lsp.read_response(None)
        assert err["error"]["code"] == -32700

        lsp.send({"jsonrpc": "2.0", "id": 3, "method": "no/suchMethod", "params": {}})
        assert lsp.read_response(3)["error"]["code"] == -32601

        lsp.send({"jsonrpc": "2.0", "id": 4, "method": "textDocument/inlineCompletion",
                  "params": {"textDocument": {"uri": "file:///x.py"}, "position": "nonsense"}})
        assert lsp.read_response(4)["error"]["code"] == -32602

        lsp.send({"jsonrpc": "2.0", "id": 5, "method": "textDocument/inlineCompletion",
                  "params": {"textDocument": {"uri": "file:///never-opened.py"},
                             "position": {"line": 0, "character": 0},
                             "context": {"triggerKind": 1}}})
        err5 = lsp.read_response(5)["error"]
        assert err5["code"] == -32602 and "not open" in err5["message"]

        # Still alive and well.
        lsp.send({"jsonrpc": "2.0", "id": 6, "method": "shutdown"})
        assert "error" not in lsp.read_response(6)
        lsp.send({"jsonrpc": "2.0", "method": "exit"})
        assert lsp.proc.wait(timeout=10) == 0
    finally:
        if lsp.proc.poll() is None:
            lsp.proc.kill()

