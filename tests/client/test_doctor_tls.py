"""Real TLS (a trustme CA) in front of the real model server, and doctor's verdicts on it."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.conftest import free_port
from tests.realparts import patient, write_sample


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[str, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    chain = tmp_path / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    ca_file = tmp_path / "team-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return str(chain), str(ca_file)


def _check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


def test_doctor_explains_bad_hostname_and_untrusted_certificate(
    daemon_env_factory, local_model_url, proxy_factory, tls_files
) -> None:
    chain, ca_file = tls_files
    token = "ca-" + secrets.token_hex(12)
    proxy = proxy_factory(local_model_url, token=token, certfile=chain, keyfile=chain)

    # The certificate names "localhost", not the address.
    env = daemon_env_factory(f"https://127.0.0.1:{proxy.port}/v1")
    env.env["CODEASSIST_CA_BUNDLE"] = ca_file
    r = env.run("doctor", "--json", "-n", "0")
    assert r.returncode == 1
    tls = _check(json.loads(r.stdout), "tls")
    assert not tls["ok"] and "hostname mismatch" in tls["detail"] and "127.0.0.1" in tls["detail"]
    assert "localhost" in tls["detail"]  # what the certificate is for
    assert "subjectAltName" in tls["fix"]

    # Right name, but our CA is not trusted without ca_bundle.
    env = daemon_env_factory(f"https://localhost:{proxy.port}/v1")
    r = env.run("doctor", "--json", "-n", "0")
    assert r.returncode == 1
    tls = _check(json.loads(r.stdout), "tls")
    assert not tls["ok"] and "not trusted" in tls["detail"] and "ca_bundle" in tls["fix"]
    text = env.run("doctor", "-n", "0").stdout
    assert "[FAIL] tls" in text and "fix:" in text
    # login refuses to store a key it could not verify
    r = env.run("login", "--key-stdin", input=token + "\n")
    assert r.returncode == 1 and "nothing stored" in r.stderr
    assert not (Path(env.env["CODEASSIST_CONFIG_DIR"]) / "credentials.json").exists()

    # With the team CA configured: TLS, auth and a completion through the daemon all work.
    env.env["CODEASSIST_CA_BUNDLE"] = ca_file
    # A shared 2-core CI box can be slow: the latency figures below must not turn into timeouts.
    env.env.update({"CODEASSIST_FIRST_TOKEN_TIMEOUT": "30", "CODEASSIST_TOTAL_TIMEOUT": "60"})
    wrong = env.run("login", "--key-stdin", input="ca-not-the-key-123456\n")
    assert wrong.returncode == 1 and "refused" in wrong.stderr
    assert env.run("login", "--key-stdin", input=token + "\n").returncode == 0
    report = json.loads(env.run("doctor", "--json", "-n", "3").stdout)
    assert _check(report, "tls")["ok"] and "certificate valid for localhost" in _check(report, "tls")["detail"]
    assert _check(report, "auth")["ok"] and report["ok"], report
    assert "gemma" in _check(report, "model")["detail"]
    lat = report["latency"]
    assert lat["samples"] == 3 and lat["via"] == "daemon" and lat["errors"] == 0
    for key in ("dns", "connect", "tls", "ttft", "total", "daemon_overhead"):
        assert lat[key]["n"] == 3 and lat[key]["p50_ms"] <= lat[key]["p99_ms"], key
    assert lat["ttft"]["p50_ms"] > 0 and lat["tls"]["p50_ms"] > 0
    _, loc = write_sample(env.root)
    out = env.run("complete", loc, "--json")
    assert json.loads(out.stdout)["text"].strip(), out.stdout


def test_doctor_says_when_the_stored_key_is_wrong(daemon_env_factory, local_model_url, proxy_factory) -> None:
    proxy = proxy_factory(local_model_url, token="ca-right-key-abcdef")
    env = patient(daemon_env_factory(proxy.url))
    env.env["CODEASSIST_API_KEY"] = "ca-revoked-key-123456"
    r = env.run("doctor", "--json", "-n", "2")
    assert r.returncode == 1
    report = json.loads(r.stdout)
    auth = _check(report, "auth")
    assert not auth["ok"] and "refused the stored API key" in auth["detail"] and "HTTP 401" in auth["detail"]
    assert "ca-revoked-key-123456" not in r.stdout
    assert report["latency"] == {}  # no latency run against a server that refuses us
    env.env["CODEASSIST_API_KEY"] = "ca-right-key-abcdef"
    r = env.run("doctor", "-n", "2")
    assert r.returncode == 0, r.stdout
    assert "TTFT p50" in r.stdout and "ca-right-key-abcdef" not in r.stdout


def test_doctor_when_nothing_listens(daemon_env_factory) -> None:
    env = daemon_env_factory(f"http://127.0.0.1:{free_port()}/v1")
    r = env.run("doctor", "--json")
    assert r.returncode == 1
    report = json.loads(r.stdout)
    tcp = _check(report, "tcp")
    assert not tcp["ok"] and "refused" in tcp["detail"].lower() and "codeassist tunnel" in tcp["fix"]
    assert [c["name"] for c in report["checks"]][:4] == ["config", "token", "dns", "tcp"]
    env = daemon_env_factory("http://no-such-host.invalid:8000/v1")
    report = json.loads(env.run("doctor", "--json").stdout)
    assert not _check(report, "dns")["ok"]
