"""Files that look like secrets never enter a prompt: not through the repo index, not as another open document's
recent edits; completing inside one uses its own window only (no cross-file context)."""

from __future__ import annotations

from pathlib import Path

import pytest
from codeassist.context.engine import ContextEngine
from codeassist.context.index import RepoIndex
from codeassist.context.templates import template_for

from .conftest import git

MARKER = "sk_live_SECRET_MARKER_51Hx"


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.local",
        ".env.production",
        "config/prod.env",
        "deploy/server.pem",
        "tls/server.KEY",
        "id_rsa",
        "id_rsa.pub",
        "keys/id_ed25519",
        "id_ecdsa_sk",
        "id_github",
        "credentials",
        "credentials.json",
        "app/credentials.py",
        "cert.p12",
        "cert.pfx",
        ".netrc",
        ".npmrc",
        ".pypirc",
        "secrets.yaml",
        "app/secrets.py",
        "release.keystore",
        ".git/config",
        "sub/.git/HEAD",
        ".ssh/config",
        ".aws/credentials",
        ".git-credentials",
        "/home/u/.ssh/known_hosts.py",
        "C:\\Users\\u\\.env",
    ],
)
def test_secret_looking_paths(path: str) -> None:
    from codeassist.context.secret_paths import is_secret_path

    assert is_secret_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "shop/cart.py",
        "envelope.py",
        "environment.ts",
        "keyboard.py",
        "monkey.py",
        "identity.py",
        "id_utils.py",
        "ids.py",
        "secret_santa.py",
        "src/credential_store.go",
        "gitignore.py",
        "docs/keys.md",
    ],
)
def test_ordinary_paths(path: str) -> None:
    from codeassist.context.secret_paths import is_secret_path

    assert not is_secret_path(path)


def _repo_with_secrets(make_repo) -> Path:
    root = make_repo("python")
    (root / "app").mkdir()
    (root / "app" / "secrets.py").write_text(f"STRIPE_KEY = '{MARKER}'  # apply_discount PriceBook TAX_RATE\n")
    (root / "app" / "credentials.py").write_text(f"def price_of(code):\n    return '{MARKER}'\n")
    (root / ".env").write_text(f"STRIPE_KEY={MARKER}\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "secrets")
    return root


def test_secret_files_are_not_indexed(make_repo) -> None:
    root = _repo_with_secrets(make_repo)
    index = RepoIndex(root)
    index.index_all()
    assert set(index.files) == {"shop/__init__.py", "shop/cart.py", "shop/pricing.py"}
    assert index.skipped["app/secrets.py"] == "looks like a secret"
    assert not index.index_file("app/credentials.py") and not index.index_file("app/secrets.py", text="x = 1\n")


def test_open_secret_document_gives_no_snippet_to_other_prompts(make_repo) -> None:
    root = _repo_with_secrets(make_repo)
    engine = ContextEngine()
    engine.add_root(root, background=False, watch=False)
    for rel in (".env", "app/secrets.py", ".git/config"):
        uri = (root / rel).as_uri()
        text = f"token = '{MARKER}'\n"
        engine.open_document(uri, text, "python")
        engine.change_document(uri, [(len(text), len(text), f"other = '{MARKER}'\n")])
    cur = (root / "shop" / "cart.py").as_uri()
    text = (root / "shop" / "cart.py").read_text()
    engine.open_document(cur, text, "python")
    parts = engine.build(text, text.index("return apply_discount"), template_for("qwen"), uri=cur)
    assert MARKER not in parts.prompt
    assert any(s["path"] == "shop/pricing.py" for s in parts.snippets)  # the ordinary context is still there


def test_completing_inside_a_secret_uses_its_own_window_only(make_repo) -> None:
    root = _repo_with_secrets(make_repo)
    engine = ContextEngine()
    engine.add_root(root, background=False, watch=False)
    other = (root / "shop" / "pricing.py").as_uri()
    engine.open_document(other, (root / "shop" / "pricing.py").read_text(), "python")
    engine.change_document(other, [(0, 0, "SHIPPING_FEE = 4.99\n")])
    uri = (root / "app" / "secrets.py").as_uri()
    text = (root / "app" / "secrets.py").read_text() + "price = apply_discount(PriceBook().price_of(code), TAX_RATE)\n"
    engine.open_document(uri, text, "python")
    parts = engine.build(text, len(text), template_for("qwen"), uri=uri)
    assert parts.snippets == [] and "SHIPPING_FEE" not in parts.prompt
    assert parts.prefix.endswith("TAX_RATE)\n")
