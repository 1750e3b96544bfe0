"""`server-kit launch`: detect GPUs, choose a model and vLLM flags, and build the commands to run.

Every flag comes with the reason it was chosen (``--dry-run`` prints them). vLLM binds to 127.0.0.1
only: its ``--api-key`` guards ``/v1/*`` but not ``/tokenize`` or ``/metrics``, so the gateway is the
only way in. The model is the largest whose p99 latency meets the completion SLO at the team's peak load
(``choose.py``); several GPUs get one vLLM replica per card or per tensor-parallel group (the gateway balances
them).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field

from codeassist.serverkit.choose import Choice, choose, fp8_native
from codeassist.serverkit.sizing import Gpu, find_model, max_num_seqs

__all__ = [
    "NGRAM_SPEC",
    "LaunchPlan",
    "NoGpuError",
    "Replica",
    "detect_gpus",
    "fp8_native",
    "parse_gpus",
    "plan_launch",
]

NGRAM_SPEC = {"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_max": 4, "prompt_lookup_min": 2}
MAX_MODEL_LEN = 4096 + 512  # a 4k-token prompt plus room for the completion


class NoGpuError(RuntimeError):
    pass


def parse_gpus(text: str) -> list[Gpu]:
    """Parse ``nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits``."""
    gpus = []
    for i, row in enumerate(ln for ln in text.splitlines() if ln.strip()):
        name, _, mem = row.rpartition(",")
        gpus.append(Gpu(i, name.strip(), int(float(mem.strip().split()[0]))))
    return gpus


def detect_gpus() -> list[Gpu]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        raise NoGpuError("no NVIDIA GPU found (nvidia-smi is not on PATH)")
    out = subprocess.run(
        [exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    if out.returncode != 0 or not out.stdout.strip():
        raise NoGpuError(f"nvidia-smi found no usable GPU: {out.stderr.strip() or 'no output'}")
    return parse_gpus(out.stdout)


@dataclass
class Replica:
    gpus: list[int]
    port: int
    argv: list[str]

    @property
    def env(self) -> dict[str, str]:
        return {"CUDA_VISIBLE_DEVICES": ",".join(map(str, self.gpus))}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def shell(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.env.items()) + " " + shlex.join(self.argv)


@dataclass
class LaunchPlan:
    gpus: list[Gpu]
    choice: Choice
    model: str  # the choice's, or --model's
    quantization: str | None
    tensor_parallel: int
    max_num_seqs: int
    replicas: list[Replica]
    gateway_argv: list[str]
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (flag, why)
    model_note: str = ""

    def explain(self) -> str:
        g = ", ".join(f"{x.index}: {x.name} ({x.memory_gb:.0f} GB)" for x in self.gpus)
        lines = [
            f"GPUs: {g}",
            f"Model: {self.model}{' (FP8)' if self.quantization == 'fp8' else ''} — {self.model_note}",
        ]
        if self.choice.runner_up is not None:
            lines.append(f"Runner-up: {self.choice.runner_up.label()} — {self.choice.runner_up_why}")
        other = self.choice.runner_up.model.name if self.choice.runner_up else "NAME"
        lines += [
            f"Override: --model {other} (or any model); measure the real latency with `server-kit bench`",
            f"Replicas: {len(self.replicas)} × tensor-parallel {self.tensor_parallel}",
            "",
            "# vLLM (one per replica; loopback only; VLLM_API_KEY comes from an env file, never argv)",
        ]
        lines += [r.shell() for r in self.replicas]
        lines += [
            "",
            "# gateway (the only way in; keys via `server-kit keys add`)",
            shlex.join(self.gateway_argv),
            "",
            "Why each flag:",
        ]
        width = max(len(f) for f, _ in self.reasons)
        lines += [f"  {f:<{width}}  {why}" for f, why in self.reasons]
        return "\n".join(lines)


def plan_launch(
    gpus: list[Gpu],
    *,
    base_port: int = 8000,
    gateway_port: int = 8080,
    gateway_host: str = "0.0.0.0",
    expected_qps: float = 0.0,
    spec_max_qps: float = 8.0,
    speculative: bool | None = None,
    model: str | None = None,
    gpu_memory_utilization: float = 0.90,
    fp8: bool | None = None,
) -> LaunchPlan:
    if not gpus:
        raise NoGpuError("no GPU given")
    choice = choose(gpus, expected_qps, fp8=fp8, model=model)
    if choice is None:
        per_gpu = min(g.memory_gb for g in gpus)
        raise NoGpuError(f"{per_gpu:.0f} GB per GPU is too small for any model in the sizing table")
    lay = choice.pick
    name, quant, note = lay.model.name, lay.quantization, choice.why
    if model and find_model(model) is None:  # not in the table: served on the layout the table picked
        name = model
        if quant == "fp8" and fp8 is None and not all(fp8_native(g.name) for g in gpus):
            quant = None  # FP8 was only to fit the table's model
        note = (
            "given with --model; not in the sizing table, so its latency is not estimated "
            f"(cards laid out as for {lay.model.name})"
        )
    tp = lay.tp
    seqs = lay.max_num_seqs
    use_spec = speculative if speculative is not None else expected_qps <= spec_max_qps
    reasons = [
        ("--host 127.0.0.1", "vLLM's --api-key does not guard /tokenize, /metrics…; only the gateway is exposed"),
        ("--port", f"one port per replica from {base_port}; the gateway gets each as --upstream"),
        (f"--max-model-len {MAX_MODEL_LEN}", "4k-token prompts + 512 completion; a smaller limit reserves less KV"),
        (
            "--enable-prefix-caching",
            "keystrokes resend nearly the same prompt: reuse its KV (default in V1, explicit here)",
        ),
        (
            "--scheduling-policy priority",
            "honours the per-request `priority` the gateway sets (interactive 0 < chat 5 < prefetch 10 < batch 20)",
        ),
        (
            f"--max-num-seqs {seqs}",
            "concurrent sequences that fit the KV cache for this card/model; the gateway's --max-inflight matches it",
        ),
        ("--max-num-batched-tokens 4096", "chunked prefill in 4k pieces keeps decode steps (ITL) short under load"),
        (f"--gpu-memory-utilization {gpu_memory_utilization}", "weights + KV cache; the rest for CUDA graphs"),
        ("--served-model-name", "a stable name for clients' FIM template lookup"),
    ]
    if quant == "fp8" and all(fp8_native(g.name) for g in gpus):
        reasons.append(
            (
                "--quantization fp8",
                "Hopper-class card: FP8 weights halve the bytes each decode step "
                "reads; measured on an H200 (Qwen2.5-Coder-7B, 700 in/128 out, "
                "32 req/s) E2E p99 868 → 635 ms (--fp8 off to keep bf16)",
            )
        )
    elif quant:
        reasons.append(
            (f"--quantization {quant}", "weights quantized at load: fewer bytes per decode step, and KV cache room")
        )
    if tp > 1:
        fits_one = max_num_seqs(lay.model, lay.quantization, min(g.memory_gb for g in gpus), 1) is not None
        why_tp = (
            "each decode step reads only a share of the weights: on one card the model misses the latency target"
            if fits_one
            else "the model needs the memory of several cards"
        )
        reasons.append((f"--tensor-parallel-size {tp}", why_tp))
    if use_spec:
        reasons.append(
            (
                "--speculative-config ngram",
                f"prompt-lookup speculation speeds up code edits at low load "
                f"(expected {expected_qps:g} ≤ {spec_max_qps:g} req/s)",
            )
        )
    else:
        reasons.append(
            (
                "(no --speculative-config)",
                f"n-gram speculation slows vLLM down at high QPS (expected {expected_qps:g} > {spec_max_qps:g} req/s)",
            )
        )
    idx = [g.index for g in gpus]
    groups = [idx[k : k + tp] for k in range(0, len(idx), tp)]
    replicas = []
    for i, group in enumerate(groups):
        argv = [
            "python",
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            name,
            "--served-model-name",
            name.split("/")[-1].lower(),
            "--host",
            "127.0.0.1",
            "--port",
            str(base_port + i),
            "--max-model-len",
            str(MAX_MODEL_LEN),
            "--enable-prefix-caching",
            "--scheduling-policy",
            "priority",
            "--max-num-seqs",
            str(seqs),
            "--max-num-batched-tokens",
            "4096",
            "--gpu-memory-utilization",
            str(gpu_memory_utilization),
        ]
        if quant:
            argv += ["--quantization", quant]
        if tp > 1:
            argv += ["--tensor-parallel-size", str(tp)]
        if use_spec:
            argv += ["--speculative-config", json.dumps(NGRAM_SPEC, separators=(",", ":"))]
        replicas.append(Replica(group, base_port + i, argv))
    gateway = [
        "server-kit",
        "gateway",
        "--host",
        gateway_host,
        "--port",
        str(gateway_port),
        "--max-inflight",
        str(seqs * len(replicas)),
    ]
    for r in replicas:
        gateway += ["--upstream", r.url]
    reasons.append(
        (
            "gateway --max-inflight",
            "bounded to the replicas' --max-num-seqs so queueing (and priority) "
            "happens in the gateway, not as a pile-up inside vLLM",
        )
    )
    return LaunchPlan(gpus, choice, name, quant, tp, seqs, replicas, gateway, reasons, note)
