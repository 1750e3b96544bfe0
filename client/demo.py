"""`codeassist demo`: the whole path on the built-in default, in one command.

Starts the local model server (unless one already answers at the configured URL), starts a daemon,
completes a sample file through it, and prints the completion with a latency breakdown.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import httpx

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


def _server_alive(base: str) -> bool:
    try:
        return httpx.get(f"{base}/models", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def run_demo(keep: bool = False, port: int = 8000) -> int:
    from codeassist.client.config import load_config
    from codeassist.serverkit.localmodel import LocalModelError, LocalModelServer

    url = os.environ.get("CODEASSIST_SERVER_URL") or load_config().server_url
    server = None
    if not _server_alive(url):
        url = f"http://127.0.0.1:{port}/v1"
        print(f"starting the local model server (llama.cpp, Gemma 3 270M) on 127.0.0.1:{port} ...", flush=True)
        t = time.perf_counter()
        try:
            server = LocalModelServer(port=port).start()
        except LocalModelError as exc:
            print(f"codeassist demo: {exc}")
            return 1
        print(f"  ready in {time.perf_counter() - t:.1f}s")
    else:
        print(f"using the model server already at {url}")
    os.environ["CODEASSIST_SERVER_URL"] = url
    if not keep:
        # A private daemon, so the demo neither reuses nor disturbs one you already run.
        os.environ["CODEASSIST_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="ca-demo-")
    work = Path(tempfile.mkdtemp(prefix="codeassist-demo-"))
    sample = work / "shapes.py"
    sample.write_text(SAMPLE, encoding="utf-8")
    try:
        first = _step("1. first request (cold: starts the daemon, first prompt for the model)", sample, SAMPLE)
        if not first.get("text"):
            return 1
        _step("2. a new cursor position (warm: daemon running, connection kept alive)", sample, SAMPLE + SECOND)
        # The developer types the first characters of suggestion 1: the rest comes from the cache.
        typed = str(first["text"])[:3]
        _step(f"3. you type {typed!r}, the start of suggestion 1 (typing-through: no model request)",
              sample, SAMPLE + typed)
        return 0
    finally:
        if not keep:
            from codeassist.client.daemon_client import call

            try:
                asyncio.run(call("stop"))
            except Exception:
                pass
            if server is not None:
                server.stop()
        else:
            print(f"\nleft running: model server {url}, daemon (codeassist status / codeassist stop)")
