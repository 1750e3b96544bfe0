"""Kubernetes manifests from a :class:`LaunchPlan`: vLLM as a StatefulSet behind a headless Service, the gateway
as a Deployment (the Dockerfile's image) with its keys and audit log on a PersistentVolumeClaim.

The gateway's replica list is the seam: one ``--upstream`` per StatefulSet pod DNS name; with vLLM's
production-stack Helm chart instead (``deploy_helm``), its one upstream is the chart's router Service.
"""

from __future__ import annotations

import json
from pathlib import Path

from codeassist.serverkit.deploy import GATEWAY_IMAGE, GATEWAY_STATE_DIR, gateway_flags
from codeassist.serverkit.launch import LaunchPlan

__all__ = ["GATEWAY_PORT", "gateway_objects", "write_k8s", "write_objects"]

GATEWAY_PORT = 8080  # in the pod; the Service maps 80 to it (TLS ends at the Ingress)
_UID = 10001  # the Dockerfile's non-root user


def gateway_objects(plan: LaunchPlan, upstreams: list[str], image: str = GATEWAY_IMAGE) -> dict[str, dict]:
    """The gateway's Deployment, Service and state PVC (file name -> object), in front of ``upstreams``."""
    flags = gateway_flags(plan, host="0.0.0.0", port=str(GATEWAY_PORT))
    flags = flags[: flags.index("--upstream")] + [x for u in upstreams for x in ("--upstream", u)]
    labels = {"app": "codeassist-gateway"}
    container = {
        "name": "gateway",
        "image": image,  # ENTRYPOINT server-kit gateway: the flags are its args
        "args": flags,
        "envFrom": [{"secretRef": {"name": "codeassist-secrets"}}],
        "ports": [{"containerPort": GATEWAY_PORT, "name": "http"}],
        # /health is 503 while no upstream answers: not ready, but alive (no restarts while vLLM loads)
        "readinessProbe": {"httpGet": {"path": "/health", "port": GATEWAY_PORT}, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": GATEWAY_PORT}, "periodSeconds": 20},
        "volumeMounts": [{"name": "state", "mountPath": GATEWAY_STATE_DIR}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "codeassist-gateway"},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # the state volume is ReadWriteOnce
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": _UID,
                        "runAsGroup": _UID,
                        "fsGroup": _UID,  # the volume writable by that user
                    },
                    "containers": [container],
                    "volumes": [{"name": "state", "persistentVolumeClaim": {"claimName": "codeassist-gateway-state"}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "codeassist-gateway"},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": GATEWAY_PORT}]},
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "codeassist-gateway-state"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    return {"gateway-deployment.json": deployment, "gateway-service.json": service, "gateway-state-pvc.json": pvc}


def write_objects(out: Path, objects: dict[str, dict]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in objects.items():
        (out / name).write_text(json.dumps(doc, indent=2) + "\n")
        written.append(out / name)
    return written


def write_k8s(plan: LaunchPlan, out: Path, replicas: int | None = None, image: str = GATEWAY_IMAGE) -> list[Path]:
    n = replicas or len(plan.replicas)
    argv = list(plan.replicas[0].argv)
    argv[0] = "python3" if argv[0] == "python" else argv[0]  # vLLM's image has python3
    argv[argv.index("--host") + 1] = "0.0.0.0"  # pod network; only the gateway's Service is exposed
    argv[argv.index("--port") + 1] = "8000"
    labels = {"app": "codeassist-vllm"}
    vllm = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "codeassist-vllm"},
        "spec": {
            "serviceName": "codeassist-vllm",
            "replicas": n,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:latest",
                            "command": argv[:3],
                            "args": argv[3:],
                            "envFrom": [{"secretRef": {"name": "codeassist-secrets"}}],
                            "ports": [{"containerPort": 8000}],
                            "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 10},
                            "resources": {"limits": {"nvidia.com/gpu": len(plan.replicas[0].gpus)}},
                        }
                    ]
                },
            },
        },
    }
    headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "codeassist-vllm"},
        "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": 8000}]},
    }
    upstreams = [f"http://codeassist-vllm-{i}.codeassist-vllm:8000/v1" for i in range(n)]
    objects = {"vllm-statefulset.json": vllm, "vllm-service.json": headless, **gateway_objects(plan, upstreams, image)}
    return write_objects(out, objects)
