"""Prometheus text exposition: the gateway's own counters/histograms, plus re-exported upstream and GPU stats.

A small hand-written registry (no client library on the request path): label sets are tuples, a
histogram keeps cumulative bucket counts. Upstream metrics (vLLM's ``vllm:*``, llama.cpp's
``llamacpp:*``) are fetched from each replica's ``/metrics``, cached briefly, and re-emitted with a
``replica`` label; GPU figures come from ``nvidia-smi`` when it is on PATH.
"""

from __future__ import annotations

import asyncio
import bisect
import shutil
import time
from collections import defaultdict

from codeassist.serverkit.gateway.upstream import UpstreamClient, UpstreamError

__all__ = ["GPU_QUERY", "Registry", "UpstreamMetrics", "parse_nvidia_smi"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
GPU_QUERY = "index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw"


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    inner = ",".join(f'{n}="{v}"' for n, v in zip(names, values, strict=True))
    return "{" + inner + "}"


class Registry:
    def __init__(self) -> None:
        self._help: dict[str, tuple[str, str, tuple[str, ...]]] = {}
        self._values: dict[str, dict[tuple[str, ...], float]] = defaultdict(lambda: defaultdict(float))
        self._hist: dict[str, dict[tuple[str, ...], list[float]]] = defaultdict(dict)
        self._gauge_fns: dict[str, object] = {}

    def counter(self, name: str, help_: str, labels: tuple[str, ...] = ()) -> None:
        self._help[name] = ("counter", help_, labels)

    def gauge(self, name: str, help_: str, fn=None) -> None:
        self._help[name] = ("gauge", help_, ())
        if fn is not None:
            self._gauge_fns[name] = fn

    def histogram(self, name: str, help_: str, labels: tuple[str, ...] = ()) -> None:
        self._help[name] = ("histogram", help_, labels)

    def inc(self, name: str, *labels: str, by: float = 1.0) -> None:
        self._values[name][labels] += by

    def observe(self, name: str, value: float, *labels: str) -> None:
        h = self._hist[name].get(labels)
        if h is None:
            h = self._hist[name][labels] = [0.0] * (len(LATENCY_BUCKETS) + 2)  # buckets.., count, sum
        i = bisect.bisect_left(LATENCY_BUCKETS, value)
        if i < len(LATENCY_BUCKETS):
            h[i] += 1
        h[-2] += 1
        h[-1] += value

    def value(self, name: str, *labels: str) -> float:
        return self._values[name].get(labels, 0.0)

    def render(self) -> str:
        out: list[str] = []
        for name, (kind, help_, names) in self._help.items():
            out.append(f"# HELP {name} {help_}\n# TYPE {name} {kind}")
            if kind == "histogram":
                for lv, h in self._hist[name].items():
                    acc = 0.0
                    for le, n in zip(LATENCY_BUCKETS, h, strict=False):
                        acc += n
                        out.append(f"{name}_bucket{_labels((*names, 'le'), (*lv, str(le)))} {acc:g}")
                    out.append(f"{name}_bucket{_labels((*names, 'le'), (*lv, '+Inf'))} {h[-2]:g}")
                    out.append(f"{name}_count{_labels(names, lv)} {h[-2]:g}")
                    out.append(f"{name}_sum{_labels(names, lv)} {h[-1]:.6f}")
            elif name in self._gauge_fns:
                for lv, v in self._gauge_fns[name]():  # type: ignore[operator]
                    out.append(f"{name}{lv} {v:g}")
            else:
                for lv, v in self._values[name].items():
                    out.append(f"{name}{_labels(names, lv)} {v:g}")
        return "\n".join(out) + "\n"


def parse_nvidia_smi(text: str) -> list[str]:
    """Turn ``nvidia-smi --query-gpu=GPU_QUERY --format=csv,noheader,nounits`` into metric lines."""
    lines: list[str] = []
    fields = ("utilization_percent", "memory_used_mib", "memory_total_mib", "temperature_celsius", "power_watts")
    for row in text.strip().splitlines():
        cols = [c.strip() for c in row.split(",")]
        if len(cols) < 7:
            continue
        idx, name = cols[0], cols[1].replace('"', "")
        for f, v in zip(fields, cols[2:], strict=False):
            try:
                lines.append(f'codeassist_gpu_{f}{{gpu="{idx}",name="{name}"}} {float(v):g}')
            except ValueError:
                continue  # "[N/A]"
    return lines


class UpstreamMetrics:
    """Fetches and caches the replicas' own metrics and the GPU stats."""

    PREFIXES = ("vllm:", "llamacpp:")

    def __init__(self, client: UpstreamClient, roots: tuple[str, ...], ttl_s: float = 2.0) -> None:
        self.client, self.roots, self.ttl_s = client, roots, ttl_s
        self._cache: tuple[float, str] = (0.0, "")

    async def _one(self, root: str) -> list[str]:
        try:
            status, body = await self.client.request("GET", f"{root}/metrics", timeout=2.0)
        except (UpstreamError, TimeoutError):
            return []
        if status != 200:
            return []
        out: list[str] = []
        label = f'replica="{root}"'
        for line in body.decode(errors="replace").splitlines():
            if line.startswith("#") or not line.startswith(self.PREFIXES):
                continue
            name, sep, rest = line.partition("{")
            if sep:
                out.append(f"{name}{{{label},{rest}")
            else:
                metric, _, value = line.partition(" ")
                out.append(f"{metric}{{{label}}} {value}")
        return out

    async def _gpu(self) -> list[str]:
        exe = shutil.which("nvidia-smi")
        if not exe:
            return []
        try:
            proc = await asyncio.create_subprocess_exec(
                exe,
                f"--query-gpu={GPU_QUERY}",
                "--format=csv,noheader,nounits",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 3.0)
        except (OSError, TimeoutError):
            return []
        return parse_nvidia_smi(out.decode(errors="replace"))

    async def render(self) -> str:
        stamp, text = self._cache
        if time.monotonic() - stamp < self.ttl_s:
            return text
        parts = await asyncio.gather(*(self._one(r) for r in self.roots), self._gpu())
        text = "\n".join(line for p in parts for line in p)
        text = text + "\n" if text else ""
        self._cache = (time.monotonic(), text)
        return text
