"""`server-kit launch`: detect GPUs, choose a model and vLLM flags, and build the commands to run.

Every flag comes with the reason it was chosen (``--dry-run`` prints them). vLLM binds to 127.0.0.1
only: its ``--api-key`` guards ``/v1/*`` but not ``/tokenize`` or ``/metrics``, so the gateway is the
only way in. Several GPUs that each fit the model get one vLLM replica each (the gateway balances
them); a model that needs more than one card is split with tensor parallelism.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field

from codeassist.serverkit.sizing import Gpu, Size, pick_size

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


# Cards with FP8 tensor cores where vLLM's load-time FP8 (W8A8) is the fast path.
_FP8_NATIVE = ("H100", "H200", "H20", "GH200", "H800", "B100", "B200", "GB200")


def fp8_native(name: str) -> bool:
    words = name.upper().replace("-", " ").split()
    return any(tag in words for tag in _FP8_NATIVE)


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
    size: Size
    tensor_parallel: int
    replicas: list[Replica]
    gateway_argv: list[str]
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (flag, why)

    def explain(self) -> str:
        g = ", ".join(f"{x.index}: {x.name} ({x.memory_gb:.0f} GB)" for x in self.gpus)
        lines = [
            f"GPUs: {g}",
            f"Model: {self.size.model} — {self.size.note}",
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
    per_gpu = min(g.memory_gb for g in gpus)
    size = pick_size(per_gpu)
    tp = 1
    pooled = pick_size(per_gpu * len(gpus)) if len(gpus) > 1 else None
    if pooled is not None and (size is None or pooled.model != size.model):
        size, tp = pooled, len(gpus)  # a bigger model over all cards beats one small model per card
    if size is None:
        raise NoGpuError(f"{per_gpu:.0f} GB per GPU is too small for any model in the sizing table")
    if model:
        from dataclasses import replace

        same = model == size.model
        size = replace(
            size,
            model=model,
            quantization=size.quantization if same else None,
            note=f"model given with --model (card sized for {size.model})",
        )
    use_fp8 = fp8 if fp8 is not None else all(fp8_native(g.name) for g in gpus)
    fp8_added = use_fp8 and size.quantization is None
    if fp8_added:
        from dataclasses import replace

        size = replace(size, quantization="fp8")
    elif fp8 is False and size.quantization == "fp8":
        from dataclasses import replace

        size = replace(size, quantization=None)
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
            f"--max-num-seqs {size.max_num_seqs}",
            "concurrent sequences that fit the KV cache for this card/model; the gateway's --max-inflight matches it",
        ),
        ("--max-num-batched-tokens 4096", "chunked prefill in 4k pieces keeps decode steps (ITL) short under load"),
        (f"--gpu-memory-utilization {gpu_memory_utilization}", "weights + KV cache; the rest for CUDA graphs"),
        ("--served-model-name", "a stable name for clients' FIM template lookup"),
    ]
    if fp8_added:
        reasons.append(
            (
                "--quantization fp8",
                "Hopper-class card: FP8 weights halve the bytes each decode step "
                "reads; measured on an H200 (Qwen2.5-Coder-7B, 700 in/128 out, "
                "32 req/s) E2E p99 868 → 635 ms (--fp8 off to keep bf16)",
            )
        )
    elif size.quantization:
        reasons.append(
            (f"--quantization {size.quantization}", "weights quantized at load so the model fits with KV cache room")
        )
    if tp > 1:
        reasons.append((f"--tensor-parallel-size {tp}", "the model needs the memory of all cards together"))
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
    groups = [[g.index for g in gpus]] if tp > 1 else [[g.index] for g in gpus]
    replicas = []
    for i, group in enumerate(groups):
        argv = [
            "python",
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            size.model,
            "--served-model-name",
            size.model.split("/")[-1].lower(),
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
            str(size.max_num_seqs),
            "--max-num-batched-tokens",
            "4096",
            "--gpu-memory-utilization",
            str(gpu_memory_utilization),
        ]
        if size.quantization:
            argv += ["--quantization", size.quantization]
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
        str(size.max_num_seqs * len(replicas)),
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
    return LaunchPlan(gpus, size, tp, replicas, gateway, reasons)
