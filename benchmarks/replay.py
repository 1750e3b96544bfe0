"""Replay typing sessions through a real LSP client, daemon and local model server — the adaptive engine
next to a plain fixed-350 ms-debounce engine, in the same run, with the same simulated user.

**Workload.** Several regions of real files of this repository (``REGIONS``, read from ``git HEAD`` so the
workload does not move with uncommitted edits) are removed and typed back character by character. The
workspace the daemon indexes is a temporary copy of ``client/``, ``context/`` and ``lsp/`` with the regions
removed too (the file on disk must not leak the answer through retrieval). A region is removed up to its last
newline, which stays: while it is typed back the cursor's line has nothing after it, as in an editor after Enter
(figures before this stop's change had the next line's code after the cursor on the same line).

**Typist.** Seeded log-normal gaps between keys (median ~110 ms), a pause at each line start
(0.6-1.4 s), after ``( : , = .`` half of the time (0.4-1.0 s) and after 15 % of spaces (0.3-0.8 s): real
speed. ``--pause-scale 4`` stretches the pauses (not the typing), as earlier figures of this script did for the
CPU model; the headline figures are at real speed (``--pause-scale 1``, the default).

**Pauses.** ``pauses_with_ghost`` is the share of pauses of 600 ms or more at whose end ghost text for the
cursor was on screen (its answer arrived within the pause) — what a user who stops to wait sees.

**Oracle** (``--oracle``): instead of the local model, a scripted stand-in with GPU timings (first token 40 ms,
then 5 ms per 3-character token) that answers the *true* continuation of the file (the hidden text, up to the
request's stop and max_tokens): it measures the engine's own delays, not a model.

**Editor.** Like VS Code, every keystroke sends ``didChange`` then an inline-completion request, and
``$/cancelRequest`` for the previous unanswered one. After an accept the editor asks again at once.

**User.** Ghost text is acted on only after it has been visible for ``REACTION_S`` (250 ms; a suggestion
that continues while the user types through it keeps its first-seen time). Then, at the next keystroke:

1. the whole suggestion matches the upcoming text → accept it all (Tab; ``accepted``);
2. else its first line, newline included, matches → accept the line (``partial``);
3. else its first word (leading spaces + an identifier, or a run of punctuation + an identifier) matches
   and is at least 3 characters → accept the word (``partial``);
4. otherwise keep typing (the engine may serve the rest of a matching suggestion from its cache).

An accept is one keystroke; the accepted characters are not typed. Accepts go through the item's
``codeassist.accept`` command, so the daemon's own counters see them. ``ghost_useful`` counts answers
whose ghost text the user could have taken (rules 1-3, reaction time aside): it measures the model,
not the engine.

**Modes.** ``adaptive``: the full engine (adaptive debounce, in-flight joining, cache with walk-back
typing-through, speculative prefetch). ``fixed``: a plain fixed 350 ms debounce as in Continue — every
keystroke cancels the pending and in-flight request; an LRU keyed by exact prompt and by exact position
(hits only when the very same position comes back); no walk-back typing-through, no joining, no
prefetch. Both use the same line-mode decision, post-processing and context engine.

    python benchmarks/replay.py [--pause-scale 1] [--seed 1] [--modes adaptive,fixed] [--server-url URL] [--oracle]

**Where requests go.** Besides the totals, each mode's answers that took a request are split by what followed
(``request_outcomes``): an accept, a pause with nothing the user could take (the model's misses: an engine that
shows a suggestion at every pause pays for those whatever it does), or more typing; requests never seen by
the user (cancelled, superseded) are the rest. ``--trace T`` writes every key, answer and accept to
``T.MODE.jsonl``.

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
WORKSPACE_DIRS = ("client", "context", "lsp")
# (file, first line (0-based), lines): whole function bodies and classes, about 1,000 characters in all.
REGIONS: tuple[tuple[str, int, int], ...] = (
    ("client/documents.py", 40, 9),
    ("client/latency.py", 13, 5),
    ("lsp/positions.py", 30, 13),
    ("client/protocol.py", 31, 10),
)
REACTION_S = 0.25
PAUSE_S = 0.6
ORACLE_TTFT_S, ORACLE_GAP_S, ORACLE_TOKEN_CHARS = 0.04, 0.005, 3
MIN_WORD = 3


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


def first_word(shown: str) -> str:
    """What an accept-word key takes: leading blanks, then punctuation or an identifier, then an identifier."""
    i = len(shown) - len(shown.lstrip(" \t"))
    j = i
    while j < len(shown) and not (shown[j].isalnum() or shown[j] == "_" or shown[j].isspace()):
        j += 1
    while j < len(shown) and (shown[j].isalnum() or shown[j] == "_"):
        j += 1
    return shown[:j]


def user_take(shown: str, remaining: str) -> int:
    """How many characters of the ghost text the user accepts (0: keep typing); see the module docstring."""
    if remaining.startswith(shown):
        return len(shown)
    nl = shown.find("\n")
    if nl >= 0 and remaining.startswith(shown[: nl + 1]) and shown[:nl].strip():
        return nl + 1
    word = first_word(shown)
    if len(word.strip()) >= MIN_WORD and remaining.startswith(word):
        return len(word)
    return 0


@dataclass
class Outcome:
    keystrokes: int = 0
    answered: list[tuple[float, bool]] = field(default_factory=list)  # (latency ms, non-empty)
    fast_hits: int = 0
    accepted: int = 0
    partial: int = 0
    accepted_chars: int = 0
    useful: int = 0  # answers with ghost text the user could take (all, a line or a word of it)
    pauses: int = 0  # pauses of PAUSE_S or more...
    pauses_with_ghost: int = 0  # ...at whose end ghost text for the cursor was on screen
    trace: list[dict[str, Any]] = field(default_factory=list)  # --trace: one event per key, answer, accept


def make_env(server_url: str, mode: str) -> tuple[dict[str, str], Path]:
    root = Path(tempfile.mkdtemp(prefix="ca-rp-", dir="/tmp"))
    env = {
        **os.environ,
        "CODEASSIST_RUNTIME_DIR": str(root / "run"),
        "CODEASSIST_CONFIG_DIR": str(root / "cfg"),
        "CODEASSIST_STATE_DIR": str(root / "state"),
        "CODEASSIST_LOG_DIR": str(root / "log"),
        "CODEASSIST_SERVER_URL": server_url,
        "CODEASSIST_IDLE_TIMEOUT": "30",
        "CODEASSIST_ENGINE_MODE": mode,
    }
    return env, root


@dataclass
class Region:
    rel: str
    full: str  # the file at HEAD
    start: int
    text: str  # the part to type back


def load_regions() -> list[Region]:
    out = []
    for rel, first, count in REGIONS:
        full = subprocess.run(
            ["git", "-C", str(REPO), "show", f"HEAD:{rel}"], capture_output=True, text=True, check=True
        ).stdout
        lines = full.split("\n")
        start = len("\n".join(lines[:first])) + 1
        # The region's lines without their last newline: the file keeps it, so the cursor's line has nothing after
        # it while the region is typed back (as after Enter in an editor), not the next line's code
        out.append(Region(rel, full, start, "\n".join(lines[first : first + count])))
    return out


def make_workspace(regions: list[Region]) -> Path:
    """HEAD's client/, context/, lsp/ in a temp dir, each replayed file with its region removed."""
    ws = Path(tempfile.mkdtemp(prefix="ca-rp-ws-", dir="/tmp"))
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "HEAD", *WORKSPACE_DIRS], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(ws)], input=archive, check=True)
    for r in regions:
        (ws / r.rel).write_text(r.full[: r.start] + r.full[r.start + len(r.text) :], encoding="utf-8")
    return ws


