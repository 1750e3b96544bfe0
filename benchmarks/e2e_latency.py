"""Keystroke-to-completion latency through the real stack on the local model server.

A real LSP client (pygls) types into real files through `codeassist lsp`; each keystroke is a didChange followed
by an inlineCompletion request (the previous unanswered one cancelled, as VS Code does), timed at the client.

Scenarios (``--scenario``):

- ``typing`` (default): a developer writing code. In runs of ``RUN_LINES`` consecutive code lines of each file,
  the start of each line arrives as one edit (the editor asks for a completion there, as after any change), the
  developer thinks (0.6-1.4 s), then types the line's last word (up to 8 characters) at real speed (log-normal
  gaps, median ~110 ms, as ``replay.py``); measured: the last keystroke -> its ghost text. The first line of
  each run is a jump to a new place in the file.
- ``jump``: the file opened cut at a random line end and one character typed there (every request a new place:
  a cold prompt each time; the scenario of this script's earlier figures).

The same documents are then completed through the daemon socket, whose per-request timings split the time
between the daemon (context, queueing, post-processing) and the model server.

    python benchmarks/e2e_latency.py [--requests 30] [--scenario typing|jump] [--server-url URL]

Prints one JSON line (``p50_ms``, ``p99_ms``, ``timeouts``: requests that got no model answer; ``with_ghost_text``:
the share of answers that had text, ``ghost_p50_ms``/``ghost_p99_ms``: the latency of those), then a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import daemon_env, emit, local_model, machine, percentile

SOURCE_FILES = [
    Path(p)
    for p in (
        "client/engine.py",
        "client/daemon.py",
        "lsp/positions.py",
        "context/templates.py",
    )
]


RUN_LINES = 4
WORD_MAX = 8


def code_line_ends(text: str) -> list[int]:
    return [i for i, ch in enumerate(text) if ch == "\n" and i > 0 and text[i - 1].strip()]


def runs_of_lines(text: str, runs: int, rng: random.Random) -> list[list[int]]:
    """``runs`` non-overlapping runs of RUN_LINES consecutive code-line ends."""
    ends = code_line_ends(text)
    starts = sorted(rng.sample(range(0, len(ends) - RUN_LINES, RUN_LINES), runs))
    return [ends[s : s + RUN_LINES] for s in starts]


def last_word(line: str) -> int:
    """Characters of the line's last word (an identifier and the punctuation after it), at most WORD_MAX."""
    m = re.search(r"[A-Za-z0-9_]*[^A-Za-z0-9_\s]*$", line)
    return max(1, min(WORD_MAX, len(m.group(0)) if m else 1))


async def start_client(env: dict[str, str], root: Path):  # type: ignore[no-untyped-def]
    from pytest_lsp import ClientServerConfig

    client = await ClientServerConfig(
        server_command=[sys.executable, "-m", "codeassist.client.cli", "lsp"], server_env=env
    ).start()
    await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                text_document=types.TextDocumentClientCapabilities(
                    inline_completion=types.InlineCompletionClientCapabilities()
                )
            ),
            root_uri=root.as_uri(),
        )
    )
    return client


def position(text: str, offset: int) -> types.Position:
    line = text.count("\n", 0, offset)
    col = offset - (text.rfind("\n", 0, offset) + 1)
    return types.Position(line=line, character=len(text[offset - col : offset].encode("utf-16-le")) // 2)


def insert(client, uri: str, version: int, doc: str, at: int, text: str) -> None:  # type: ignore[no-untyped-def]
    """didChange: ``text`` typed at offset ``at`` of ``doc``."""
    pos = position(doc, at)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text=text)],
        )
    )


def close(client, uri: str) -> None:  # type: ignore[no-untyped-def]
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


def ask(client, uri: str, text: str, cur: int, msg_id: str):  # type: ignore[no-untyped-def]
    """An inline-completion request at ``cur`` (the document is ``text[:cur]``): (its id, its future)."""
    fut = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION,
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position(text[:cur], cur),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        ),
        msg_id=msg_id,
    )
    return msg_id, fut


