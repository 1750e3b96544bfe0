"""Which model `launch` serves: the largest whose p99 meets the completion SLO at the expected peak load.

Why not "the largest that fits": on one H100 a 32B in FP8 fits with room to spare, but each decode step reads
33 GB of weights, so 128 tokens take well over a second; a 7B meets 700 ms. Every layout a set of cards allows
(each model, its weight format, tensor parallelism over 1/2/4/8 cards, one replica per group) is scored with
``latency.replica_latency`` at its share of the load; the first model in size order with a layout that meets
wins, and the next larger one is shown as the runner-up with the reason it lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from codeassist.serverkit.latency import SLO, Latency, Slo, capacity, gpu_spec, replica_latency
from codeassist.serverkit.sizing import MODELS, Gpu, ModelSpec, find_model, max_num_seqs

__all__ = ["Choice", "Layout", "choose", "fp8_native", "layouts"]

# Cards with FP8 tensor cores where vLLM's load-time FP8 (W8A8) is the fast path.
_FP8_NATIVE = ("H100", "H200", "H20", "GH200", "H800", "B100", "B200", "GB200")


def fp8_native(name: str) -> bool:
    words = name.upper().replace("-", " ").split()
    return any(tag in words for tag in _FP8_NATIVE)


@dataclass(frozen=True)
class Layout:
    model: ModelSpec
    quantization: str | None
    tp: int
    replicas: int
    max_num_seqs: int
    rps_per_replica: float
    latency: Latency | None  # None: a card with no known bandwidth

    @property
    def meets(self) -> bool:
        return self.latency is not None and self.latency.meets()

    def label(self) -> str:
        q = " (FP8)" if self.quantization == "fp8" else ""
        tp = f", tensor-parallel {self.tp}" if self.tp > 1 else ""
        return f"{self.model.name}{q}{tp}"


@dataclass(frozen=True)
class Choice:
    pick: Layout
    why: str  # why the pick: its latency at the load, or that nothing met
    runner_up: Layout | None = None
    runner_up_why: str = ""


def _quantizations(gpus: list[Gpu], fp8: bool | None) -> list[str | None]:
    if fp8 is True or (fp8 is None and all(fp8_native(g.name) for g in gpus)):
        return ["fp8"]  # measured faster on Hopper; --fp8 on elsewhere: weight-only FP8
    return [None] if fp8 is False else [None, "fp8"]  # bf16 first; FP8 weights when bf16 misses or does not fit


def layouts(model: ModelSpec, gpus: list[Gpu], expected_rps: float, fp8: bool | None = None) -> list[Layout]:
    """Every way ``model`` fits these cards, in order of preference (bf16 before FP8, fewer cards per replica)."""
    per_gpu = min(g.memory_gb for g in gpus)
    name = min(gpus, key=lambda g: g.memory_gb).name  # a mix of cards is sized for the smallest
    out = []
    for quant in _quantizations(gpus, fp8):
        for tp in (t for t in (1, 2, 4, 8) if t <= len(gpus) and len(gpus) % t == 0):
            seqs = max_num_seqs(model, quant, per_gpu, tp)
            if seqs is None:
                continue
            replicas = len(gpus) // tp
            rps = expected_rps / replicas
            out.append(Layout(model, quant, tp, replicas, seqs, rps, replica_latency(model, quant, name, tp, rps)))
    return out


def _fastest(ls: list[Layout]) -> Layout:
    return min(ls, key=lambda x: x.latency.e2e_p99_ms if x.latency else float("inf"))


def _at(lay: Layout) -> str:
    return f"at {lay.rps_per_replica:.3g} req/s per replica"


def choose(
    gpus: list[Gpu], expected_rps: float, *, fp8: bool | None = None, model: str | None = None, slo: Slo = SLO
) -> Choice | None:
    """The model and layout for these cards at ``expected_rps`` (None: no model fits them)."""
    card = min(gpus, key=lambda g: g.memory_gb).name
    fitting = [(m, ls) for m in MODELS if (ls := layouts(m, gpus, expected_rps, fp8))]
    if not fitting:
        return None
    if model is not None and (spec := find_model(model)) is not None:
        ls = layouts(spec, gpus, expected_rps, fp8)
        if ls:
            lay = next((x for x in ls if x.meets), _fastest(ls))
            return Choice(lay, f"given with --model; {_judge(lay, slo)}")
    if gpu_spec(card) is None:  # no bandwidth figure: latency unknown, fall back to the largest that fits
        lay = fitting[0][1][0]
        return Choice(lay, f"the largest model that fits; latency not estimated ({card} is not in the table)")
    for i, (_m, ls) in enumerate(fitting):
        meeting = [x for x in ls if x.meets]
        if meeting:
            pick = meeting[0]
            if i > 0:
                bigger = _fastest(fitting[i - 1][1])
                return Choice(pick, _judge(pick, slo), bigger, _why_lost(bigger, card, slo))
            smaller = next((x for _, s in fitting[1:] for x in s if x.meets), None)
            why = "the largest model in the table; it also meets" if smaller else ""
            return Choice(pick, _judge(pick, slo), smaller, why)
    fastest = _fastest([x for _, ls in fitting for x in ls])
    return Choice(
        fastest,
        f"no model meets the SLO on these cards at {expected_rps:.3g} req/s: the fastest is picked "
        f"({fastest.latency.short() if fastest.latency else '?'} {_at(fastest)}); more or faster cards, "
        f"or shorter completions, would meet it",
    )


def _judge(lay: Layout, slo: Slo) -> str:
    if lay.latency is None:
        return "latency not estimated for this card"
    verdict = "meets" if lay.latency.meets(slo) else "misses"
    return (
        f"{verdict} the completion SLO (TTFT p99 ≤ {slo.ttft_ms:g} ms, E2E p99 ≤ {slo.e2e_ms:g} ms, 700 in / 128 out) "
        f"{_at(lay)}: {lay.latency.short()} ({lay.latency.source})"
    )


def _why_lost(lay: Layout, card: str, slo: Slo) -> str:
    assert lay.latency is not None
    why = f"{lay.latency.misses(slo)} {_at(lay)} ({lay.latency.source})"
    cap = capacity(lay.model, lay.quantization, card, lay.tp, slo) or 0.0
    if cap >= 0.1:
        why += f"; it meets up to {cap:.3g} req/s per replica"
        need = lay.rps_per_replica * lay.replicas / cap
        why += f" ({int(need) + 1} such replicas would carry this load)"
    else:
        why += "; not even at a trickle of load"
    return why