async def replay_region(client: Any, ws: Path, region: Region, keys: list[Key], out: Outcome) -> None:
    from lsprotocol import types

    path = ws / region.rel
    text = path.read_text(encoding="utf-8")
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    version = 1
    cursor = region.start
    done = 0  # characters of the region in the document
    pending: dict[str, Any] = {}
    seen: dict[str, Any] = {}  # the suggestion on screen: {"cursor", "text", "since"}

    def edit(insert: str) -> None:
        nonlocal text, cursor, version, done
        line, col = offset_to_pos(text, cursor)
        pos = types.Position(line=line, character=col)
        text = text[:cursor] + insert + text[cursor:]
        cursor += len(insert)
        done += len(insert)
        version += 1
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text=insert)
                ],
            )
        )

    def request() -> None:
        prev = pending.get("state")
        if prev and not prev["fut"].done():
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=prev["id"]))
        line, col = offset_to_pos(text, cursor)
        msg_id = f"r{id(pending)}-{version}"
        t0 = time.perf_counter()
        fut = client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION,
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=col),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
            ),
            msg_id=msg_id,
        )
        state: dict[str, Any] = {"id": msg_id, "fut": fut, "t0": t0, "cursor": cursor}

        def done_cb(f: Any) -> None:
            state["t1"] = time.perf_counter()

        fut.add_done_callback(done_cb)
        pending.clear()
        pending["state"] = state

    def ghost() -> tuple[str, Any, float] | None:
        st = pending.get("state") or {}
        fut = st.get("fut")
        if not fut or not fut.done() or fut.cancelled() or fut.exception() or st["cursor"] != cursor:
            return None
        res = fut.result()
        items = getattr(res, "items", None) or []
        if not items or not isinstance(items[0].insert_text, str) or not items[0].insert_text:
            return None
        return items[0].insert_text, items[0].command, st["t1"]

    def settle() -> None:
        st = pending.get("state")
        if st is None or "t1" not in st or "counted" in st:
            return
        st["counted"] = True
        g = ghost()
        ms = (st["t1"] - st["t0"]) * 1000
        take = user_take(g[0], region.text[done:]) if g is not None else 0
        out.answered.append((ms, g is not None))
        out.trace.append(
            {
                "ev": "answer",
                "file": region.rel,
                "at": done,
                "ms": round(ms, 1),
                "shown": g[0] if g else "",
                "take": take,
            }
        )
        if g is not None and ms <= 5:
            out.fast_hits += 1
        if g is None:
            seen.clear()
            return
        shown, _, t1 = g
        out.useful += take > 0
        prev_cursor, prev_text = seen.get("cursor"), seen.get("text", "")
        typed = text[prev_cursor:cursor] if prev_cursor is not None and prev_cursor <= cursor else None
        if not (typed is not None and prev_text.startswith(typed) and prev_text[len(typed) :] == shown):
            seen["since"] = t1  # a new suggestion, not the continuation of the one on screen
        seen.update(cursor=cursor, text=shown)

    i = 0
    while i < len(keys):
        await asyncio.sleep(keys[i].gap_s)
        settle()
        g = ghost()
        if keys[i].gap_s >= PAUSE_S:
            out.pauses += 1
            out.pauses_with_ghost += g is not None
            out.trace.append({"ev": "pause", "file": region.rel, "at": done, "ghost": g is not None})
        if g is not None and time.perf_counter() - seen.get("since", 0.0) >= REACTION_S:
            shown, command, _ = g
            take = user_take(shown, region.text[done:])
            if take:
                edit(shown[:take])
                args = [command.arguments[0]] if take == len(shown) else [command.arguments[0], take]
                await client.workspace_execute_command_async(
                    types.ExecuteCommandParams(command="codeassist.accept", arguments=args)
                )
                out.keystrokes += 1
                out.accepted += take == len(shown)
                out.partial += take < len(shown)
                out.accepted_chars += take
                out.trace.append({"ev": "accept", "file": region.rel, "at": done, "chars": take})
                i = done  # the keys for the accepted characters are not typed
                seen.clear()
                request()
                continue
        edit(keys[i].ch)
        out.trace.append(
            {"ev": "key", "file": region.rel, "at": done, "ch": keys[i].ch, "gap_ms": round(keys[i].gap_s * 1000)}
        )
        out.keystrokes += 1
        i += 1
        request()
    await asyncio.sleep(1.0)
    settle()
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