async def lsp_typing_round(
    env: dict[str, str], root: Path, n: int, rng: random.Random, shown: list[bool]
) -> list[float]:
    """The ``typing`` scenario: last keystroke -> ghost text, one figure per line typed (``shown``: with text)."""
    client = await start_client(env, root)
    latencies: list[float] = []
    runs = max(1, -(-n // (len(SOURCE_FILES) * RUN_LINES)))
    try:
        for src in SOURCE_FILES:
            text = src.read_text()
            uri = (root / src.name).as_uri()
            for run in runs_of_lines(text, runs, rng):
                cur = run[0] - last_word(text[text.rfind("\n", 0, run[0]) + 1 : run[0]])
                version = 1
                client.text_document_did_open(
                    types.DidOpenTextDocumentParams(
                        text_document=types.TextDocumentItem(
                            uri=uri, language_id="python", version=version, text=text[:cur]
                        )
                    )
                )
                for end in run:
                    word_at = end - last_word(text[text.rfind("\n", 0, end) + 1 : end])
                    doc = text[:cur]
                    last = None
                    if word_at > cur:  # the line's start arrives at once, and the editor asks (not measured)
                        version += 1
                        insert(client, uri, version, doc, cur, text[cur:word_at])
                        cur = word_at
                        last = ask(client, uri, text, cur, f"s{version}-{cur}")
                    await asyncio.sleep(rng.uniform(0.6, 1.4))  # thinking
                    t_key = 0.0
                    while cur < end:
                        await asyncio.sleep(rng.lognormvariate(-2.2, 0.35))
                        doc = text[:cur]
                        version += 1
                        insert(client, uri, version, doc, cur, text[cur])
                        cur += 1
                        t_key = time.perf_counter()
                        if last is not None and not last[1].done():
                            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=last[0]))
                        last = ask(client, uri, text, cur, f"k{version}-{cur}")
                    assert last is not None
                    answer = None
                    with contextlib.suppress(Exception):  # an error answer is still an answer (counted below)
                        answer = await asyncio.wrap_future(last[1])
                    latencies.append((time.perf_counter() - t_key) * 1000)
                    shown.append(bool(getattr(answer, "items", None)))
                close(client, uri)
    finally:
        await client.shutdown_session()
    return latencies


def cursor_positions(text: str, n: int, rng: random.Random) -> list[int]:
    """Ends of lines that have code on them: where a developer pauses and waits for a suggestion."""
    ends = [i for i, ch in enumerate(text) if ch == "\n" and i > 0 and text[i - 1].strip()]
    return sorted(rng.sample(ends, min(n, len(ends))))


