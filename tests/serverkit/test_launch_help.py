"""`server-kit launch` without a GPU names both ways on (plan for a GPU box with --gpus; the CPU model here),
and every `launch` / `bench` flag has help text that shows its default."""

from __future__ import annotations

import re

import pytest
from codeassist.serverkit.cli import build_parser, main


def test_no_gpu_dry_run_suggests_gpus_and_the_cpu_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    assert main(["launch", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "--model-server local" in err
    hint = re.search(r"--gpus '([^']+)'", err)
    assert hint, err
    # the suggested command works as written: a dry run for that card, from this machine
    assert main(["launch", "--dry-run", "--gpus", hint.group(1)]) == 0
    assert "vllm.entrypoints.openai.api_server" in capsys.readouterr().out


def test_no_gpu_write_files_suggests_gpus(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["launch", "--write-compose", str(tmp_path / "c.yaml")]) == 1
    err = capsys.readouterr().err
    assert "--gpus" in err and "--model-server local" in err


def help_entries(name: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """``server-kit NAME --help`` as printed: each option's first flag -> its help text (wrapped lines joined)."""
    with pytest.raises(SystemExit):
        main([name, "--help"])
    entries: dict[str, str] = {}
    flag = None
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("  -"):  # an option: its flags (and metavar), then its help on this line or the next
            invocation, _, text = line.strip().partition("  ")
            flag = invocation.split(",")[0].split(" ")[0]
            entries[flag] = text.strip()
        elif flag and line.startswith("   "):
            entries[flag] = f"{entries[flag]} {line.strip()}".strip()
        else:
            flag = None
    return entries


@pytest.mark.parametrize("name", ["launch", "bench"])
def test_every_flag_has_help_with_its_default(name, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    entries = help_entries(name, capsys)
    assert len(entries) > 10
    for flag, text in entries.items():
        assert text, f"{name} {flag} has no help"
    for dest, default in vars(build_parser().parse_args([name])).items():
        if dest in ("command", "func") or default in (None, False):
            continue
        flag = "--" + dest.replace("_", "-")
        assert f"(default: {default})" in entries[flag], f"{name} {flag}: its default is not in its help"
