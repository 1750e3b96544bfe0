"""p99 latency of one vLLM replica at a given load: measured where a run exists, else a labelled estimate.

The completion SLO (TTFT p99 ≤ 100 ms, E2E p99 ≤ 700 ms for 700 prompt / 128 completion tokens) decides the model,
so each candidate needs a latency figure at the expected load. Why this shape of estimate: a decode step reads
every weight once, so a token costs weight bytes / memory bandwidth plus a per-step overhead (scheduling, sampling,
attention) that grows with load, because arriving prompts' prefills share the steps; the prefill itself (TTFT)
is compute-bound. The constants are fitted to the H200 runs in ``benchmarks/results/gpu_vllm_H200_20261126``
(Qwen2.5-Coder-7B shapes through the gateway): the formula gives 659 / 850 / 637 ms E2E p99 where those runs
measured 642 / 865 / 660 ms (FP8 at 32 req/s, bf16 at 32 and at 1 req/s). Other cards and models are scaled from
there by bandwidth and compute: an estimate, and labelled so; `server-kit bench` measures the real one.
"""

from __future__ import annotations

from dataclasses import dataclass

from codeassist.serverkit.sizing import ModelSpec

__all__ = [
    "MEASURED_SOURCE",
    "SLO",
    "GpuSpec",
    "Latency",
    "Slo",
    "capacity",
    "estimate",
    "gpu_spec",
    "replica_latency",
]

OUT_TOKENS = 128


@dataclass(frozen=True)
class Slo:
    ttft_ms: float = 100.0
    e2e_ms: float = 700.0


SLO = Slo()


@dataclass(frozen=True)
class GpuSpec:
    bandwidth_tbs: float  # memory bandwidth, TB/s (= GB per ms)
    bf16_tflops: float  # dense tensor throughput


# First entry whose words all appear in the card's name wins (so the specific ones come first).
_SPECS: tuple[tuple[tuple[str, ...], GpuSpec], ...] = (
    (("GH200",), GpuSpec(4.0, 989)),
    (("H200",), GpuSpec(4.8, 989)),
    (("H100", "PCIE"), GpuSpec(2.0, 756)),
    (("H100", "NVL"), GpuSpec(3.9, 835)),
    (("H100",), GpuSpec(3.35, 989)),
    (("H800",), GpuSpec(3.35, 989)),
    (("H20",), GpuSpec(4.0, 148)),
    (("GB200",), GpuSpec(8.0, 2500)),
    (("B200",), GpuSpec(8.0, 2250)),
    (("B100",), GpuSpec(8.0, 1750)),
    (("A100", "80GB"), GpuSpec(2.0, 312)),
    (("A100",), GpuSpec(1.55, 312)),
    (("L40S",), GpuSpec(0.864, 362)),
    (("L40",), GpuSpec(0.864, 181)),
    (("L4",), GpuSpec(0.3, 121)),
    (("A10G",), GpuSpec(0.6, 70)),
    (("A10",), GpuSpec(0.6, 125)),
    (("RTX", "6000", "ADA"), GpuSpec(0.96, 364)),
    (("A6000",), GpuSpec(0.768, 155)),
    (("RTX", "4090"), GpuSpec(1.0, 165)),
    (("V100",), GpuSpec(0.9, 125)),
    (("T4",), GpuSpec(0.32, 65)),
)


def gpu_spec(name: str) -> GpuSpec | None:
    words = set(name.upper().replace("-", " ").split())
    return next((spec for tags, spec in _SPECS if all(t in words for t in tags)), None)


MEASURED_SOURCE = "benchmarks/results/gpu_vllm_H200_20261126"
# (model, quantization, card) -> (req/s, TTFT p99, E2E p99) through the gateway, one replica, 700 in / 128 out.
_MEASURED: dict[tuple[str, str | None, str], tuple[tuple[float, float, float], ...]] = {
    ("Qwen/Qwen2.5-Coder-7B", "fp8", "H200"): ((32.0, 36.1, 642.0),),
    ("Qwen/Qwen2.5-Coder-7B", None, "H200"): ((1.0, 68.2, 660.0), (8.0, 76.5, 871.0), (32.0, 51.0, 865.0)),
}