async def lsp_round(env: dict[str, str], root: Path, n: int, rng: random.Random, shown: list[bool]) -> list[float]:
    """The ``jump`` scenario."""
    client = await start_client(env, root)
    latencies: list[float] = []
    try:
        per_file = max(1, n // len(SOURCE_FILES))
        for version, src in enumerate(SOURCE_FILES, start=1):
            text = src.read_text()
            uri = (root / src.name).as_uri()
            for offset in cursor_positions(text, per_file, rng):
                # Open the file cut at the cursor, as if the developer just typed the last character.
                doc = text[:offset]
                client.text_document_did_open(
                    types.DidOpenTextDocumentParams(
                        text_document=types.TextDocumentItem(
                            uri=uri, language_id="python", version=version, text=doc[:-1]
                        )
                    )
                )
                line = doc.count("\n")
                col = len(doc) - (doc.rfind("\n") + 1)
                t0 = time.perf_counter()
                insert(client, uri, version + 1, doc[:-1], len(doc) - 1, doc[-1])
                answer = await client.text_document_inline_completion_async(
                    types.InlineCompletionParams(
                        text_document=types.TextDocumentIdentifier(uri=uri),
                        position=types.Position(line=line, character=col),
                        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
                    )
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                shown.append(bool(getattr(answer, "items", None)))
                close(client, uri)
    finally:
        await client.shutdown_session()
    return latencies


async def socket_round(n: int, rng: random.Random) -> list[dict[str, float]]:
    from codeassist.client.daemon_client import connect

    conn = await connect()
    timings: list[dict[str, float]] = []
    try:
        per_file = max(1, n // len(SOURCE_FILES))
        for src in SOURCE_FILES:
            text = src.read_text()
            for offset in cursor_positions(text, per_file, rng):
                uri = f"file:///bench/{src.name}"
                await conn.request("doc/open", {"uri": uri, "text": text[:offset], "language": "python"})
                t0 = time.perf_counter()
                result = await conn.request("complete", {"uri": uri, "offset": offset})
                tm = result["timings"]
                tm["client_ms"] = (time.perf_counter() - t0) * 1000
                timings.append(tm)
                await conn.request("doc/close", {"uri": uri})
    finally:
        await conn.aclose()
    return timings


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--server-url", default=None, help="use this /v1 server instead of starting the local one")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--budget", type=int, default=None, help="context budget in tokens (default: the config's)")
    ap.add_argument("--scenario", choices=("typing", "jump"), default="typing")
    args = ap.parse_args()
    if args.budget:
        os.environ["CODEASSIST_BUDGET"] = str(args.budget)
    with local_model(args.server_url) as url, daemon_env(url) as env:
        from codeassist.client.daemon_client import call

        root = Path(tempfile.mkdtemp(prefix="ca-e2e-"))
        lsp_rounds = {"typing": lsp_typing_round, "jump": lsp_round}
        shown: list[bool] = []
        lsp = asyncio.run(lsp_rounds[args.scenario](env, root, args.requests, random.Random(args.seed), shown))
        lsp_stats = asyncio.run(call("stats"))
        sock = asyncio.run(socket_round(args.requests, random.Random(args.seed + 1)))
    # A request that timed out has no model time to split: it is counted as an error, not as daemon work.
    done = [t for t in sock if t.get("model_ms")]
    model = [t["model_ms"] for t in done]
    debounce = [t.get("debounce_ms", 0.0) for t in done]
    total = [t.get("total_ms", 0.0) for t in done]
    # The daemon's own work: everything in the daemon but waiting for the model and the debounce pause.
    daemon = [max(0.0, t - m - d) for t, m, d in zip(total, model, debounce, strict=True)]
    with_text = [ms for ms, ok in zip(lsp, shown, strict=True) if ok]
    record = {
        "bench": "e2e_latency",
        "machine": machine(),
        "scenario": args.scenario,
        "requests": len(lsp),
        "p50_ms": round(percentile(lsp, 50), 1),
        "p99_ms": round(percentile(lsp, 99), 1),
        "timeouts": lsp_stats["counts"].get("errors", 0),
        "with_ghost_text": round(sum(shown) / max(1, len(shown)), 3),
        # The same latency over the answers that put text on screen (an empty answer is quick and shows nothing).
        "ghost_p50_ms": round(percentile(with_text, 50), 1),
        "ghost_p99_ms": round(percentile(with_text, 99), 1),
        "each_ms": [round(v) for v in lsp],
        # the LSP round's own split (the daemon's counters): the wait after a key, the model's answer time
        "lsp_debounce_ms": lsp_stats["latency_ms"].get("debounce"),
        "lsp_model_ms": lsp_stats["latency_ms"].get("model"),
        "server": lsp_stats.get("server"),
        "debounce_p50_ms": round(percentile(debounce, 50), 1),
        "daemon_p50_ms": round(percentile(daemon, 50), 2),
        "daemon_p99_ms": round(percentile(daemon, 99), 2),
        "model_p50_ms": round(percentile(model, 50), 1),
        "model_p99_ms": round(percentile(model, 99), 1),
        "daemon_share_pct": round(100 * sum(daemon) / max(1e-9, sum(total)), 2),
        "budget": int(os.environ.get("CODEASSIST_BUDGET", "2048")),
        "socket_requests": len(sock),
        "errors_or_timeouts": len(sock) - len(done),
    }
    emit(record)
    print(f"\nmachine: {record['machine']}")
    print(f"{'path':<34}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'keystroke -> ghost text (LSP)':<34}{record['p50_ms']:>10}{record['p99_ms']:>10}")
    print(f"{'  of which model server':<34}{record['model_p50_ms']:>10}{record['model_p99_ms']:>10}")
    print(f"{'  of which daemon (own work)':<34}{record['daemon_p50_ms']:>10}{record['daemon_p99_ms']:>10}")
    print(f"{'  debounce pause (p50)':<34}{record['debounce_p50_ms']:>10}")
    print(
        f"daemon share of in-daemon time: {record['daemon_share_pct']}%; "
        f"{record['errors_or_timeouts']} of {len(sock)} socket requests got no model answer (timeout); "
        f"LSP round ({args.scenario}): {record['timeouts']} timeouts; server: {record['server']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
