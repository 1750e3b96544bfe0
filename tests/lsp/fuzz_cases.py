"""Seeded generators of malformed input with the replies the receiver owes for each.

Three kinds: LSP message bodies (well framed, bad inside), raw LSP framing (bad headers and lengths,
garbage between frames) and daemon-protocol lines. The expected replies restate the contract of
lsp/inbound.py and client/protocol.py independently of their code:

* LSP: a body that is not UTF-8 JSON, or JSON but not an object, gets one error with id null; a
  batch array gets one error per request in it (or one null-id error if it holds none); an object
  with both "method" and "id" gets exactly one reply, carrying that id when it is a string or a
  finite number (or a bool), else null. Nothing else is answered.
* Daemon: a line that is not UTF-8 JSON, not an object, or has an id other than an int or a string
  gets one null-id error; "cancel" is a notification whose params are {"id": int | str}: any other
  shape gets one error; a message with a non-null id gets exactly one reply with that id.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from typing import Any

from tests.lsp.harness import id_key

__all__ = ["NULL", "Fuzzer", "daemon_expected", "lsp_expected"]

NULL = id_key(None)
MAX_BODY = 64 * 1024 * 1024

# Methods the fuzzer may name. Never "shutdown"/"exit" (they end the session being fuzzed) nor daemon
# methods with effects outside the protocol (stop, tunnel/start, workspace/roots, auth/reload).
LSP_METHODS = [
    "textDocument/inlineCompletion",
    "textDocument/completion",
    "textDocument/didOpen",
    "textDocument/didChange",
    "textDocument/didClose",
    "workspace/executeCommand",
    "$/cancelRequest",
    "initialized",
    "textDocument/hover",
    "$/setTrace",
    "codeassist/unknown",
    "",
    "$/",
    "textDocument/didSave",
    "initialize",
]
DAEMON_METHODS = [
    "hello",
    "status",
    "stats",
    "doc/open",
    "doc/change",
    "doc/close",
    "complete",
    "accept",
    "cancel",
    "connectivity/status",
    "tunnel/status",
    "nope",
    "",
]
STRINGS = ["", "x", "é", "\u0000", "\ud800", "😀", "a" * 300, "file:", "file://host", "null", "{", "\\", "\n"]
BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80", b"\x80"]


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"), parse_constant=_no_constants)


def _lsp_echo(msg_id: Any) -> str:
    scalar = isinstance(msg_id, str | int) or (isinstance(msg_id, float) and math.isfinite(msg_id))
    return id_key(msg_id) if scalar else NULL


def lsp_expected(body: bytes) -> list[str]:
    try:
        msg = _loads(body)
    except (ValueError, RecursionError):
        return [NULL]
    if isinstance(msg, list):
        keys = [_lsp_echo(m["id"]) for m in msg if isinstance(m, dict) and "method" in m and "id" in m]
        return keys or [NULL]
    if not isinstance(msg, dict):
        return [NULL]
    return [_lsp_echo(msg["id"])] if "method" in msg and "id" in msg else []


def _valid_daemon_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def daemon_expected(line: bytes, echo_rejected: bool = True) -> list[str]:
    """Replies owed for one line; ``echo_rejected``: protocol rejections carry the message's id (the daemon
    sends MessageError.id)."""
    try:
        msg = _loads(line)
    except (ValueError, RecursionError):
        return [NULL]
    if not isinstance(msg, dict):
        return [NULL]
    msg_id = msg.get("id")
    if msg_id is not None and not _valid_daemon_id(msg_id):
        return [NULL]
    if msg.get("method") == "cancel":
        params = msg.get("params")
        target = params.get("id") if isinstance(params, dict) else None
        if (
            msg_id is None
            and (params is None or isinstance(params, dict))
            and (target is None or _valid_daemon_id(target))
        ):
            return []
        return [id_key(msg_id) if echo_rejected and msg_id is not None else NULL]
    return [id_key(msg_id)] if msg_id is not None else []


class Fuzzer:
    """All randomness comes from one seeded ``random.Random``: a failure replays exactly."""

    def __init__(self, seed: int, uri: str) -> None:
        self.rng = random.Random(seed)
        self.uri = uri
        self._ids = itertools.count(1)
        self._sent: list[int] = []  # int ids handed out, for cancels aimed at real requests

    # -- building blocks ------------------------------------------------------------------------
    def fresh_id(self, prefix: str = "") -> int | str:
        n = next(self._ids)
        msg_id: int | str = f"{prefix or 's'}{n}" if prefix or self.rng.random() < 0.3 else 1_000_000 + n
        if isinstance(msg_id, int):
            self._sent.append(msg_id)
        return msg_id

    def scalar(self) -> Any:
        return self.rng.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                1.5,
                2**31,
                2**64,
                10**30,
                -(2**63),
                1e300,
                3.0,
                self.rng.choice(STRINGS),
                self.rng.randint(-5, 5),
            ]
        )

    def value(self, depth: int = 0) -> Any:
        r = self.rng.random()
        if depth > 3 or r < 0.6:
            return self.scalar()
        if r < 0.8:
            return [self.value(depth + 1) for _ in range(self.rng.randint(0, 3))]
        return {
            self.rng.choice(["uri", "id", "line", "x", "", "text"]): self.value(depth + 1)
            for _ in range(self.rng.randint(0, 3))
        }

    def odd_id(self) -> Any:
        return self.rng.choice(
            [
                None,
                True,
                False,
                1.5,
                7.0,
                -0.0,
                [1],
                {"id": 1},
                [],
                10**30,
                -1,
                0,
                "",
                "\ud800",
                1e300,
            ]
        )

    def _mutate(self, obj: Any) -> Any:
        """Replace, drop or add one key somewhere in a nested structure (in place)."""
        path: list[Any] = []
        node = obj
        while isinstance(node, dict | list) and node and self.rng.random() < 0.6:
            key = self.rng.choice(list(node)) if isinstance(node, dict) else self.rng.randrange(len(node))
            path.append(key)
            node = node[key]
        if not path:
            return self.value()
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        op = self.rng.random()
        if op < 0.6:
            parent[key] = self.value()
        elif op < 0.8:
            del parent[key]
        elif isinstance(parent, dict):
            parent[self.rng.choice(["extra", "id", "method", "params"])] = self.value()
        else:
            parent.append(self.value())
        return obj

    # -- LSP --------------------------------------------------------------------------------------
    def lsp_template(self, msg_id: Any) -> dict[str, Any]:
        pos = {"line": self.rng.randint(0, 3), "character": self.rng.randint(0, 5)}
        doc = {"uri": self.uri}
        method, params = self.rng.choice(
            [
                (
                    "textDocument/inlineCompletion",
                    {"textDocument": doc, "position": pos, "context": {"triggerKind": 1}},
                ),
                ("textDocument/completion", {"textDocument": doc, "position": pos}),
                (
                    "textDocument/didOpen",
                    {
                        "textDocument": {
                            **doc,
                            "languageId": "python",
                            "version": 1,
                            "text": "def f(x):\n    return x\n",
                        }
                    },
                ),
                (
                    "textDocument/didChange",
                    {
                        "textDocument": {**doc, "version": 2},
                        "contentChanges": [{"range": {"start": pos, "end": pos}, "text": "y"}],
                    },
                ),
                ("textDocument/didClose", {"textDocument": doc}),
                ("workspace/executeCommand", {"command": "codeassist.accept", "arguments": ["c1", 3]}),
                ("$/cancelRequest", {"id": -self.rng.randint(1, 10**6)}),
                ("initialized", {}),
                ("textDocument/hover", {"textDocument": doc, "position": pos}),
                ("codeassist/unknown", {"a": 1}),
            ]
        )
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if msg_id is not None:
            msg["id"] = msg_id
        return msg

    def lsp_object(self) -> dict[str, Any]:
        msg = self.lsp_template(self.fresh_id() if self.rng.random() < 0.7 else None)
        for _ in range(self.rng.randint(1, 3)):
            r = self.rng.random()
            if r < 0.15:
                msg["id"] = self.odd_id()
            elif r < 0.25:
                msg["jsonrpc"] = self.rng.choice(["1.0", 2.0, None, "", "2.0 "])
            elif r < 0.3:
                msg.pop("jsonrpc", None)
            elif r < 0.45:
                msg["method"] = self.rng.choice([*LSP_METHODS, 42, None, ["x"], {"m": 1}])
            elif r < 0.55:
                msg["params"] = self.value()
            else:
                self._mutate(msg)
        if "id" in msg and isinstance(msg["id"], int) and not isinstance(msg["id"], bool) and 0 <= msg["id"] < 10:
            msg["id"] = self.fresh_id()  # small ints could collide with the test's own requests
        return msg

    def lsp_body(self) -> bytes:
        """One malformed message body."""
        r = self.rng.random()
        if r < 0.45:
            return json.dumps(self.lsp_object()).encode()
        good = json.dumps(self.lsp_template(self.fresh_id())).encode()
        if r < 0.55:
            return good[: self.rng.randrange(len(good))]
        if r < 0.62:
            i = self.rng.randrange(len(good))
            return good[:i] + self.rng.choice(BAD_UTF8) + good[i:]
        if r < 0.68:
            data = bytearray(good)
            for _ in range(self.rng.randint(1, 4)):
                data[self.rng.randrange(len(data))] = self.rng.randrange(256)
            return bytes(data)
        if r < 0.73:
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(0, 64)))
        if r < 0.8:
            return json.dumps(
                self.rng.choice(
                    [
                        42,
                        "str",
                        None,
                        True,
                        [],
                        1.5,
                        [self.lsp_template(self.fresh_id())],
                        [self.lsp_template(self.fresh_id()), self.lsp_template(None), 3],
                        [self.lsp_template(None)],
                        [[]],
                    ]
                )
            ).encode()
        if r < 0.84:
            return self.rng.choice(
                [
                    b"NaN",
                    b'{"id": NaN}',
                    b"Infinity",
                    b'{"a": -Infinity}',
                    b"\xef\xbb\xbf{}",
                    good.replace(b"2.0", b"\\u0032.0", 1),
                    good + b" x",
                    good + good,
                    b" ",
                ]
            )
        if r < 0.85:
            return self.rng.choice([b"[" * 100_000, b'{"a":' * 50_000])
        if r < 0.9:
            msg = self.lsp_template(self.fresh_id())
            msg["params"] = {
                "textDocument": {"uri": self.rng.choice(STRINGS)},
                "position": {"line": self.rng.choice([-1, 2**31, 2**64, 1.5, "0"]), "character": self.scalar()},
            }
            return json.dumps(msg).encode()
        # Valid JSON, valid shape, hostile values: lone surrogates, NULs, long strings.
        msg = self.lsp_template(self.fresh_id())
        text = self.rng.choice(["\ud800", "\x00", "😀" * 1000, "\r\n" * 50, "é"])
        msg["params"] = {"textDocument": {"uri": self.uri + text, "languageId": text, "version": 1, "text": text}}
        msg["method"] = "textDocument/didOpen"
        return json.dumps(msg).encode()

    # -- LSP framing -------------------------------------------------------------------------------
    def skipped_request(self) -> bytes:
        """A body the bridge must never act on (it rides in a broken frame): its id must not come back."""
        return json.dumps({"jsonrpc": "2.0", "id": self.fresh_id("skip"), "method": "codeassist/unknown"}).encode()

    def bad_frame(self) -> tuple[bytes, list[str]]:
        """Raw bytes that break framing, ending where the next frame may start; the ids that must come back."""
        r = self.rng.random()
        body = self.skipped_request()
        if r < 0.2:
            n = self.rng.choice([2**63, 2**63 + 1, 2**64, 10**30, 10**100, MAX_BODY + 1, 2**31, 9 * 10**18])
            return f"Content-Length: {n}\r\n\r\n".encode() + body, []
        if r < 0.35:
            value = self.rng.choice(["-1", "-0", "abc", "1e3", "0x10", "", " ", "١٢", "+5", "5 5", "5.0", "-99999"])
            return f"Content-Length: {value}\r\n\r\n".encode() + body, []
        if r < 0.45:
            headers = self.rng.choice([b"", b"Content-Type: application/json\r\n", b"X: 1\r\n"])
            return headers + b"\r\n" + body, []
        if r < 0.52:
            junk = self.rng.choice(
                [
                    b"garbage\r\n",
                    b"\xff\xfe: x\r\n",
                    b"Bad Name: 1\r\n",
                    b": x\r\n",
                    b"X-Long: " + b"a" * 10_000 + b"\r\n",
                    b"X: 1\r\n" * 2000,
                ]
            )
            return f"Content-Length: {len(body)}\r\n".encode() + junk + b"\r\n" + body, []
        if r < 0.62:
            # Body shorter than declared: the frame ends once padding has made up the difference.
            good = json.dumps(self.lsp_template(self.fresh_id())).encode()
            cut = good[: self.rng.randrange(len(good))]
            pad = self.rng.choice([b" ", b"x", b"\n"]) * (len(good) - len(cut))
            return f"Content-Length: {len(good)}\r\n\r\n".encode() + cut + pad, lsp_expected(cut + pad)
        if r < 0.72:
            # Body longer than declared: the excess is garbage to skip.
            good = json.dumps(self.lsp_template(self.fresh_id())).encode()
            n = self.rng.randrange(1, len(good))
            return f"Content-Length: {n}\r\n\r\n".encode() + good, lsp_expected(good[:n])
        if r < 0.82:
            data = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 200)))
            return re.sub(rb"(?i)content-length", b"c-l", data), []
        if r < 0.86:
            return self.rng.choice([b"\r\n", b"\r\n\r\n", b" \t\n", b"\n\n\n"]), []
        if r < 0.9:
            return b"Content-Length: 0\r\n\r\n", [NULL]
        # Accepted variants: lowercase name, no space, bare newlines, extra headers; the body is malformed.
        inner = self.lsp_body()
        head = self.rng.choice(
            [
                f"content-length: {len(inner)}\r\n\r\n",
                f"Content-Length:{len(inner)}\r\n\r\n",
                f"Content-Length: {len(inner)}\n\n",
                f"Content-Type: x; charset=latin-1\r\nContent-Length: {len(inner)}\r\n\r\n",
                f"CONTENT-LENGTH:   {len(inner)}  \r\n\r\n",
            ]
        )
        return head.encode() + inner, lsp_expected(inner)

    def cancel_target(self) -> int:
        # Half the time a request just sent (a cancel may reach it before it starts: it must still be
        # answered once), else an id nobody used.
        if self._sent and self.rng.random() < 0.5:
            return self._sent[-1]
        return -(10**7 + next(self._ids))

    # -- daemon protocol ----------------------------------------------------------------------------
    def daemon_template(self, msg_id: Any) -> dict[str, Any]:
        uri = self.rng.choice([self.uri, self.uri + "2", "file:///nowhere.py"])
        method, params = self.rng.choice(
            [
                ("hello", {}),
                ("status", {}),
                ("stats", {}),
                ("connectivity/status", {}),
                ("tunnel/status", {}),
                ("doc/open", {"uri": uri, "text": "def f(x):\n    return x\n", "language": "python", "version": 1}),
                ("doc/change", {"uri": uri, "version": 2, "edits": [[0, 0, "y"]]}),
                ("doc/close", {"uri": uri}),
                ("complete", {"uri": uri, "offset": self.rng.randint(0, 30)}),
                ("accept", {"id": "c1", "chars": 3}),
                ("cancel", {"id": self.cancel_target()}),
                ("nope", {}),
            ]
        )
        msg: dict[str, Any] = {"method": method, "params": params}
        if msg_id is not None and method != "cancel":
            msg["id"] = msg_id
        return msg

    def daemon_object(self) -> dict[str, Any]:
        msg = self.daemon_template(self.fresh_id() if self.rng.random() < 0.7 else None)
        for _ in range(self.rng.randint(1, 3)):
            r = self.rng.random()
            if r < 0.15:
                msg["id"] = self.odd_id()
            elif r < 0.3:
                msg["method"] = self.rng.choice([*DAEMON_METHODS, 42, None, ["x"]])
            elif r < 0.45:
                msg["params"] = self.value()
            else:
                self._mutate(msg)
        if msg.get("method") == "cancel":
            if "id" in msg and self.rng.random() < 0.7:
                del msg["id"]
            params = msg.get("params")
            if isinstance(params, dict) and _valid_daemon_id(params.get("id")):
                params["id"] = self.cancel_target()
        return msg

    def daemon_line(self) -> bytes:
        """One malformed line, without its newline (it never contains one)."""
        r = self.rng.random()
        if r < 0.55:
            line = json.dumps(self.daemon_object()).encode()
        else:
            good = json.dumps(self.daemon_template(self.fresh_id())).encode()
            if r < 0.65:
                line = good[: self.rng.randrange(len(good))]
            elif r < 0.72:
                i = self.rng.randrange(len(good))
                line = good[:i] + self.rng.choice(BAD_UTF8) + good[i:]
            elif r < 0.8:
                data = bytearray(good)
                for _ in range(self.rng.randint(1, 4)):
                    data[self.rng.randrange(len(data))] = self.rng.randrange(256)
                line = bytes(data)
            elif r < 0.86:
                line = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(0, 64)))
            elif r < 0.93:
                line = json.dumps(self.rng.choice([42, "s", None, [], [good.decode()], 1.5, True])).encode()
            elif r < 0.94:
                line = self.rng.choice([b"[" * 100_000, b'{"a":' * 50_000])
            else:
                line = self.rng.choice(
                    [
                        b"",
                        b" ",
                        b"\r",
                        b"NaN",
                        b'{"id": NaN, "method": "hello"}',
                        b"\xef\xbb\xbf{}",
                        good + b" x",
                        good + good,
                    ]
                )
        return line.replace(b"\n", b" ")