# Fitted constants (see the module docstring).
_STEP_MS = 1.6  # per decode step, whatever the model
_LOAD_MS = 0.05  # per decode step and req/s of load, for a 7B on an H200 (prefills sharing the steps)
_TTFT_MS, _TTFT_LOAD_MS = 25.0, 0.5  # TTFT p99 of a 7B on an H200: base, and per req/s
_ALLREDUCE_MS = 0.010  # tensor parallelism: two all-reduces per layer and step
_REF_PARAMS_B, _REF_TFLOPS = 7.6, 989.0


@dataclass(frozen=True)
class Latency:
    ttft_p99_ms: float
    e2e_p99_ms: float
    source: str  # "measured (…)" or "estimate (…)"

    @property
    def measured(self) -> bool:
        return self.source.startswith("measured")

    def meets(self, slo: Slo = SLO) -> bool:
        return self.ttft_p99_ms <= slo.ttft_ms and self.e2e_p99_ms <= slo.e2e_ms

    def misses(self, slo: Slo = SLO) -> str:
        """What misses the SLO, e.g. "E2E p99 ≈ 748 ms > 700 ms" ('' when it meets)."""
        approx = "" if self.measured else "≈ "
        out = []
        if self.ttft_p99_ms > slo.ttft_ms:
            out.append(f"TTFT p99 {approx}{self.ttft_p99_ms:.0f} ms > {slo.ttft_ms:g} ms")
        if self.e2e_p99_ms > slo.e2e_ms:
            out.append(f"E2E p99 {approx}{self.e2e_p99_ms:.0f} ms > {slo.e2e_ms:g} ms")
        return ", ".join(out)

    def short(self) -> str:
        approx = "" if self.measured else "≈ "
        return f"TTFT p99 {approx}{self.ttft_p99_ms:.0f} ms, E2E p99 {approx}{self.e2e_p99_ms:.0f} ms"


def _card(name: str) -> str | None:
    words = set(name.upper().replace("-", " ").split())
    return next((c for c in ("H200",) if c in words), None)


def replica_latency(model: ModelSpec, quantization: str | None, gpu_name: str, tp: int, rps: float) -> Latency | None:
    """p99 TTFT and E2E of one replica (``tp`` cards named ``gpu_name``) at ``rps`` req/s; None: unknown card."""
    card = _card(gpu_name)
    if tp == 1 and card is not None:
        # A run at this load or a higher one bounds it (latency grows with load).
        runs = sorted(p for p in _MEASURED.get((model.name, quantization, card), ()) if p[0] >= rps)
        if runs:
            at, ttft, e2e = runs[0]
            return Latency(ttft, e2e, f"measured at {at:g} req/s on an {card}, {MEASURED_SOURCE}")
    spec = gpu_spec(gpu_name)
    return None if spec is None else estimate(model, quantization, spec, tp, rps)


def estimate(model: ModelSpec, quantization: str | None, spec: GpuSpec, tp: int, rps: float) -> Latency:
    """The formula alone (see the module docstring)."""
    compute = (model.params_b / _REF_PARAMS_B) * _REF_TFLOPS / (spec.bf16_tflops * tp)  # prefill time vs the 7B/H200
    step = model.weights_gb(quantization) / (spec.bandwidth_tbs * tp) + _STEP_MS + _LOAD_MS * rps * compute
    if tp > 1:
        step += 2 * model.layers * _ALLREDUCE_MS
    ttft = compute * (_TTFT_MS + _TTFT_LOAD_MS * rps)
    return Latency(ttft, ttft + (OUT_TOKENS - 1) * step, "estimate: the H200 runs scaled by bandwidth and compute")


def capacity(model: ModelSpec, quantization: str | None, gpu_name: str, tp: int = 1, slo: Slo = SLO) -> float | None:
    """The highest req/s one replica serves within ``slo`` (0.0: not even at a trickle; None: unknown card)."""
    if (lat := replica_latency(model, quantization, gpu_name, tp, 0.0)) is None:
        return None
    if not lat.meets(slo):
        return 0.0
    lo, hi = 0.0, 1024.0
    for _ in range(40):  # bisection to well under 0.1 req/s
        mid = (lo + hi) / 2
        lat = replica_latency(model, quantization, gpu_name, tp, mid)
        lo, hi = (mid, hi) if lat is not None and lat.meets(slo) else (lo, mid)
    return lo
