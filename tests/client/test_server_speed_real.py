"""Against the real local model server (llama.cpp, Gemma 3 270M): its answers carry ``timings``, the engine learns
the server's speed from them, and a keystroke's prompt is served from llama-server's prompt cache."""

from __future__ import annotations

from pathlib import Path

from codeassist.client.config import Config
from codeassist.client.documents import Document
from codeassist.client.engine import CompletionEngine
from codeassist.client.transport.http import HttpTransport

from tests.client.test_engine import until

SOURCE = (Path(__file__).resolve().parents[2] / "client" / "engine.py").read_text()[:3000]


async def test_llama_server_timings_teach_the_engine_and_its_cache_serves_the_next_prompt(local_model_url) -> None:
    cfg = Config(server_url=local_model_url, debounce_min_ms=0, debounce_max_ms=0, family="plain")
    # Generous timeouts: this is about what the server reports, not how fast it is on a loaded CI box
    engine = CompletionEngine(cfg, HttpTransport(local_model_url, first_token_timeout=60, total_timeout=120))
    try:
        text = SOURCE.rsplit("\n", 1)[0] + "\n"
        doc = Document(uri="file:///repo/engine.py", text=text, language="python")
        first = await engine.complete(doc, len(text))
        assert first.error is None, first.error
        assert first.timings["server_prompt_n"] > 100  # the server read the prompt (cold)
        speed = engine.speeds.of(engine.transport)
        assert speed.llama and speed.prefill_tps is not None and speed.prefill_tps > 0
        for ch in "zq_":  # characters no answer starts with: a new request, the same prompt start
            doc.apply(len(doc.text), len(doc.text), ch)
            engine.on_change(doc)
        before = (speed.prompt_tokens, speed.cached_tokens)
        second = await engine.complete(doc, len(doc.text))
        assert second.source in ("model", "none"), second.source
        # shown at its first line (the local server is pinned, so warm from the first request): the server's
        # figures come with the whole answer, or with its cancel after the first token
        await until(lambda: speed.prompt_tokens > before[0], timeout=60)
        read, cached = speed.prompt_tokens - before[0], speed.cached_tokens - before[1]
        assert cached >= 0.9 * read, (read, cached)  # only the typed characters were read again
        assert speed.cache_hit_share is not None and speed.cache_hit_share > 0.4
    finally:
        await engine.aclose()
        await engine.transport.aclose()
