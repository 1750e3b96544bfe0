"""`codeassist login/logout/config` against a key-checking gateway in front of the real model server."""

from __future__ import annotations

import json
import os
import secrets
import stat
import threading
import time
from pathlib import Path

from tests.realparts import patient, write_sample


def _scan_cmdlines(token: str, stop: threading.Event, hits: list[str]) -> None:
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if token.encode() in raw:
                hits.append(raw.decode(errors="replace"))
        time.sleep(0.01)


def _files_containing(root: Path, token: str, skip: set[Path]) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and path not in skip and token.encode() in path.read_bytes():
            found.append(path)
    return found


def test_login_refuses_a_wrong_key_and_stores_a_good_one_announced(
    daemon_env_factory, local_model_url, proxy_factory
) -> None:
    token = "ca-" + secrets.token_hex(16)
    proxy = proxy_factory(local_model_url, token=token)
    env = patient(daemon_env_factory(proxy.url))
    creds = Path(env.env["CODEASSIST_CONFIG_DIR"]) / "credentials.json"

    stop, hits = threading.Event(), []
    scanner = threading.Thread(target=_scan_cmdlines, args=(token, stop, hits), daemon=True)
    scanner.start()
    try:
        wrong = env.run("login", "--key-stdin", input="ca-wrong-key-0000000000\n")
        assert wrong.returncode == 1
        assert "refused" in wrong.stderr and "nothing stored" in wrong.stderr
        assert not creds.exists()

        good = env.run("login", "--key-stdin", input=token + "\n")
        assert good.returncode == 0, good.stderr
        # No keyring backend on this box: the fallback is announced on one line, and the file is private.
        warning = [ln for ln in good.stderr.splitlines() if "warning" in ln]
        assert len(warning) == 1 and str(creds) in warning[0] and "0600" in warning[0]
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        assert token not in good.stdout + good.stderr

        # The daemon sends the stored key: a completion goes through the gateway.
        _, loc = write_sample(env.root)
        done = env.run("complete", loc, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["text"].strip()
        assert f"Bearer {token}" in proxy.seen_auth
        doctor = env.run("doctor", "--json", "-n", "2")
        assert json.loads(doctor.stdout)["ok"], doctor.stdout
    finally:
        stop.set()
        scanner.join()
    assert hits == []
    # Plain text only in the announced 0600 file: not in logs, state, config.toml or the daemon's files.
    assert _files_containing(env.root, token, skip={creds}) == []

    out = env.run("logout")
    assert out.returncode == 0 and "removed" in out.stdout
    assert token not in creds.read_text()
    doctor = env.run("doctor", "--json", "-n", "0")
    report = json.loads(doctor.stdout)
    assert doctor.returncode == 1
    auth = next(c for c in report["checks"] if c["name"] == "auth")
    assert not auth["ok"] and "requires an API key" in auth["detail"] and "codeassist login" in auth["fix"]


def test_login_never_takes_the_key_from_argv(daemon_env_factory) -> None:
    env = daemon_env_factory("http://127.0.0.1:9/v1")
    r = env.run("login", "http://127.0.0.1:9/v1", "sk-in-argv")
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr
    # No terminal and no --key-stdin: refuse rather than read a key from a pipe silently.
    r = env.run("login", input="sk-from-pipe\n")
    assert r.returncode == 2 and "--key-stdin" in r.stderr


def test_config_shows_values_and_where_they_come_from(daemon_env_factory, tmp_path: Path) -> None:
    env = daemon_env_factory("http://127.0.0.1:9/v1")
    user_file = Path(env.env["CODEASSIST_CONFIG_DIR"]) / "config.toml"
    user_file.parent.mkdir(parents=True, exist_ok=True)
    user_file.write_text(
        'budget = 3000\nfallback = ["default", "tunnel"]\n[endpoints]\noffice = "https://gw:8443/v1"\n'
    )
    project = tmp_path / "proj"
    (project / "sub").mkdir(parents=True)
    (project / ".git").mkdir()  # the repo root: the search for a project file stops there
    (project / ".codeassist.toml").write_text("max_tokens = 48\nbudget = 1500\n")
    env.env["CODEASSIST_DEBOUNCE_MAX_MS"] = "250"

    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "codeassist.client.cli", "config", "--json"],
        env=env.env,
        cwd=project / "sub",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    values = json.loads(r.stdout)["values"]
    assert values["budget"] == {"value": 1500, "source": str(project / ".codeassist.toml")}
    assert values["max_tokens"]["source"] == str(project / ".codeassist.toml")
    assert values["fallback"] == {"value": ["default", "tunnel"], "source": str(user_file)}
    assert values["endpoints"]["value"] == {"office": "https://gw:8443/v1"}
    assert values["debounce_max_ms"] == {"value": 250.0, "source": "environment"}
    assert values["server_url"] == {"value": "http://127.0.0.1:9/v1", "source": "environment"}
    assert values["temperature"]["source"] == "default"
    text = env.run("config").stdout
    assert "debounce_max_ms" in text and "# environment" in text


def test_set_user_value_keeps_tables_and_other_keys(tmp_path: Path, monkeypatch) -> None:
    from codeassist.client.config import load_config, set_user_value

    cfg_file = tmp_path / "config.toml"
    monkeypatch.setenv("CODEASSIST_CONFIG", str(cfg_file))
    cfg_file.write_text('budget = 3000\n[endpoints]\noffice = "https://gw/v1"\n')
    set_user_value("server_url", "https://gpu.example.com/v1")
    set_user_value("budget", 2500)
    cfg = load_config(project_dir=tmp_path, env={"CODEASSIST_CONFIG": str(cfg_file)})
    assert (cfg.server_url, cfg.budget, cfg.endpoints) == (
        "https://gpu.example.com/v1",
        2500,
        {"office": "https://gw/v1"},
    )
