"""Deployment files from a :class:`LaunchPlan`: systemd units, docker compose, Caddy (Kubernetes: ``deploy_k8s``).

Secrets are never written here: units and manifests reference an env file / Secret that holds
``VLLM_API_KEY`` (vLLM) and ``CODEASSIST_UPSTREAM_KEY`` + ``CODEASSIST_GATEWAY_PEPPER`` (gateway).
The gateway's container image is built by the Dockerfile at the repository root: ``ENTRYPOINT ["server-kit",
"gateway"]``, so containers get the gateway's flags only; its keys, pepper and audit log live in a volume at
``GATEWAY_STATE_DIR``.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from codeassist.serverkit.launch import LaunchPlan

__all__ = [
    "GATEWAY_IMAGE",
    "GATEWAY_STATE_DIR",
    "caddyfile",
    "gateway_flags",
    "gateway_health_cmd",
    "source_root",
    "write_compose",
    "write_systemd",
]

ENV_FILE = "/etc/codeassist/secrets.env"  # mode 0600, created by the admin
GATEWAY_IMAGE = "codeassist-server:latest"
GATEWAY_STATE_DIR = "/var/lib/codeassist-server"  # the Dockerfile's CODEASSIST_SERVER_DIR and VOLUME


def source_root() -> Path | None:
    """The codeassist checkout holding the Dockerfile (None when installed from a wheel)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "Dockerfile").is_file() else None


def gateway_flags(plan: LaunchPlan, **override: str) -> list[str]:
    """The gateway's flags from the plan (after ``server-kit gateway``), with ``--name value`` overrides."""
    flags = list(plan.gateway_argv[2:])
    for name, value in override.items():
        flag = "--" + name.replace("_", "-")
        flags[flags.index(flag) + 1] = value
    return flags


def gateway_health_cmd(port: int) -> list[str]:
    """The image has no curl: the probe is Python's urllib (as the Dockerfile's HEALTHCHECK)."""
    code = (
        "import sys, urllib.request as u; "
        f"sys.exit(u.urlopen('http://127.0.0.1:{port}/health', timeout=2).status != 200)"
    )
    return ["CMD", "python", "-c", code]


def _container_argv(argv: list[str]) -> list[str]:
    """vLLM's image has python3 (not always python)."""
    return ["python3", *argv[1:]] if argv[0] == "python" else argv


def caddyfile(domain: str, gateway_port: int = 8080) -> str:
    """Caddy terminates TLS (automatic certificates) and streams SSE straight through."""
    return (
        f"{domain} {{\n"
        f"\tencode {{\n\t\tmatch {{\n\t\t\theader Content-Type application/json*\n\t\t}}\n\t\tgzip\n\t}}\n"
        f"\treverse_proxy 127.0.0.1:{gateway_port} {{\n"
        f"\t\tflush_interval -1  # SSE: pass every event at once\n"
        f"\t\ttransport http {{\n\t\t\tread_timeout 120s\n\t\t}}\n\t}}\n}}\n"
    )


def _unit(description: str, exec_start: str, env: dict[str, str], after: str = "network-online.target") -> str:
    env_lines = "".join(f"Environment={k}={v}\n" for k, v in env.items())
    return (
        f"[Unit]\nDescription={description}\nAfter={after}\nWants=network-online.target\n\n"
        f"[Service]\nType=simple\nUser=codeassist\nEnvironmentFile={ENV_FILE}\n{env_lines}"
        f"ExecStart={exec_start}\nRestart=on-failure\nRestartSec=5\nNoNewPrivileges=true\nPrivateTmp=true\n"
        f"LimitNOFILE=65536\n\n[Install]\nWantedBy=multi-user.target\n"
    )


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
    gw.write_text(
        _unit(
            "codeassist gateway", shlex.join(plan.gateway_argv), {}, after=" ".join(["network-online.target", *names])
        )
    )
    written.append(gw)
    if domain:
        flags = gateway_flags(plan)
        (out / "Caddyfile").write_text(caddyfile(domain, int(flags[flags.index("--port") + 1])))
        written.append(out / "Caddyfile")
    return written


def write_compose(
    plan: LaunchPlan, path: Path, domain: str = "codeassist.example.com", image: str = GATEWAY_IMAGE
) -> Path:
    """Docker compose: vLLM replicas + gateway (built from the Dockerfile) + Caddy (TLS) + Prometheus, one host
    network namespace."""
    services: dict[str, object] = {}
    port = int(gateway_flags(plan)[gateway_flags(plan).index("--port") + 1])
    for i, r in enumerate(plan.replicas):
        argv = _container_argv(r.argv)
        services[f"vllm-{i}"] = {
            "image": "vllm/vllm-openai:latest",
            "network_mode": "host",
            "ipc": "host",
            "entrypoint": argv[:3],
            "command": argv[3:],
            "env_file": [ENV_FILE],
            "environment": r.env,
            "volumes": ["hf-cache:/root/.cache/huggingface"],
            "deploy": {
                "resources": {
                    "reservations": {
                        "devices": [
                            {"driver": "nvidia", "device_ids": [str(g) for g in r.gpus], "capabilities": ["gpu"]}
                        ]
                    }
                }
            },
            "restart": "unless-stopped",
        }
    root = source_root()
    # Relative to the compose file's folder, which is where compose resolves it.
    context = os.path.relpath(root, path.parent.resolve()) if root else "."
    services["gateway"] = {
        "build": {"context": context, "dockerfile": "Dockerfile"},
        "image": image,
        "network_mode": "host",
        "command": gateway_flags(plan),
        "env_file": [ENV_FILE],
        "volumes": [f"gateway-state:{GATEWAY_STATE_DIR}"],
        "healthcheck": {
            "test": gateway_health_cmd(port),
            "interval": "15s",
            "timeout": "3s",
            "retries": 3,
            "start_period": "30s",
        },
        "depends_on": [f"vllm-{i}" for i in range(len(plan.replicas))],
        "restart": "unless-stopped",
    }
    services["caddy"] = {
        "image": "caddy:2",
        "network_mode": "host",
        "restart": "unless-stopped",
        "volumes": ["./Caddyfile:/etc/caddy/Caddyfile:ro", "caddy-data:/data"],
    }
    services["prometheus"] = {
        "image": "prom/prometheus:latest",
        "network_mode": "host",
        "command": ["--config.file=/etc/prometheus/prometheus.yml", "--web.listen-address=127.0.0.1:9090"],
        "volumes": ["./prometheus.yml:/etc/prometheus/prometheus.yml:ro"],
    }
    doc = {"services": services, "volumes": {"hf-cache": {}, "gateway-state": {}, "caddy-data": {}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")  # JSON is valid YAML; compose reads it
    (path.parent / "Caddyfile").write_text(caddyfile(domain, port))
    (path.parent / "prometheus.yml").write_text(
        "scrape_configs:\n  - job_name: codeassist-gateway\n    scrape_interval: 15s\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
    return path
