"""lsp/inbound.py: what each frame body is owed, checked against the fuzz cases' independent statement."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from codeassist.lsp.inbound import Rejected, check_body

from tests.lsp.fuzz_cases import NULL, Fuzzer, lsp_expected
from tests.lsp.harness import id_key


def owed_by_check(body: bytes) -> list[str] | None:
    """Reply keys when check_body refuses the body; None when it passes it on to pygls."""
    checked = check_body(body)
    if isinstance(checked, Rejected):
        return [id_key(r.id) for r in checked.replies]
    return None


def test_refusals_agree_with_the_contract_on_seeded_fuzz() -> None:
    fuzz = Fuzzer(11, "file:///tmp/f.py")
    passed = Counter[str]()
    for _ in range(20_000):
        body = fuzz.lsp_body()
        owed = owed_by_check(body)
        if owed is None:  # pygls gets it: a request must still be answered once, by the protocol
            msg = json.loads(body)
            passed["request" if "id" in msg and "method" in msg else "other"] += 1
            assert isinstance(msg.get("id", 0), int | str) and not isinstance(msg.get("id"), bool)
            continue
        assert owed == lsp_expected(body), body[:200]
    assert passed["request"] > 1000 and passed["other"] > 500  # the fuzz reaches the handlers too


@pytest.mark.parametrize(
    ("body", "ids", "code"),
    [
        (b"\xff", [None], -32700),
        (b"NaN", [None], -32700),
        (b"[" * 100_000, [None], -32700),
        (b"[]", [None], -32600),
        (b'[{"id": 1, "method": "a"}, {"method": "b"}, {"id": "x", "method": "c"}]', [1, "x"], -32600),
        (b'[{"method": "b"}]', [None], -32600),
        (b"7", [None], -32600),
        (b'{"jsonrpc": "2.0", "id": 1.5, "method": "a"}', [1.5], -32600),
        (b'{"jsonrpc": "2.0", "id": true, "method": "a"}', [True], -32600),
        (b'{"jsonrpc": "2.0", "id": [1], "method": "a"}', [None], -32600),
        (b'{"jsonrpc": "2.0", "id": 1e400, "method": "a"}', [None], -32600),
        (b'{"jsonrpc": "1.0", "id": 3, "method": "a"}', [3], -32600),
        (b'{"id": 3, "method": "a"}', [3], -32600),
        (b'{"jsonrpc": "2.0", "id": 3, "method": 3}', [3], -32600),
        (b'{"jsonrpc": "2.0", "id": 3, "method": "initialized"}', [3], -32600),
        (b'{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": {}}}', [], None),
        (b'{"jsonrpc": "2.0", "id": [1], "result": null}', [], None),
        (b'{"jsonrpc": "2.0"}', [], None),
    ],
)
def test_refusals(body: bytes, ids: list, code: int | None) -> None:
    checked = check_body(body)
    assert isinstance(checked, Rejected)
    assert [r.id for r in checked.replies] == ids
    assert all(r.code == code for r in checked.replies)
    assert checked.reason and "\n" not in checked.reason


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc": "2.0", "id": 1, "method": "textDocument/hover", "params": 5}',
        b'{"jsonrpc": "2.0", "id": "a", "method": "unknown"}',
        b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": []}',
        b'{"jsonrpc": "2.0", "id": 4, "result": null}',
    ],
)
def test_passed_on_for_pygls_to_answer(body: bytes) -> None:
    assert check_body(body) == json.loads(body)


def test_null_is_the_key_of_an_id_less_reply() -> None:
    assert owed_by_check(b"{") == [NULL]
