"""Deployment files from a :class:`LaunchPlan`: systemd units, docker compose, Kubernetes, Caddy.

Secrets are never written here: units and manifests reference an env file / Secret that holds
``VLLM_API_KEY`` (vLLM) and ``CODEASSIST_UPSTREAM_KEY`` + ``CODEASSIST_GATEWAY_PEPPER`` (gateway).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from codeassist.serverkit.launch import LaunchPlan

__all__ = ["caddyfile", "write_compose", "write_k8s", "write_systemd"]

ENV_FILE = "/etc/codeassist/secrets.env"  # mode 0600, created by the admin


def caddyfile(domain: str, gateway_port: int = 8080) -> str:
    """Caddy terminates TLS (automatic certificates) and streams SSE straight through."""
    return (f"{domain} {{\n"
            f"\tencode {{\n\t\tmatch {{\n\t\t\theader Content-Type application/json*\n\t\t}}\n\t\tgzip\n\t}}\n"
            f"\treverse_proxy 127.0.0.1:{gateway_port} {{\n"
            f"\t\tflush_interval -1  # SSE: pass every event at once\n"
            f"\t\ttransport http {{\n\t\t\tread_timeout 120s\n\t\t}}\n\t}}\n}}\n")


def _unit(description: str, exec_start: str, env: dict[str, str], after: str = "network-online.target") -> str:
    env_lines = "".join(f"Environment={k}={v}\n" for k, v in env.items())
    return (f"[Unit]\nDescription={description}\nAfter={after}\nWants=network-online.target\n\n"
            f"[Service]\nType=simple\nUser=codeassist\nEnvironmentFile={ENV_FILE}\n{env_lines}"
            f"ExecStart={exec_start}\nRestart=on-failure\nRestartSec=5\nNoNewPrivileges=true\nPrivateTmp=true\n"
            f"LimitNOFILE=65536\n\n[Install]\nWantedBy=multi-user.target\n")


def write_systemd(plan: LaunchPlan, out: Path, domain: str | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    names = []
    for i, r in enumerate(plan.replicas):
        name = f"codeassist-vllm-{i}.service"
        names.append(name)
        (out / name).write_text(_unit(f"codeassist vLLM replica {i}", shlex.join(r.argv), r.env))
        written.append(out / name)
    gw = out / "codeassist-gateway.service"
    gw.write_text(_unit("codeassist gateway", shlex.join(plan.gateway_argv), {},
                        after=" ".join(["network-online.target", *names])))
    written.append(gw)
    if domain:
        (out / "Caddyfile").write_text(caddyfile(domain))
        written.append(out / "Caddyfile")
    return written


def write_compose(plan: LaunchPlan, path: Path, domain: str = "codeassist.example.com") -> Path:
    """Docker compose: vLLM replicas + gateway + Caddy (TLS) + Prometheus, one host network namespace."""
    services: dict[str, object] = {}
    for i, r in enumerate(plan.replicas):
        services[f"vllm-{i}"] = {
            "image": "vllm/vllm-openai:latest", "network_mode": "host", "ipc": "host",
            "entrypoint": r.argv[:3], "command": r.argv[3:], "env_file": [ENV_FILE],
            "environment": r.env, "volumes": ["hf-cache:/root/.cache/huggingface"],
            "deploy": {"resources": {"reservations": {"devices": [
                {"driver": "nvidia", "device_ids": [str(g) for g in r.gpus], "capabilities": ["gpu"]}]}}},
            "restart": "unless-stopped",
        }
    services["gateway"] = {
        "image": "codeassist-server:latest", "network_mode": "host", "command": plan.gateway_argv[1:],
        "env_file": [ENV_FILE], "volumes": ["gateway-state:/root/.config/codeassist-server"],
        "depends_on": [f"vllm-{i}" for i in range(len(plan.replicas))], "restart": "unless-stopped",
    }
    services["caddy"] = {"image": "caddy:2", "network_mode": "host", "restart": "unless-stopped",
                         "volumes": ["./Caddyfile:/etc/caddy/Caddyfile:ro", "caddy-data:/data"]}
    services["prometheus"] = {"image": "prom/prometheus:latest", "network_mode": "host",
                              "command": ["--config.file=/etc/prometheus/prometheus.yml",
                                          "--web.listen-address=127.0.0.1:9090"],
                              "volumes": ["./prometheus.yml:/etc/prometheus/prometheus.yml:ro"]}
    doc = {"services": services, "volumes": {"hf-cache": {}, "gateway-state": {}, "caddy-data": {}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")  # JSON is valid YAML; compose reads it
    (path.parent / "Caddyfile").write_text(caddyfile(domain))
    (path.parent / "prometheus.yml").write_text(
        "scrape_configs:\n  - job_name: codeassist-gateway\n    scrape_interval: 15s\n"
        "    static_configs:\n      - targets: ['127.0.0.1:8080']\n")
    return path


def write_k8s(plan: LaunchPlan, out: Path, replicas: int | None = None) -> list[Path]:
    """vLLM as a StatefulSet (one pod per GPU node) behind a headless Service; the gateway as a Deployment.

    The gateway's replica list is the seam: one ``--upstream`` per StatefulSet pod DNS name. (For
    autoscaling and KV-aware routing, vLLM's production-stack Helm chart can replace the StatefulSet.)
    """
    out.mkdir(parents=True, exist_ok=True)
    n = replicas or len(plan.replicas)
    argv = [a for a in plan.replicas[0].argv]
    argv[argv.index("--host") + 1] = "0.0.0.0"  # pod network; only the gateway's Service is exposed
    argv[argv.index("--port") + 1] = "8000"
    gpus = len(plan.replicas[0].gpus)
    vllm = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "codeassist-vllm"},
        "spec": {"serviceName": "codeassist-vllm", "replicas": n,
                 "selector": {"matchLabels": {"app": "codeassist-vllm"}},
                 "template": {"metadata": {"labels": {"app": "codeassist-vllm"}}, "spec": {"containers": [{
                     "name": "vllm", "image": "vllm/vllm-openai:latest", "command": argv[:3], "args": argv[3:],
                     "envFrom": [{"secretRef": {"name": "codeassist-secrets"}}],
                     "ports": [{"containerPort": 8000}],
                     "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 10},
                     "resources": {"limits": {"nvidia.com/gpu": gpus}}}]}}}}
    headless = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "codeassist-vllm"},
                "spec": {"clusterIP": "None", "selector": {"app": "codeassist-vllm"},
                         "ports": [{"port": 8000}]}}
    gw_args = plan.gateway_argv[1:]
    cut = gw_args.index("--upstream")
    gw_args = gw_args[:cut] + [x for i in range(n) for x in
                               ("--upstream", f"http://codeassist-vllm-{i}.codeassist-vllm:8000/v1")]
    gateway = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "codeassist-gateway"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "codeassist-gateway"}},
                 "template": {"metadata": {"labels": {"app": "codeassist-gateway"}}, "spec": {"containers": [{
                     "name": "gateway", "image": "codeassist-server:latest", "command": ["server-kit"],
                     "args": gw_args, "envFrom": [{"secretRef": {"name": "codeassist-secrets"}}],
                     "ports": [{"containerPort": 8080}],
                     "readinessProbe": {"httpGet": {"path": "/health", "port": 8080}}}]}}}}
    gw_svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "codeassist-gateway"},
              "spec": {"selector": {"app": "codeassist-gateway"}, "ports": [{"port": 443, "targetPort": 8080}]}}
    files = {"vllm-statefulset.json": vllm, "vllm-service.json": headless, "gateway-deployment.json": gateway,
             "gateway-service.json": gw_svc}
    written = []
    for name, doc in files.items():
        (out / name).write_text(json.dumps(doc, indent=2) + "\n")
        written.append(out / name)
    return written
