"""`codeassist demo`: the whole path on the built-in default, in one command.

Uses the model server at the configured URL or on ``--port`` when one answers there (else starts the local one),
starts a daemon, completes a sample file through it, prints the completion with a latency breakdown, and ends
with what to do next.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from codeassist.serverkit.localmodel import LocalModelServer

SAMPLE = '''\
import math


def circle_area(radius: float) -> float:
    """Return the area of a circle."""
    return math.pi * radius ** 2


def rectangle_area(width: float, height: float) -> float:
    """Return the area of a rectangle."""
    return '''


SECOND = '''


def triangle_area(base: float, height: float) -> float:
    """Return the area of a triangle."""
    return '''


def _step(label: str, sample: Path, text: str) -> dict[str, object]:
    from codeassist.client.cli import complete_file

    t = time.perf_counter()
    result = asyncio.run(complete_file(sample, len(text), text))
    wall = (time.perf_counter() - t) * 1000
    print(f"\n{label}")
    print("--- file, cursor at <|> (last lines) ---")
    print("\n".join((text + "<|>").splitlines()[-4:]))
    print(f"--- completion (from {result['source']}) ---\n{result['text']!r}")
    if result.get("error"):
        print(f"error: {result['error']}")
    tm = result["timings"]
    model = tm.get("model_ms", 0.0)
    print("--- latency breakdown (ms) ---")
    print(f"  debounce           {tm.get('debounce_ms', 0):8.1f}")
    print(f"  context build      {tm.get('context_ms', 0):8.1f}")
    print(f"  time to 1st token  {tm.get('ttft_ms', 0):8.1f}")
    print(f"  model (stream)     {model:8.1f}")
    print(f"  total in daemon    {tm.get('total_ms', 0):8.1f}")
    print(f"  CLI round trip     {wall:8.1f}  (connect + request + reply)")
    return result


def _openai_models(base: str, timeout: float = 3.0) -> list[str] | None:
    """The model ids ``base``/models lists when it answers as an OpenAI-compatible model server, else None."""
    try:
        resp = httpx.get(f"{base}/models", timeout=timeout)
        data = resp.json().get("data") if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return [str(m.get("id")) for m in data if isinstance(m, dict)] if isinstance(data, list) else None


def _free_port_after(port: int) -> int:
    from codeassist.serverkit.localmodel import port_open

    return next((p for p in range(port + 1, port + 50) if not port_open("127.0.0.1", p)), port + 1)


def _model_server(port: int, started: _Started) -> tuple[str, LocalModelServer | None] | None:
    """The server URL to use and the local server the demo started (None: reused). None: cannot (said why)."""
    from codeassist.client.config import load_config
    from codeassist.serverkit.localmodel import LocalModelError, LocalModelServer, port_open

    configured = (os.environ.get("CODEASSIST_SERVER_URL") or load_config().server_url).rstrip("/")
    local = f"http://127.0.0.1:{port}/v1"
    for url in dict.fromkeys((configured, local)):  # the configured server, else one already on --port
        if _openai_models(url) is not None:
            print(f"using the model server already running at {url}")
            return url, None
    if port_open("127.0.0.1", port):
        print(
            f"codeassist demo: port {port} on 127.0.0.1 is in use by something that is not an OpenAI-compatible "
            f"model server (GET {local}/models lists no models); stop it, or start the demo's server on "
            f"another port: codeassist demo --port {_free_port_after(port)}",
            file=sys.stderr,
        )
        return None
    print(f"starting the local model server (llama.cpp, Gemma 3 270M) on 127.0.0.1:{port} ...", flush=True)
    t = time.perf_counter()
    try:
        # Recorded before it starts: a signal from here on finds it to stop (its start stops it on a signal too).
        server = started.server = LocalModelServer(port=port)
        server.start()
    except LocalModelError as exc:
        print(f"codeassist demo: {exc}", file=sys.stderr)
        return None
    print(f"  ready in {time.perf_counter() - t:.1f}s")
    return local, server


def _what_next(typed_through: dict[str, object]) -> str:
    """What the three steps showed, and the two or three commands that come after a demo."""
    cached = typed_through.get("source") in ("cache", "prefetch")
    step3 = "step 3 came from the cache, with no model request" if cached else "step 3 asked the model again"
    return f"""
what happened: a file went through the daemon (context, debounce, cache) to the model server and back, as your
editor's requests will; {step3}.
note: the bundled model (Gemma 3 270M) is a plumbing check, not a coding model: expect poor suggestions from it.
next:
  codeassist login https://gpu.example.com/v1   your team's server with a real code model (asks for its API key)
  codeassist doctor                             checks that server: network, TLS, key, model, latency
  your editor: Neovim (editors/nvim) or VS Code (editors/vscode), see "Editors" in README.md"""


def _stop_daemon() -> None:
    """Stop the demo's private daemon. After a signal it may still be starting: retry while its socket is there."""
    from codeassist.client import paths
    from codeassist.client.daemon_client import call

    deadline = time.monotonic() + 5.0
    while True:
        try:
            asyncio.run(call("stop", timeout=5.0))
            return
        except Exception:
            if not paths.socket_path().exists() or time.monotonic() > deadline:
                return
            time.sleep(0.1)


@dataclass
class _Started:
    """What the demo started, for the clean-up (after the end or a signal)."""

    server: LocalModelServer | None = None
    url: str | None = None
    private_daemon: bool = False  # only then is the daemon the demo's to stop
    signals: list[int] = field(default_factory=list)


def run_demo(keep: bool = False, port: int = 8000) -> int:
    """The demo; SIGINT/SIGTERM stop what it started and print "stopped" (exit status 128 + the signal), as
    `server-kit launch` does."""
    started = _Started()

    def on_term(signum: int, frame: object) -> None:
        started.signals.append(signum)
        raise KeyboardInterrupt  # SIGTERM takes Ctrl-C's way out, through the same clean-up

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        return _run_demo(keep, port, started)
    except KeyboardInterrupt:
        started.signals.append(signal.SIGINT)
        return 128 + started.signals[0]
    finally:
        # No second signal half-way through the clean-up: it would leave the model server on its port.
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if not keep:
                if started.private_daemon:
                    _stop_daemon()
                if started.server is not None:
                    started.server.stop()
            elif started.url:
                print(f"\nleft running: model server {started.url}, daemon (codeassist status / codeassist stop)")
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, previous)
        if started.signals:
            print("stopped", flush=True)


def _run_demo(keep: bool, port: int, started: _Started) -> int:
    picked = _model_server(port, started)
    if picked is None:
        return 1
    url = started.url = picked[0]
    os.environ["CODEASSIST_SERVER_URL"] = url
    if not keep:
        # A private daemon, so the demo neither reuses nor disturbs one you already run.
        os.environ["CODEASSIST_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="ca-demo-")
        started.private_daemon = True
    work = Path(tempfile.mkdtemp(prefix="codeassist-demo-"))
    sample = work / "shapes.py"
    sample.write_text(SAMPLE, encoding="utf-8")
    first = _step("1. first request (cold: starts the daemon, first prompt for the model)", sample, SAMPLE)
    if not first.get("text"):
        return 1
    _step("2. a new cursor position (warm: daemon running, connection kept alive)", sample, SAMPLE + SECOND)
    # The developer types the first characters of suggestion 1: the rest comes from the cache.
    typed = str(first["text"])[:3]
    third = _step(
        f"3. you type {typed!r}, the start of suggestion 1 (typing-through: no model request)",
        sample,
        SAMPLE + typed,
    )
    print(_what_next(third))
    return 0
