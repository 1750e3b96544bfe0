"""The models `launch` chooses from, what each needs in GPU memory, and GPU prices for `plan`.

Base (not instruct) models, because only base models are trained for fill-in-the-middle; all Apache-2.0 (the 3B
is left out: its licence is research-only). Which of them a card *fits* is decided here; which one is *chosen* is
decided by latency (``latency.py``, ``choose.py``): what fits a card says nothing about meeting the completion SLO.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GPU_PRICES", "MODELS", "Gpu", "ModelSpec", "find_model", "max_num_seqs"]


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_mib: int

    @property
    def memory_gb(self) -> float:
        return self.memory_mib / 1024


@dataclass(frozen=True)
class ModelSpec:
    name: str  # Hugging Face id, what vLLM's --model takes
    params_b: float  # billions: sets prefill (TTFT) compute
    layers: int  # tensor parallelism pays two all-reduces per layer and token
    bf16_gb: float  # weight bytes: what each decode step reads
    fp8_gb: float
    kv_mb_per_token: float  # bf16 KV cache, all layers (2 × layers × kv_heads × head_dim × 2 bytes)

    def weights_gb(self, quantization: str | None) -> float:
        return self.fp8_gb if quantization == "fp8" else self.bf16_gb

    @property
    def short(self) -> str:
        return self.name.split("/")[-1]


# Largest first: the choice takes the first that meets the SLO.
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("Qwen/Qwen2.5-Coder-32B", 32.8, 64, 65.5, 33.0, 0.262),
    ModelSpec("Qwen/Qwen2.5-Coder-14B", 14.8, 48, 29.5, 15.5, 0.197),
    ModelSpec("Qwen/Qwen2.5-Coder-7B", 7.6, 28, 15.2, 8.0, 0.057),
    ModelSpec("Qwen/Qwen2.5-Coder-1.5B", 1.5, 28, 3.1, 1.8, 0.029),
)

GPU_MEMORY_UTILIZATION = 0.90  # vLLM's --gpu-memory-utilization; the rest for CUDA graphs and the driver
_RESERVED_GB = 2.0  # per card: activations and CUDA graphs inside vLLM's share
_TOKENS_PER_SEQ = 1024  # a 700-token prompt + 128 completion, rounded up: KV one sequence holds on average
MIN_SEQS, MAX_SEQS = 16, 256


def max_num_seqs(model: ModelSpec, quantization: str | None, memory_gb: float, tp: int = 1) -> int | None:
    """vLLM's --max-num-seqs for ``model`` on ``tp`` cards of ``memory_gb`` each (a power of two, what the KV
    cache left after the weights holds); None when fewer than 16 sequences would fit."""
    kv_gb = tp * (memory_gb * GPU_MEMORY_UTILIZATION - _RESERVED_GB) - model.weights_gb(quantization)
    seqs = kv_gb * 1024 / (model.kv_mb_per_token * _TOKENS_PER_SEQ)
    if seqs < MIN_SEQS:
        return None
    n = MIN_SEQS
    while n * 2 <= min(seqs, MAX_SEQS):
        n *= 2
    return n


def find_model(name: str) -> ModelSpec | None:
    """The table's entry for ``name`` ("Qwen/Qwen2.5-Coder-7B" or "qwen2.5-coder-7b"), else None."""
    key = name.lower().split("/")[-1]
    return next((m for m in MODELS if m.short.lower() == key), None)


# On-demand and spot $/GPU-hour, for `plan` (illustrative cloud list prices; override on the CLI).
GPU_PRICES: dict[str, tuple[float, float]] = {
    "L4": (0.80, 0.30),
    "A10G": (1.21, 0.45),
    "L40S": (1.90, 0.80),
    "A100-80GB": (3.70, 1.60),
    "H100": (4.50, 2.20),
    "H200": (5.50, 2.80),
}
