"""The VS Code extension, outside VS Code (which cannot be downloaded here): type-check and compile it, run
the activation unit tests with Node's test runner, and package a .vsix with @vscode/vsce."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

VSCODE = Path(__file__).resolve().parents[2] / "editors" / "vscode"
NPM = shutil.which("npm")
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    not (NPM and NODE), reason="the VS Code extension needs Node.js and npm on PATH (apt-get install nodejs npm)"
)


def npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    assert NPM is not None
    return subprocess.run([NPM, *args], cwd=VSCODE, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """`npm ci` when node_modules is missing or older than package-lock.json."""
    marker = VSCODE / "node_modules" / ".package-lock.json"
    lock = VSCODE / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        out = npm("ci", "--no-audit", "--no-fund")
        if out.returncode != 0 and re.search(r"ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED", out.stderr):
            pytest.skip(f"npm ci cannot reach the npm registry: {out.stderr.strip().splitlines()[-1]}")
        assert out.returncode == 0, out.stderr
    return VSCODE / "node_modules"


def test_typecheck(node_modules: Path) -> None:
    out = npm("run", "typecheck")
    assert out.returncode == 0, out.stdout + out.stderr


def test_activation_unit_tests(node_modules: Path) -> None:
    out = npm("test")
    assert out.returncode == 0, out.stdout + out.stderr
    passed = re.search(r"^# pass (\d+)$", out.stdout, re.M)
    failed = re.search(r"^# fail (\d+)$", out.stdout, re.M)
    assert passed and failed, out.stdout
    assert int(failed[1]) == 0 and int(passed[1]) >= 9, out.stdout


def test_vsce_packages_a_vsix(node_modules: Path, tmp_path: Path) -> None:
    vsix = tmp_path / "codeassist.vsix"
    assert npm("run", "compile").returncode == 0
    out = subprocess.run(
        [str(node_modules / ".bin" / "vsce"), "package", "--out", str(vsix)],
        cwd=VSCODE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    names = set(zipfile.ZipFile(vsix).namelist())
    for required in (
        "extension/package.json",
        "extension/out/extension.js",
        "extension/out/settings.js",
        "extension/node_modules/vscode-languageclient/package.json",
        "extension.vsixmanifest",
    ):
        assert required in names, f"{required} missing from the .vsix"
    assert not any(n.startswith(("extension/src/", "extension/out/test/")) for n in names), "sources/tests packaged"
