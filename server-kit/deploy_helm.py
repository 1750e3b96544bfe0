"""Past one box: values for vLLM's production-stack Helm chart (a router + N vLLM replicas on Kubernetes), with
codeassist's gateway in front of the chart's router.

Why this chart: it runs the replicas as Deployments the router discovers by label, routes by prefix (a keystroke's
prompt shares its prefix with the last one, so the same replica's KV cache answers it), and scales the replica
count without touching the gateway — whose one upstream is the router's Service. The keys the chart has no field
for (scheduling policy, served name, FP8, speculation) go in ``vllmConfig.extraArgs``, as `launch` would run them.
Chart: https://github.com/vllm-project/production-stack (helm/, `vllm/vllm-stack`); keys as of chart 0.1.12.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from codeassist.serverkit.deploy import GATEWAY_IMAGE
from codeassist.serverkit.deploy_k8s import gateway_objects, write_objects
from codeassist.serverkit.launch import MAX_MODEL_LEN, LaunchPlan
from codeassist.serverkit.sizing import find_model

__all__ = ["helm_values", "router_url", "write_helm"]

ROUTER_PORT = 80  # the chart's routerSpec.servicePort
SECRET = "codeassist-secrets"  # VLLM_API_KEY for the replicas (and the router's model discovery)

# vLLM flags `launch` sets that the chart writes itself from vllmConfig (or owns: host, port, the model).
_CHART_FLAGS = {
    "--model": 1,
    "--host": 1,
    "--port": 1,
    "--max-model-len": 1,
    "--enable-prefix-caching": 0,
    "--max-num-seqs": 1,
    "--gpu-memory-utilization": 1,
    "--tensor-parallel-size": 1,
}


def router_url(release: str) -> str:
    """The router Service the chart creates ("<release>-router-service"), as the gateway's upstream."""
    return f"http://{release}-router-service:{ROUTER_PORT}/v1"


def _engine_name(model: str) -> str:
    """The chart puts modelSpec.name into Service names, which allow only a-z, 0-9 and '-'."""
    return re.sub(r"[^a-z0-9-]+", "-", model.split("/")[-1].lower()).strip("-")[:40]


def _extra_args(argv: list[str]) -> list[str]:
    args, i = [], 3  # after "python -m vllm.entrypoints.openai.api_server"
    while i < len(argv):
        if argv[i] in _CHART_FLAGS:
            i += 1 + _CHART_FLAGS[argv[i]]
            continue
        args.append(argv[i])
        i += 1
    return args


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def helm_values(plan: LaunchPlan, replicas: int | None = None) -> dict:
    argv = plan.replicas[0].argv
    spec = find_model(plan.model)
    weights_gb = spec.weights_gb(plan.quantization) if spec else 16.0
    vllm_config: dict[str, object] = {
        "enablePrefixCaching": True,
        "maxModelLen": MAX_MODEL_LEN,
        "maxNumSeqs": plan.max_num_seqs,
        "gpuMemoryUtilization": float(_flag(argv, "--gpu-memory-utilization")),
        "extraArgs": _extra_args(argv),
    }
    if plan.tensor_parallel > 1:
        vllm_config["tensorParallelSize"] = plan.tensor_parallel
    model_spec = {
        "name": _engine_name(plan.model),
        "repository": "vllm/vllm-openai",
        "tag": "latest",
        "modelURL": plan.model,
        "replicaCount": replicas or len(plan.replicas),
        "requestCPU": 8,
        # host memory: the weights pass through it while loading, plus the server itself
        "requestMemory": f"{max(32, int(weights_gb * 1.5) + 16)}Gi",
        "requestGPU": plan.tensor_parallel,
        "pvcStorage": f"{max(50, int(weights_gb * 2))}Gi",  # the Hugging Face download, kept across restarts
        "vllmConfig": vllm_config,
    }
    return {
        "servingEngineSpec": {
            "enableEngine": True,
            "vllmApiKey": {"secretName": SECRET, "secretKey": "VLLM_API_KEY"},
            "modelSpec": [model_spec],
        },
        "routerSpec": {
            "enableRouter": True,
            "repository": "lmcache/lmstack-router",
            "tag": "latest",
            "replicaCount": 1,
            "serviceType": "ClusterIP",  # only the gateway is exposed
            "servicePort": ROUTER_PORT,
            "serviceDiscovery": "k8s",
            "routingLogic": "prefixaware",  # keystrokes resend nearly the same prompt: keep it on one KV cache
        },
    }


def write_helm(
    plan: LaunchPlan, path: Path, release: str = "codeassist", image: str = GATEWAY_IMAGE, replicas: int | None = None
) -> list[Path]:
    """The chart's values (YAML; JSON is YAML) at ``path``, and the gateway's manifests beside it in
    ``<stem>-gateway/``, its upstream the chart's router."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(helm_values(plan, replicas), indent=2) + "\n")
    gateway = gateway_objects(plan, [router_url(release)], image)
    return [path, *write_objects(path.parent / f"{path.stem}-gateway", gateway)]
