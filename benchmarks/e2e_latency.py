"""Keystroke-to-completion latency through the real stack on the local model server.

A real LSP client (pygls) types into a real file through `codeassist lsp`; each keystroke is a
didChange followed by an inlineCompletion request, timed at the client. The same documents are then
completed through the daemon socket, whose per-request timings split the time between the daemon
(context, queueing, post-processing) and the model server.

    python benchmarks/e2e_latency.py [--requests 40] [--server-url URL]

Prints one JSON line, then a table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
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


def cursor_positions(text: str, n: int, rng: random.Random) -> list[int]:
    """Ends of lines that have code on them: where a developer pauses and waits for a suggestion."""
    ends = [i for i, ch in enumerate(text) if ch == "\n" and i > 0 and text[i - 1].strip()]
    return sorted(rng.sample(ends, min(n, len(ends))))


async def lsp_round(env: dict[str, str], root: Path, n: int, rng: random.Random) -> list[float]:
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
                client.text_document_did_change(
                    types.DidChangeTextDocumentParams(
                        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version + 1),
                        content_changes=[
                            types.TextDocumentContentChangePartial(
                                range=types.Range(
                                    start=types.Position(line=line, character=col - 1),
                                    end=types.Position(line=line, character=col - 1),
                                ),
                                text=doc[-1],
                            )
                        ],
                    )
                )
                await client.text_document_inline_completion_async(
                    types.InlineCompletionParams(
                        text_document=types.TextDocumentIdentifier(uri=uri),
                        position=types.Position(line=line, character=col),
                        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
                    )
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                client.text_document_did_close(
                    types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
                )
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
    args = ap.parse_args()
    if args.budget:
        os.environ["CODEASSIST_BUDGET"] = str(args.budget)
    with local_model(args.server_url) as url, daemon_env(url) as env:
        root = Path(tempfile.mkdtemp(prefix="ca-e2e-"))
        lsp = asyncio.run(lsp_round(env, root, args.requests, random.Random(args.seed)))
        sock = asyncio.run(socket_round(args.requests, random.Random(args.seed + 1)))
    # A request that timed out has no model time to split: it is counted as an error, not as daemon work.
    done = [t for t in sock if t.get("model_ms")]
    model = [t["model_ms"] for t in done]
    debounce = [t.get("debounce_ms", 0.0) for t in done]
    total = [t.get("total_ms", 0.0) for t in done]
    # The daemon's own work: everything in the daemon but waiting for the model and the debounce pause.
    daemon = [max(0.0, t - m - d) for t, m, d in zip(total, model, debounce, strict=True)]
    record = {
        "bench": "e2e_latency",
        "machine": machine(),
        "requests": len(lsp),
        "lsp_p50_ms": round(percentile(lsp, 50), 1),
        "lsp_p99_ms": round(percentile(lsp, 99), 1),
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
    print(f"{'keystroke -> ghost text (LSP)':<34}{record['lsp_p50_ms']:>10}{record['lsp_p99_ms']:>10}")
    print(f"{'  of which model server':<34}{record['model_p50_ms']:>10}{record['model_p99_ms']:>10}")
    print(f"{'  of which daemon (own work)':<34}{record['daemon_p50_ms']:>10}{record['daemon_p99_ms']:>10}")
    print(f"{'  debounce pause (p50)':<34}{record['debounce_p50_ms']:>10}")
    print(
        f"daemon share of in-daemon time: {record['daemon_share_pct']}%; "
        f"{record['errors_or_timeouts']} of {len(sock)} socket requests got no model answer (timeout)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
