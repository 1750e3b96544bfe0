"""`plan`'s rows: each model on each priced GPU with the req/s one card serves within the completion SLO.

The capacities come from the same latency figures `launch` chooses by (``latency.py``: measured where a run exists,
else the labelled estimate), so `plan` and `launch` agree on what a card carries. A model that misses the SLO on a
card even at a trickle of load is no option there (listed apart, so the absence is explained).
"""

from __future__ import annotations

from dataclasses import dataclass

from codeassist.serverkit.choose import fp8_native
from codeassist.serverkit.latency import Latency, capacity, replica_latency
from codeassist.serverkit.sizing import MODELS, find_model, max_num_seqs

__all__ = ["CARDS", "Option", "default_options", "option_params_b"]

# A representative card for each key of GPU_PRICES: (nvidia-smi name, GB).
CARDS: dict[str, tuple[str, float]] = {
    "L4": ("NVIDIA L4", 22.5),
    "A10G": ("NVIDIA A10G", 22.5),
    "L40S": ("NVIDIA L40S", 45.0),
    "A100-80GB": ("NVIDIA A100 80GB", 80.0),
    "H100": ("NVIDIA H100 80GB HBM3", 79.6),
    "H200": ("NVIDIA H200", 140.4),
}
MIN_REQ_PER_S = 1.0  # below this a card is no practical option for the model


@dataclass(frozen=True)
class Option:
    model: str  # e.g. "Qwen2.5-Coder-7B-FP8"
    gpu: str  # a key of GPU_PRICES
    gpus_per_replica: int
    req_per_s: float  # per replica within the SLO (TTFT p99 ≤ 100 ms, E2E p99 ≤ 700 ms; 700 in / 128 out)
    source: str = "estimate"  # "measured" | "estimate" | "--capacity"


def option_params_b(label: str) -> float | None:
    spec = find_model(label.removesuffix("-FP8"))
    return spec.params_b if spec else None


def default_options() -> tuple[tuple[Option, ...], list[str]]:
    """(options, "MODEL on GPU" pairs that fit but miss the SLO), largest model first."""
    options, missing = [], []
    for m in MODELS:
        for gpu, (name, mem) in CARDS.items():
            quants = ["fp8"] if fp8_native(name) else [None, "fp8"]
            best: Option | None = None
            for q in quants:
                if max_num_seqs(m, q, mem) is None:
                    continue
                cap = capacity(m, q, name) or 0.0
                label = m.short + ("-FP8" if q == "fp8" else "")
                src = _source(replica_latency(m, q, name, 1, 0.0), replica_latency(m, q, name, 1, cap))
                if cap >= MIN_REQ_PER_S and (best is None or cap > best.req_per_s):
                    best = Option(label, gpu, 1, round(cap, 1), src)
            if best is not None:
                options.append(best)
            elif any(max_num_seqs(m, q, mem) is not None for q in quants):
                missing.append(f"{m.short} on {gpu}")
    return tuple(options), missing


def _source(low: Latency | None, at_capacity: Latency | None) -> str:
    if low is None or not low.measured:
        return "estimate"
    return "measured" if at_capacity is not None and at_capacity.measured else "measured, estimated beyond"
