"""`launch --write-helm`: values for vLLM's production-stack chart (router + vLLM replicas), valid against the
chart's own values.schema.json (vendored), with codeassist's gateway manifests in front of the router."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from codeassist.serverkit.cli import main

jsonschema = pytest.importorskip("jsonschema")

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "production-stack-values.schema.json").read_text())
H100 = "NVIDIA H100 80GB HBM3:81559"


def strict(schema: dict) -> dict:
    """The chart's schema with unknown keys refused wherever it lists the known ones (its own allows any key, so
    a misspelt key would pass and be ignored by the templates)."""
    out = copy.deepcopy(schema)

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(out)
    return out


@pytest.fixture
def values(tmp_path, capsys):
    def make(*extra: str) -> tuple[dict, Path]:
        path = tmp_path / "values.yaml"
        assert main(["launch", "--gpus", H100, "--developers", "100", "--write-helm", str(path), *extra]) == 0
        capsys.readouterr()
        return yaml.safe_load(path.read_text()), path

    return make


def test_values_are_yaml_valid_against_the_charts_schema(values):
    doc, _ = values("--replicas", "3", "--model", "Qwen/Qwen2.5-Coder-7B")
    jsonschema.validate(doc, SCHEMA)
    jsonschema.validate(doc, strict(SCHEMA))
    (spec,) = doc["servingEngineSpec"]["modelSpec"]
    for key in ("name", "repository", "tag", "modelURL", "replicaCount", "requestCPU", "requestMemory", "requestGPU"):
        assert key in spec, key
    assert spec["replicaCount"] == 3 and spec["requestGPU"] == 1
    assert spec["name"].replace("-", "").isalnum() and spec["name"] == spec["name"].lower()  # a Service name part
    cfg = spec["vllmConfig"]
    assert cfg["maxModelLen"] == 4608 and cfg["enablePrefixCaching"] is True and cfg["maxNumSeqs"] >= 16
    args = cfg["extraArgs"]
    assert args[args.index("--scheduling-policy") + 1] == "priority" and "--served-model-name" in args
    assert "--host" not in args and "--model" not in args  # the chart sets those
    router = doc["routerSpec"]
    assert router["enableRouter"] is True and router["routingLogic"] == "prefixaware"
    assert doc["servingEngineSpec"]["vllmApiKey"] == {"secretName": "codeassist-secrets", "secretKey": "VLLM_API_KEY"}


def test_replicas_share_the_load_so_the_choice_can_be_larger(values):
    one, _ = values()
    three, _ = values("--replicas", "4")
    assert one["servingEngineSpec"]["modelSpec"][0]["modelURL"] == "Qwen/Qwen2.5-Coder-1.5B"  # 31.6 req/s on one
    assert three["servingEngineSpec"]["modelSpec"][0]["modelURL"] == "Qwen/Qwen2.5-Coder-7B"  # 7.9 req/s each


def test_the_launch_choice_carries_over(values):
    doc, _ = values("--model", "Qwen/Qwen2.5-Coder-7B")
    (spec,) = doc["servingEngineSpec"]["modelSpec"]
    assert spec["modelURL"] == "Qwen/Qwen2.5-Coder-7B" and "--quantization" in spec["vllmConfig"]["extraArgs"]
    assert "tensorParallelSize" not in spec["vllmConfig"]


def test_gateway_in_front_of_the_router_validates(values):
    _, path = values("--helm-release", "team-ai")
    gw_dir = path.parent / "values-gateway"
    dep = json.loads((gw_dir / "gateway-deployment.json").read_text())
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    ups = [args[i + 1] for i, a in enumerate(args) if a == "--upstream"]
    assert ups == ["http://team-ai-router-service:80/v1"]  # the chart names it <release>-router-service
    exe = Path(sys.executable).parent / "kubernetes-validate"
    if not exe.exists():
        pytest.skip("kubernetes-validate not installed (in the test extra)")
    out = subprocess.run(
        [str(exe), "--strict", *map(str, sorted(gw_dir.glob("*.json")))], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
