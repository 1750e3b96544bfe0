"""Malformed input never kills or stalls the bridge or the daemon, and every request is answered.

The fuzz tests are seeded (CODEASSIST_FUZZ_SEED replays another seed) and run against the real
`codeassist lsp` process over stdio and a real daemon's unix socket; the scripted stand-in serves the
few completions that get through.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lsp.fuzz_cases import NULL, Fuzzer, daemon_expected, lsp_expected
from tests.lsp.harness import DaemonSocket, LspProcess, frame, id_key

SEED = int(os.environ.get("CODEASSIST_FUZZ_SEED", "20240612"))
FUZZ_MESSAGES = 20_000  # well-framed bodies with bad contents
FUZZ_FRAMES = 5_000  # broken framing, each followed by a probe that must be answered
FUZZ_LINES = 30_000  # daemon-protocol lines
DEADLINE_S = 60.0
ENSURE = "from codeassist.client.daemon_client import ensure_daemon; print(ensure_daemon())"


def _rpc(msg_id: Any, method: str, params: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def _open(uri: str, text: str = "def f(x):\n    return x\n") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "textDocument/didOpen",
        "params": {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
    }


def _inline(msg_id: Any, uri: str, line: int = 1, character: int = 11) -> dict[str, Any]:
    return _rpc(
        msg_id,
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": 1},
        },
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    # The bridge (and the daemon it starts) run here: a root the fuzz names resolves inside it.
    work = tmp_path / "work"
    work.mkdir()
    return work


@pytest.fixture
def bridge(daemon_env_factory, standin, tmp_path: Path, workdir: Path) -> Iterator[LspProcess]:
    env = daemon_env_factory(standin.base_url)
    lsp = LspProcess(env.env, workdir, tmp_path / "bridge.stderr")
    try:
        # No inlineCompletion capability: the bridge then offers both inline and popup completion.
        init = lsp.request(
            _rpc(1, "initialize", {"processId": os.getpid(), "rootUri": workdir.as_uri(), "capabilities": {}})
        )
        assert "capabilities" in init["result"]
        lsp.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        yield lsp
    finally:
        lsp.close()


def _assert_alive_and_serving(lsp: LspProcess, uri: str) -> None:
    assert lsp.proc.poll() is None, f"the bridge died:\n{lsp.stderr_text()[-3000:]}"
    lsp.send(_open(uri))
    reply = lsp.request(_inline("alive", uri))
    assert reply["result"]["items"][0]["insertText"].startswith("hello"), reply


def _log_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# -- specific cases -----------------------------------------------------------------------------------


def test_malformed_messages_get_errors_and_bridge_survives(bridge: LspProcess, workdir: Path) -> None:
    bridge.write(frame(b'{"jsonrpc": "2.0", "id": 2, "method": '))  # truncated JSON
    assert bridge.request(_rpc(3, "no/suchMethod", {}))["error"]["code"] == -32601
    assert bridge.replies.of(NULL)[0]["error"]["code"] == -32700

    bad = _rpc(4, "textDocument/inlineCompletion", {"textDocument": {"uri": "file:///x.py"}, "position": "nonsense"})
    assert bridge.request(bad)["error"]["code"] == -32602
    err5 = bridge.request(_inline(5, "file:///never-opened.py", 0, 0))["error"]
    assert err5["code"] == -32602 and "not open" in err5["message"]

    _assert_alive_and_serving(bridge, (workdir / "m.py").as_uri())
    assert "error" not in bridge.request(_rpc(6, "shutdown"))
    assert bridge.request(_rpc(7, "textDocument/hover", {}))["error"]["code"] == -32600  # after shutdown
    bridge.send({"jsonrpc": "2.0", "method": "exit"})
    assert bridge.proc.wait(timeout=10) == 0


ABSURD_LENGTHS = [str(2**63), str(2**64), str(10**30), str(64 * 1024 * 1024 + 1), "-1", "abc", ""]


def test_absurd_content_length_is_refused_and_the_stream_resyncs(bridge: LspProcess, workdir: Path) -> None:
    # Before: 2**63 and up raised OverflowError in pygls's reader and killed the bridge.
    for n, length in enumerate(ABSURD_LENGTHS):
        bridge.write(f"Content-Length: {length}\r\n\r\n".encode() + json.dumps(_rpc("lost", "x/y")).encode())
        assert bridge.request(_rpc(10 + n, "no/suchMethod"))["error"]["code"] == -32601, length
        assert bridge.replies.of(NULL)[n]["error"]["code"] in (-32600, -32700), length
    assert bridge.replies.counts[NULL] == len(ABSURD_LENGTHS)
    assert bridge.replies.of(id_key("lost")) == []
    _assert_alive_and_serving(bridge, (workdir / "a.py").as_uri())
    assert "Traceback" not in bridge.stderr_text()


BAD_REQUESTS: list[tuple[str, Any, int]] = [
    ("inline params a string", _rpc(20, "textDocument/inlineCompletion", "x"), -32602),
    ("inline params an array", _rpc(21, "textDocument/inlineCompletion", [1, 2]), -32602),
    (
        "inline position null",
        _rpc(
            22,
            "textDocument/inlineCompletion",
            {"textDocument": {"uri": "file:///a.py"}, "position": None, "context": {"triggerKind": 1}},
        ),
        -32602,
    ),
    ("inline line negative", _inline(23, "file:///a.py", -1, 0), -32602),
    ("inline line 2**64", _inline(24, "file:///a.py", 2**64, 0), -32602),
    ("completion params wrong", _rpc(25, "textDocument/completion", {"textDocument": 5}), -32602),
    ("didChange sent with an id", _rpc(26, "textDocument/didChange", {"textDocument": {}}), -32600),
    ("unknown method", _rpc(27, "codeassist/nothing", {}), -32601),
    ("unknown $/ method", _rpc(28, "$/nothing", {}), -32601),
    ("method not a string", {"jsonrpc": "2.0", "id": 29, "method": 5}, -32600),
    ("no jsonrpc", {"id": 30, "method": "textDocument/hover", "params": {}}, -32600),
    ("jsonrpc 1.0", {"jsonrpc": "1.0", "id": 31, "method": "textDocument/hover", "params": {}}, -32600),
    ("string id", _rpc("s-32", "codeassist/nothing"), -32601),
    ("float id", _rpc(1.5, "codeassist/nothing"), -32600),
    ("bool id", _rpc(True, "codeassist/nothing"), -32600),
    ("huge id", _rpc(10**30, "textDocument/inlineCompletion", "x"), -32602),
    ("initialized sent with an id", _rpc(33, "initialized", {}), -32600),
    ("cancel sent with an id", _rpc(34, "$/cancelRequest", {"id": 1}), -32600),
    ("executeCommand bad params", _rpc(35, "workspace/executeCommand", {"command": 5}), -32602),
]


def test_every_bad_request_is_answered_with_its_id(bridge: LspProcess) -> None:
    for name, msg, code in BAD_REQUESTS:
        before = len(_log_lines(bridge.stderr_text()))
        err = bridge.request(msg, timeout=15)["error"]
        assert err["code"] == code, (name, err)
        logged = _log_lines(bridge.stderr_text())[before:]
        assert len(logged) <= 1, (name, logged)
    assert "Traceback" not in bridge.stderr_text()


ODD_BODIES = [
    b'[{"jsonrpc": "2.0", "id": 40, "method": "x"}, {"jsonrpc": "2.0", "id": "b", "method": "y"}, 3]',  # batch
    b"[]",
    b"42",
    b'"text"',
    b"null",
    b"\xff\xfe{}",
    b'{"id": 41, "method": "\xc3\x28"}',  # invalid UTF-8 inside a string
    b"NaN",
    b"[" * 100_000,
    b'{"jsonrpc": "2.0", "id": [1], "method": "x"}',
    b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "x"}',
    b'{"jsonrpc": "2.0", "id": null, "method": "x"}',
]


def test_odd_bodies_get_exactly_the_owed_replies(bridge: LspProcess) -> None:
    for n, body in enumerate(ODD_BODIES):
        before = Counter(bridge.replies.counts)
        owed = Counter(lsp_expected(body))
        bridge.write(frame(body))
        bridge.request(_rpc(f"sync{n}", "codeassist/nothing"))  # replies come in order: owed ones first
        got = Counter(bridge.replies.counts) - before
        del got[id_key(f"sync{n}")]
        assert got == owed, body[:80]
    assert "Traceback" not in bridge.stderr_text()


@pytest.mark.parametrize("tail", [b'Content-Length: 50\r\n\r\n{"jsonrpc"', b"Content-Length: 50\r\n", b"Content-Le"])
def test_input_ending_inside_a_frame_closes_cleanly(bridge: LspProcess, tail: bytes) -> None:
    bridge.write(tail)
    assert bridge.proc.stdin is not None
    bridge.proc.stdin.close()
    assert bridge.proc.wait(timeout=15) == 0
    text = bridge.stderr_text()
    assert len(_log_lines(text)) == 1 and "Traceback" not in text, text


# -- fuzz ---------------------------------------------------------------------------------------------


def test_fuzz_lsp_stdio(bridge: LspProcess, workdir: Path) -> None:
    started = time.monotonic()
    watchdog = bridge.kill_after(DEADLINE_S + 30)
    try:
        _fuzz_lsp(bridge, workdir, started)
    finally:
        watchdog.cancel()


def _fuzz_lsp(bridge: LspProcess, workdir: Path, started: float) -> None:
    fuzz = Fuzzer(SEED, (workdir / "f.py").as_uri())
    owed: Counter[str] = Counter()

    # Well-framed bodies with bad contents, many frames per write.
    batch: list[bytes] = []
    for _ in range(FUZZ_MESSAGES):
        body = fuzz.lsp_body()
        owed.update(lsp_expected(body))
        batch.append(frame(body))
        if len(batch) == 200:
            bridge.write(b"".join(batch))
            batch.clear()
    bridge.write(b"".join(batch))

    # Broken framing, each followed by a probe the resynchronised reader must answer.
    batch.clear()
    for _ in range(FUZZ_FRAMES):
        raw, replies = fuzz.bad_frame()
        owed.update(replies)
        probe = fuzz.fresh_id("probe")
        owed[id_key(probe)] += 1
        batch.append(raw + frame(json.dumps(_rpc(probe, "codeassist/probe")).encode()))
        if len(batch) == 100:
            bridge.write(b"".join(batch))
            batch.clear()
    bridge.write(b"".join(batch))

    remaining = DEADLINE_S - (time.monotonic() - started)
    assert bridge.replies.wait_for(owed, remaining), (
        f"unanswered after {DEADLINE_S}s (alive={bridge.proc.poll() is None}): "
        f"{sum(bridge.replies.missing(owed).values())} of {sum(owed.values())}, e.g. "
        f"{list(bridge.replies.missing(owed).items())[:10]}\n{bridge.stderr_text()[-3000:]}"
    )
    _assert_alive_and_serving(bridge, (workdir / "after.py").as_uri())
    elapsed = time.monotonic() - started

    got = Counter(bridge.replies.counts)
    del got[id_key(1)], got[id_key("alive")]
    skipped = {k for k in got if k.startswith('"skip')}
    assert not skipped, f"bodies of broken frames were acted on: {sorted(skipped)[:10]}"
    nulls = got.pop(NULL, 0)
    owed_nulls = owed.pop(NULL, 0)
    assert got == owed, {k: (got[k], owed[k]) for k in set(got) | set(owed) if got[k] != owed[k]}
    # Id-less errors: those owed by bad bodies, plus at most one per broken frame (bad header or garbage).
    assert owed_nulls <= nulls <= owed_nulls + FUZZ_FRAMES
    text = bridge.stderr_text()
    assert "Traceback" not in text, text[-3000:]
    # One line per bad message at most: a body, or a broken frame's header, its body and its probe.
    assert len(_log_lines(text)) <= FUZZ_MESSAGES + 3 * FUZZ_FRAMES
    print(
        f"lsp fuzz: {FUZZ_MESSAGES} bodies + {FUZZ_FRAMES} broken frames in {elapsed:.1f}s, "
        f"{len(_log_lines(text))} log lines"
    )


def _start_daemon(env: Any, cwd: Path) -> int:
    r = subprocess.run([sys.executable, "-c", ENSURE], env=env.env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    pid = env.daemon_pid()
    assert pid
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_fuzz_daemon_socket(daemon_env_factory, standin, workdir: Path) -> None:
    env = daemon_env_factory(standin.base_url)
    pid = _start_daemon(env, workdir)
    conn = DaemonSocket(env.socket)
    started = time.monotonic()
    try:
        fuzz = Fuzzer(SEED, (workdir / "d.py").as_uri())
        lines = [fuzz.daemon_line() for _ in range(FUZZ_LINES)]
        owed = Counter(k for line in lines for k in daemon_expected(line))
        for i in range(0, len(lines), 500):
            conn.write(b"\n".join(lines[i : i + 500]) + b"\n")
        remaining = DEADLINE_S - (time.monotonic() - started)
        assert conn.replies.wait_for(owed, remaining), (
            f"unanswered (alive={_alive(pid)}, connection closed={conn.replies.closed}): "
            f"{sum(conn.replies.missing(owed).values())} of {sum(owed.values())}, e.g. "
            f"{list(conn.replies.missing(owed).items())[:10]}"
        )
        conn.write(b'{"id": "final", "method": "hello"}\n')
        assert conn.replies.wait_for(Counter({id_key("final"): 1}), 10)
        elapsed = time.monotonic() - started
        got = Counter(conn.replies.counts)
        del got[id_key("final")]
        assert got == owed, {k: (got[k], owed[k]) for k in set(got) | set(owed) if got[k] != owed[k]}
        assert not conn.unparsable
        assert _alive(pid)
        print(f"daemon fuzz: {FUZZ_LINES} lines in {elapsed:.1f}s")
    finally:
        conn.close()


def test_daemon_refuses_an_oversized_line_and_stays_up(daemon_env_factory, standin, workdir: Path) -> None:
    env = daemon_env_factory(standin.base_url)
    pid = _start_daemon(env, workdir)
    conn = DaemonSocket(env.socket)
    try:
        with contextlib.suppress(OSError):  # the daemon may close before it has read everything
            conn.write(b'{"id": 1, "method": "hello", "params": {"x": "' + b"a" * (64 * 1024 * 1024) + b'"}}\n')
        assert conn.replies.wait_for(Counter({NULL: 1}), 30)
        assert conn.replies.of(NULL)[0]["error"]["code"] == -32600
    finally:
        conn.close()
    again = DaemonSocket(env.socket)
    try:
        again.write(b'{"id": 2, "method": "hello"}\n')
        assert again.replies.wait_for(Counter({id_key(2): 1}), 10)
        assert _alive(pid)
    finally:
        again.close()


@pytest.mark.parametrize(
    ("writes", "request_id"),
    [
        # A refused message (a cancel with an id): the daemon answers in order, so once "after" is back, the
        # refusal has been sent.
        pytest.param(
            [b'{"id": 7, "method": "cancel", "params": {"id": 1}}\n{"id": "after", "method": "hello"}\n'],
            7,
            id="a_refused_message_with_its_id",
        ),
        # One write: the daemon reads both lines before the request's task has run a single step.
        pytest.param(
            [
                b'{"id": 8, "method": "hello"}\n{"method": "cancel", "params": {"id": 8}}\n',
                b'{"id": "after", "method": "hello"}\n',
            ],
            8,
            id="a_request_cancelled_before_it_starts",
        ),
    ],
)
def test_daemon_answers_once(daemon_env_factory, standin, workdir: Path, writes: list[bytes], request_id: int) -> None:
    env = daemon_env_factory(standin.base_url)
    _start_daemon(env, workdir)
    conn = DaemonSocket(env.socket)
    try:
        for data in writes:
            conn.write(data)
        assert conn.replies.wait_for(Counter({id_key("after"): 1}), 10)
        assert conn.replies.counts[id_key(request_id)] == 1, conn.replies.messages
    finally:
        conn.close()
