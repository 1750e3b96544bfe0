"""The settings that choose which program the VS Code extension runs are machine-scoped: a workspace's
.vscode/settings.json (a cloned repository) must not be able to set them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "editors" / "vscode" / "package.json"


@pytest.mark.parametrize("name", ["codeassist.command", "codeassist.args", "codeassist.env"])
def test_program_settings_are_machine_scoped(name: str) -> None:
    contributes = json.loads(PACKAGE.read_text())["contributes"]["configuration"]
    sections = contributes if isinstance(contributes, list) else [contributes]
    props = {k: v for s in sections for k, v in s.get("properties", {}).items()}
    assert props[name].get("scope") == "machine", f'{name} must have "scope": "machine"'
