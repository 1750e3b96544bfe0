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


def _server_alive(base: str) -> bool:
    try:
        return httpx.get(f"{base}/models", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def run_demo(keep: bool = False, port: int = 8000) -> int:
    from codeassist.client.cli import complete_file
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
        for label in ("first request (cold: daemon start, model load)", "second request (warm)"):
            t = time.perf_counter()
            result = asyncio.run(complete_file(sample, len(SAMPLE), SAMPLE))
            wall = (time.perf_counter() - t) * 1000
            print(f"\n{label}:")
            print("--- sample file, cursor at <|> ---")
            print(SAMPLE + "<|>")
            print(f"--- completion ---\n{result['text']!r}")
            if result.get("error"):
                print(f"error: {result['error']}")
            tm = result["timings"]
            print("--- latency breakdown (ms) ---")
            print(f"  context build      {tm.get('context_ms', 0):8.1f}")
            print(f"  time to 1st token  {tm.get('ttft_ms', 0):8.1f}")
            print(f"  model (stream)     {tm.get('model_ms', 0):8.1f}")
            print(f"  daemon overhead    {tm.get('daemon_ms', 0):8.1f}")
            print(f"  total in daemon    {tm.get('total_ms', 0):8.1f}")
            print(f"  CLI round trip     {wall:8.1f}  (includes connecting, and starting the daemon the first time)")
        return 0 if result["text"] else 1
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