async def replay(
    mode: str, server_url: str, ws: Path, regions: list[Region], scripts: list[list[Key]]
) -> dict[str, Any]:
    from lsprotocol import types
    from pytest_lsp import ClientServerConfig

    env, root = make_env(server_url, mode)
    client = await ClientServerConfig(server_command=LSP_COMMAND, server_env=env).start()
    td = types.TextDocumentClientCapabilities(inline_completion=types.InlineCompletionClientCapabilities())
    await client.initialize_session(
        types.InitializeParams(capabilities=types.ClientCapabilities(text_document=td), root_uri=ws.as_uri())
    )
    await asyncio.sleep(2.0)  # let the workspace index start, as an editor opened a moment ago would
    out = Outcome()
    t_start = time.perf_counter()
    for region, keys in zip(regions, scripts, strict=True):
        await replay_region(client, ws, region, keys, out)
    wall = time.perf_counter() - t_start
    stats_proc = subprocess.run(
        [sys.executable, "-m", "codeassist.client.cli", "stats", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    stats = json.loads(stats_proc.stdout)
    await client.shutdown_session()
    subprocess.run([sys.executable, "-m", "codeassist.client.cli", "stop"], env=env, capture_output=True, timeout=30)
    shutil.rmtree(root, ignore_errors=True)
    from codeassist.client.latency import percentile

    shown_ms = [ms for ms, ok in out.answered if ok]
    split = request_outcomes(out.trace)
    c = stats["counts"]
    lat = stats["latency_ms"]
    acc = out.accepted + out.partial
    return {
        "bench": "replay",
        "mode": mode,
        "files": len(regions),
        "chars": sum(len(r.text) for r in regions),
        "keystrokes": out.keystrokes,
        "wall_s": round(wall, 1),
        "requests_sent": c["upstream_requests"],
        "prefetch_requests": c["prefetch_requests"],
        "prefetch_used": c.get("prefetch_used"),
        "prefetch_wasted": c.get("prefetch_wasted"),
        "prefetch_held": c.get("prefetch_held"),
        "upstream_cancelled": c.get("upstream_cancelled"),
        "joined": c.get("joined"),
        "accepted": out.accepted,
        "partially_accepted": out.partial,
        "accepted_chars": out.accepted_chars,
        "requests_per_accept": round(c["upstream_requests"] / acc, 2) if acc else None,
        "fast_from_cache_frac": round(out.fast_hits / max(1, out.keystrokes), 3),
        "pauses": out.pauses,
        "pauses_with_ghost": round(out.pauses_with_ghost / out.pauses, 3) if out.pauses else None,
        "ghost_p50_ms": round(percentile(shown_ms, 50) or 0, 1),
        "ghost_p90_ms": round(percentile(shown_ms, 90) or 0, 1),
        "ghost_p99_ms": round(percentile(shown_ms, 99) or 0, 1),
        "ghost_shown": len(shown_ms),
        "ghost_useful": out.useful,
        "empty": c.get("empty"),
        **split,
        "errors": c.get("errors"),
        "replaced": c.get("replaced"),
        "debounce_p50_ms": lat["debounce"]["p50_ms"],
        "pause_delay_p50_ms": (lat.get("pause_delay") or {}).get("p50_ms"),
        "model_p50_ms": lat["model"]["p50_ms"],
        "server_cache_hit_share": (stats.get("server") or {}).get("server_cache_hit_share"),
        "effective_budget": (stats.get("server") or {}).get("effective_budget"),
        "prefill_tps": (stats.get("server") or {}).get("prefill_tokens_per_s"),
        "typed_through": c["typed_through"],
        "cancelled": c["cancelled"],
        "load_1m": round(os.getloadavg()[0], 2),
        "trace": out.trace,
    }


def request_outcomes(trace: list[dict[str, Any]]) -> dict[str, int]:
    """Where the answers that took a request (over 5 ms) went: followed by an accept; at a pause (the next key
    over 350 ms later) with nothing the user could take (the model's misses: an engine that shows something at
    every pause pays for them whatever it does); or during typing."""
    out = {"answers_then_accept": 0, "pause_misses": 0, "answers_while_typing": 0}
    for i, ev in enumerate(trace):
        if ev["ev"] != "answer" or ev["ms"] <= 5:
            continue
        nxt = next((e for e in trace[i + 1 :] if e["ev"] in ("key", "accept")), None)
        if nxt is None:
            continue
        if nxt["ev"] == "pause":
            nxt = next((e for e in trace[trace.index(nxt) + 1 :] if e["ev"] in ("key", "accept")), None)
            if nxt is None:
                continue
        if nxt["ev"] == "accept":
            out["answers_then_accept"] += 1
        elif nxt["gap_ms"] > 350:
            out["pause_misses"] += ev["take"] == 0
        else:
            out["answers_while_typing"] += 1
    return out


def oracle(regions: list[Region]) -> Any:
    """The stand-in's answer: the true text after the prompt's end (found in the file it was typed from), cut at
    the request's stops and ``max_tokens``, in 3-character tokens."""
    fulls = [r.full for r in regions]

    def answer(req: dict[str, Any]) -> list[str]:
        prompt = str(req.get("prompt", ""))
        for n in (400, 200, 80):
            tail = prompt[-n:]
            hit = next(((f, at) for f in fulls if (at := f.find(tail)) >= 0), None)
            if hit is not None:
                break
        else:
            return []
        full, at = hit
        rest = full[at + len(tail) :]
        for stop in req.get("stop") or ():
            if (cut := rest.find(stop)) >= 0:
                rest = rest[:cut]
        rest = rest[: ORACLE_TOKEN_CHARS * int(req.get("max_tokens", 64))]
        return [rest[i : i + ORACLE_TOKEN_CHARS] for i in range(0, len(rest), ORACLE_TOKEN_CHARS)]

    return answer


async def main_async(a: argparse.Namespace) -> list[dict[str, Any]]:
    regions = load_regions()
    scripts = [typing_script(r.text, a.seed + n, a.pause_scale) for n, r in enumerate(regions)]
    ws = make_workspace(regions)
    server: Any = None
    url = a.server_url
    if a.oracle:
        from codeassist.serverkit.standin import StandinBehaviour, StandinServer

        behaviour = StandinBehaviour(ttft_s=ORACLE_TTFT_S, gap_s=ORACLE_GAP_S, answer=oracle(regions))
        server = StandinServer(behaviour=behaviour).start()
        url = server.base_url
    elif not url:
        from codeassist.serverkit.localmodel import LocalModelServer

        sys.path.insert(0, str(REPO))
        from tests.conftest import free_port

        server = LocalModelServer(port=free_port(), parallel=4).start()
        url = f"{server.base_url}/v1"
    try:
        results = []
        for mode in a.modes.split(","):
            results.append(await replay(mode, url, ws, regions, scripts))
            trace = results[-1].pop("trace")
            if a.trace:
                with open(f"{a.trace}.{mode}.jsonl", "w", encoding="utf-8") as f:
                    f.writelines(json.dumps(ev) + "\n" for ev in trace)
            print(json.dumps(results[-1]), flush=True)
        return results
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(ws, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description="replay typing sessions: adaptive vs fixed-350ms debounce")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--modes", default="adaptive,fixed")
    p.add_argument(
        "--pause-scale",
        type=float,
        default=1.0,
        help="stretch pauses (4: the earlier figures' setting for the CPU model); 1 is real speed",
    )
    p.add_argument(
        "--oracle", action="store_true", help="a stand-in with GPU timings answering the true text (no model)"
    )
    p.add_argument("--server-url", default="")
    p.add_argument("--trace", default="", help="write each mode's key/answer/accept events to TRACE.MODE.jsonl")
    a = p.parse_args()
    results = asyncio.run(main_async(a))
    cols = [
        "keystrokes",
        "requests_sent",
        "prefetch_requests",
        "prefetch_used",
        "prefetch_wasted",
        "prefetch_held",
        "accepted",
        "partially_accepted",
        "accepted_chars",
        "requests_per_accept",
        "answers_then_accept",
        "pause_misses",
        "answers_while_typing",
        "ghost_shown",
        "ghost_useful",
        "fast_from_cache_frac",
        "pauses",
        "pauses_with_ghost",
        "ghost_p50_ms",
        "ghost_p90_ms",
        "ghost_p99_ms",
        "debounce_p50_ms",
        "pause_delay_p50_ms",
        "model_p50_ms",
        "server_cache_hit_share",
        "effective_budget",
        "prefill_tps",
        "load_1m",
    ]
    print(f"{'':>22}" + "".join(f"{r['mode']:>12}" for r in results))
    for col in cols:
        print(f"{col:>22}" + "".join(f"{r[col]!s:>12}" for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
