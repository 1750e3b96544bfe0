"""The sizing table: which model and vLLM settings fit a GPU, and what each GPU sustains.

Base (not instruct) models, because only base models are trained for fill-in-the-middle. Capacity
figures are planning estimates for 700-token prompts / 128-token completions at p99 E2E ≤ 0.7 s; they
are inputs to ``plan`` and can be overridden there — measure yours with ``server-kit bench``.

Measured (benchmarks/results/gpu_vllm_H200_20261126): Qwen2.5-Coder-7B shapes on one H200, 32 req/s, every
request decoding all 128 tokens: bf16 E2E p99 868 ms (64 % within the SLO), FP8 weights 635 ms (100 %). Decode
time per token sets E2E at this size, so the 32B rows meet 0.7 s only for shorter completions (their req/s are
unmeasured estimates).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GPU_PRICES", "SIZES", "Gpu", "Size", "pick_size"]


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_mib: int

    @property
    def memory_gb(self) -> float:
        return self.memory_mib / 1024


@dataclass(frozen=True)
class Size:
    min_gb: float             # smallest per-GPU memory this row fits
    model: str
    quantization: str | None  # vLLM --quantization (None: the checkpoint's dtype, bf16)
    weights_gb: float
    max_num_seqs: int
    req_per_s: float          # sustainable 700-in/128-out req/s per replica at the SLO (estimate)
    note: str


# Most capable first; the first row whose min_gb fits the card wins.
SIZES: tuple[Size, ...] = (
    Size(140, "Qwen/Qwen2.5-Coder-32B", None, 65.5, 128, 30.0,
         "32B in bf16 leaves ≥ 60 GB for KV cache on a 141 GB card"),
    Size(70, "Qwen/Qwen2.5-Coder-32B", "fp8", 33.0, 128, 24.0,
         "32B with FP8 weights (vLLM quantizes at load) leaves ~40 GB of KV cache on an 80 GB card"),
    Size(44, "Qwen/Qwen2.5-Coder-32B", "fp8", 33.0, 32, 8.0,
         "32B FP8 fits a 48 GB card with ~8 GB of KV cache: fewer concurrent sequences"),
    Size(20, "Qwen/Qwen2.5-Coder-7B", None, 15.2, 64, 16.0,
         "7B in bf16 on a 24 GB card: the best quality/latency trade-off for ≤ 24 GB"),
    Size(14, "Qwen/Qwen2.5-Coder-7B", "fp8", 8.0, 32, 10.0,
         "7B with FP8 weights to leave KV cache room on a 16 GB card"),
    Size(6, "Qwen/Qwen2.5-Coder-1.5B", None, 3.1, 32, 12.0,
         "1.5B for small cards: fast, lower completion quality"),
)

# On-demand and spot $/GPU-hour, for `plan` (illustrative cloud list prices; override on the CLI).
GPU_PRICES: dict[str, tuple[float, float]] = {
    "L4": (0.80, 0.30),
    "A10G": (1.21, 0.45),
    "L40S": (1.90, 0.80),
    "A100-80GB": (3.70, 1.60),
    "H100": (4.50, 2.20),
    "H200": (5.50, 2.80),
}


def pick_size(memory_gb: float) -> Size | None:
    for s in SIZES:
        if memory_gb >= s.min_gb:
            return s
    return None
