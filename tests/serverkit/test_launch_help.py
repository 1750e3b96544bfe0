"""`server-kit launch` without a GPU names both ways on (plan for a GPU box with --gpus; the CPU model here),
and every `launch` / `bench` flag has help text that shows its default."""

from __future__ import annotations

import argparse
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


def _sub(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("name", ["launch", "bench"])
def test_every_flag_has_help_with_its_default(name):
    parser = _sub(name)
    text = " ".join(parser.format_help().split())  # wrapped lines joined
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = action.option_strings[0]
        assert action.help and action.help != argparse.SUPPRESS, f"{name} {flag} has no help"
        if action.default in (None, False) or isinstance(action, argparse._StoreTrueAction):
            continue
        shown = f"(default: {action.default})"
        assert shown in text, f"{name} {flag}: {shown!r} not in its help"
