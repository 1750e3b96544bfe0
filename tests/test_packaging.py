"""A normal (non-editable) install works too: build the wheel, install it in a fresh venv, import it.

The test run itself exercises the editable install.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_imports_outside_the_repo(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)], check=True, timeout=300
    )
    wheel = next(wheels.glob("codeassist-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "codeassist/client/cli.py",
        "codeassist/lsp/server.py",
        "codeassist/context/templates.py",
        "codeassist/serverkit/cli.py",
        "codeassist/serverkit/gateway/__init__.py",
    ):
        assert expected in names
    assert not any(n.startswith(("client/", "tests/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "codeassist = codeassist.client.cli:main" in scripts
    assert "server-kit = codeassist.serverkit.cli:main" in scripts

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Reuse the installed dependencies (a path .pth does not run the editable finder's hook); only the project
    # itself comes from the wheel.
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([venv / "bin" / "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    code = (
        "import codeassist.client.cli, codeassist.lsp.server, codeassist.context.templates, "
        "codeassist.serverkit.cli, codeassist.client.daemon; print(codeassist.client.cli.__file__)"
    )
    out = subprocess.run(
        [venv / "bin" / "python", "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert str(venv) in out  # imported from the installed wheel, not the checkout
    helptext = subprocess.run([venv / "bin" / "codeassist", "--help"], capture_output=True, text=True, check=True)
    assert "complete" in helptext.stdout
