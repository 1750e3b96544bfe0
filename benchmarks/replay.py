"""Replay a typing session through a real LSP client, daemon and local model server — adaptive engine
next to a plain fixed-350 ms-debounce engine, in the same run.

The session "re-types" a real file: a region of it is removed, then typed back character by character
with seeded, realistic gaps (a typist's rhythm, longer pauses after punctuation and at line ends).
Like an editor, every keystroke sends `didChange` then an inline-completion request, and cancels the
previous unanswered one with `$/cancelRequest`. When the ghost text showing at the next keystroke is
what the user was about to type, the user accepts it (Tab: the whole text when all of it matches,
else the matching words — a partial accept) through the item's `codeassist.accept` command.

    python benchmarks/replay.py [--file client/documents.py] [--start-line 40] [--chars 300] [--seed 1]
                                [--pause-scale 4] [--server-url URL]

Prints one JSON line per mode, then a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LSP_COMMAND = [sys.executable, "-m", "codeassist.client.cli", "lsp"]


@dataclass
class Key:
    ch: str
    gap_s: float  # time before this keystroke


def typing_script(text: str, seed: int, pause_scale: float = 1.0) -> list[Key]:
    """Gaps between keys; ``pause_scale`` stretches the pauses (not the typing) for a slow model server."""
    rng = random.Random(seed)
    keys = []
    for i, ch in enumerate(text):
        gap = rng.lognormvariate(-2.2, 0.35)  # median ~110 ms between keys
        prev = text[i - 1] if i else ""
        if prev == "\n":
            gap += pause_scale * rng.uniform(0.6, 1.4)  # thinking at a line start
        elif prev in "(:,=." and rng.random() < 0.5:
            gap += pause_scale * rng.uniform(0.4, 1.0)
        elif prev == " " and rng.random() < 0.15:
            gap += pause_scale * rng.uniform(0.3, 0.8)
        keys.append(Key(ch, gap))
    return keys


def offset_to_pos(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset)
    col = offset - (text.rfind("\n", 0, offset) + 1)
    return line, len(text[offset - col : offset].encode("utf-16-le")) // 2


@dataclass
class Outcome:
    keystrokes: int = 0
    answered: list[tuple[float, bool]] = field(default_factory=list)  # (latency ms, non-empty)
    fast_hits: int = 0
    accepted: int = 0
    partial: int = 0
    accepted_chars: int = 0


def make_env(server_url: str, mode: str) -> tuple[dict[str, str], Path]:
    root = Path(tempfile.mkdtemp(prefix="ca-rp-", dir="/tmp"))
    env = {**os.environ, "CODEASSIST_RUNTIME_DIR": str(root / "run"), "CODEASSIST_CONFIG_DIR": str(root / "cfg"),
           "CODEASSIST_STATE_DIR": str(root / "state"), "CODEASSIST_LOG_DIR": str(root / "log"),
           "CODEASSIST_SERVER_URL": server_url, "CODEASSIST_IDLE_TIMEOUT": "30", "CODEASSIST_ENGINE_MODE": mode}
    return env, root


async def replay(mode: str, server_url: str, path: Path, start: int, region: str, keys: list[Key]) -> dict[str, Any]:
    from lsprotocol import types
    from pytest_lsp import ClientServerConfig

    env, root = make_env(server_url, mode)
    client = await ClientServerConfig(server_command=LSP_COMMAND, server_env=env).start()
    td = types.TextDocumentClientCapabilities(inline_completion=types.InlineCompletionClientCapabilities())
    await client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(text_document=td), root_uri=path.parent.as_uri()))
    full = path.read_text(encoding="utf-8")
    text = full[:start] + full[start + len(region) :]
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    out = Outcome()
    version = 1
    cursor = start
    done = 0  # characters of the region in the document
    pending: dict[str, Any] = {}

    def edit(insert: str) -> None:
        nonlocal text, cursor, version, done
        line, col = offset_to_pos(text, cursor)
        pos = types.Position(line=line, character=col)
        text = text[:cursor] + insert + text[cursor:]
        cursor += len(insert)
        done += len(insert)
        version += 1
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos),
                                                                     text=insert)]))

    def request() -> None:
        prev = pending.get("state")
        if prev and not prev["fut"].done():
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=prev["id"]))
        line, col = offset_to_pos(text, cursor)
        msg_id = f"r{version}"
        t0 = time.perf_counter()
        fut = client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=col),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)),
            msg_id=msg_id)
        state: dict[str, Any] = {"id": msg_id, "fut": fut, "t0": t0, "cursor": cursor}

        def done_cb(f: Any) -> None:
            state["t1"] = time.perf_counter()
        fut.add_done_callback(done_cb)
        pending.clear()
        pending["state"] = state

    def ghost() -> tuple[str, Any] | None:
        st = pending.get("state") or {}
        fut = st.get("fut")
        if not fut or not fut.done() or fut.cancelled() or fut.exception() or st["cursor"] != cursor:
            return None
        res = fut.result()
        items = getattr(res, "items", None) or []
        if not items or not isinstance(items[0].insert_text, str) or not items[0].insert_text:
            return None
        return items[0].insert_text, items[0].command

    def settle() -> None:
        st = pending.get("state")
        if st is None or "t1" not in st or "counted" in st:
            return
        st["counted"] = True
        ok = ghost() is not None
        ms = (st["t1"] - st["t0"]) * 1000
        out.answered.append((ms, ok))
        if ok and ms <= 5:
            out.fast_hits += 1

    i = 0
    while i < len(keys):
        await asyncio.sleep(keys[i].gap_s)
        settle()
        g = ghost()
        remaining = region[done:]
        if g is not None:
            shown, command = g
            take = len(shown) if remaining.startswith(shown) else 0
            if not take:
                n = 0
                while n < min(len(shown), len(remaining)) and shown[n] == remaining[n]:
                    n += 1
                # accept word by word: up to the last word boundary inside the matching part
                cut = max((j + 1 for j in range(n) if not shown[j].isalnum() and shown[j] != "_"), default=0)
                take = cut if cut >= 4 else 0
            if take:
                edit(shown[:take])
                args = [command.arguments[0]] if take == len(shown) else [command.arguments[0], take]
                await client.workspace_execute_command_async(types.ExecuteCommandParams(
                    command="codeassist.accept", arguments=args))
                out.keystrokes += 1
                out.accepted += take == len(shown)
                out.partial += take < len(shown)
                out.accepted_chars += take
                i = done  # the keys for the accepted characters are not typed
                request()
                continue
        edit(keys[i].ch)
        out.keystrokes += 1
        i += 1
        request()
    await asyncio.sleep(1.0)
    settle()
    stats_proc = subprocess.run([sys.executable, "-m", "codeassist.client.cli", "stats", "--json"], env=env,
                                capture_output=True, text=True, timeout=30)
    stats = json.loads(stats_proc.stdout)
    await client.shutdown_session()
    subprocess.run([sys.executable, "-m", "codeassist.client.cli", "stop"], env=env, capture_output=True, timeout=30)
    shutil.rmtree(root, ignore_errors=True)
    from codeassist.client.latency import percentile

    shown_ms = [ms for ms, ok in out.answered if ok]
    c = stats["counts"]
    acc = out.accepted + out.partial
    return {
        "bench": "replay", "mode": mode, "keystrokes": out.keystrokes, "chars": len(region),
        "requests_sent": c["upstream_requests"], "prefetch_requests": c["prefetch_requests"],
        "accepted": out.accepted, "partially_accepted": out.partial, "accepted_chars": out.accepted_chars,
        "requests_per_accept": round(c["upstream_requests"] / acc, 2) if acc else None,
        "fast_from_cache_frac": round(out.fast_hits / max(1, out.keystrokes), 3),
        "ghost_p50_ms": round(percentile(shown_ms, 50) or 0, 1),
        "ghost_p99_ms": round(percentile(shown_ms, 99) or 0, 1),
        "ghost_shown": len(shown_ms), "debounce_p50_ms": stats["latency_ms"]["debounce"]["p50_ms"],
        "model_p50_ms": stats["latency_ms"]["model"]["p50_ms"], "typed_through": c["typed_through"],
        "cancelled": c["cancelled"],
    }


async def main_async(a: argparse.Namespace) -> list[dict[str, Any]]:
    path = (REPO / a.file).resolve() if not a.file.is_absolute() else a.file
    full = path.read_text(encoding="utf-8")
    lines = full.split("\n")
    start = len("\n".join(lines[: a.start_line])) + 1
    region = full[start : start + a.chars]
    region = region[: region.rfind("\n") + 1] or region
    keys = typing_script(region, a.seed, a.pause_scale)
    server = None
    url = a.server_url
    if not url:
        from codeassist.serverkit.localmodel import LocalModelServer

        sys.path.insert(0, str(REPO))
        from tests.conftest import free_port

        server = LocalModelServer(port=free_port(), parallel=4).start()
        url = f"{server.base_url}/v1"
    try:
        results = []
        for mode in a.modes.split(","):
            results.append(await replay(mode, url, path, start, region, keys))
            print(json.dumps(results[-1]), flush=True)
        return results
    finally:
        if server is not None:
            server.stop()


def main() -> int:
    p = argparse.ArgumentParser(description="replay a typing session: adaptive vs fixed-350ms debounce")
    p.add_argument("--file", type=Path, default=Path("client/documents.py"))
    p.add_argument("--start-line", type=int, default=40)
    p.add_argument("--chars", type=int, default=300)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--modes", default="adaptive,fixed")
    p.add_argument("--pause-scale", type=float, default=4.0,
                   help="stretch pauses so a CPU model (seconds per completion) can answer within them")
    p.add_argument("--server-url", default="")
    a = p.parse_args()
    results = asyncio.run(main_async(a))
    cols = ["keystrokes", "requests_sent", "accepted", "partially_accepted", "requests_per_accept",
            "fast_from_cache_frac", "ghost_p50_ms", "ghost_p99_ms", "debounce_p50_ms"]
    print(f"{'':>22}" + "".join(f"{r['mode']:>12}" for r in results))
    for col in cols:
        print(f"{col:>22}" + "".join(f"{r[col]!s:>12}" for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
