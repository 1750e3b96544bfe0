"""The VS Code extension running in a real VS Code: code-server (VS Code served to a browser) driven by Debian's
headless Chromium through Selenium, with the extension's .vsix installed, `codeassist lsp` behind it and the real
local model server behind that.

A wire tap (lsp_tee.py) between VS Code's language client and the LSP server records what the server answered, so
the ghost text on screen and the text Ctrl+Right / Tab insert are checked against the completion the daemon
actually produced. Screenshots go to <tmp_path>/screenshots/ (ghost-text.png, word-accepted.png, accepted.png, and
failure.png when a wait fails).

Needs what tests/editors/install_code_server.sh installs (code-server from npm, chromium + chromium-driver from
Debian, selenium from PyPI); skips with the reason when any of them is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium_missing, start_chromium
from tests.conftest import free_port
from tests.editors.conftest import FIB, wait_until

REPO = Path(__file__).resolve().parents[2]
VSCODE_EXT = REPO / "editors" / "vscode"
TEE = Path(__file__).with_name("lsp_tee.py")
INSTALL = "tests/editors/install_code_server.sh"


def _code_server() -> str | None:
    for candidate in (
        os.environ.get("CODEASSIST_CODE_SERVER"),
        "/opt/code-server/bin/code-server",
        shutil.which("code-server"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _missing() -> list[str]:
    missing = []
    if not (shutil.which("npm") and shutil.which("node")):
        missing.append("Node.js + npm (to build the .vsix)")
    if _code_server() is None:
        missing.append("code-server (/opt/code-server/bin/code-server, $CODEASSIST_CODE_SERVER or on PATH)")
    missing += chromium_missing()
    return missing


MISSING = _missing()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)}: run `bash {INSTALL}` (as root)")


# -- the extension, packaged -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vsix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`npm ci` (when needed), compile and `vsce package`, as tests/editors/test_vscode.py does."""

    def npm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["npm", *args], cwd=VSCODE_EXT, capture_output=True, text=True, timeout=300)

    marker = VSCODE_EXT / "node_modules" / ".package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < (VSCODE_EXT / "package-lock.json").stat().st_mtime:
        out = npm("ci", "--no-audit", "--no-fund")
        assert out.returncode == 0, out.stderr
    out = npm("run", "compile")
    assert out.returncode == 0, out.stdout + out.stderr
    path = tmp_path_factory.mktemp("vsix") / "codeassist.vsix"
    out = subprocess.run(
        [str(VSCODE_EXT / "node_modules" / ".bin" / "vsce"), "package", "--out", str(path)],
        cwd=VSCODE_EXT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return path


# -- code-server -------------------------------------------------------------------------------------------------


class CodeServer:
    """One code-server with its own user data, extensions dir and settings, on a free loopback port."""

    def __init__(
        self, root: Path, env: dict[str, str], user_settings: dict[str, Any], machine_settings: dict[str, Any]
    ) -> None:
        exe = _code_server()
        assert exe is not None
        self.root = root
        self.user_data = root / "user-data"
        self.extensions = root / "extensions"
        (self.user_data / "User").mkdir(parents=True)
        (self.user_data / "User" / "settings.json").write_text(json.dumps(user_settings, indent=2))
        # VS Code 1.99 has no default key for "Trigger Inline Suggestion"; the test asks again with Alt+\.
        (self.user_data / "User" / "keybindings.json").write_text(
            json.dumps([{"key": "alt+\\", "command": "editor.action.inlineSuggest.trigger", "when": "editorTextFocus"}])
        )
        (self.user_data / "Machine").mkdir(parents=True)
        (self.user_data / "Machine" / "settings.json").write_text(json.dumps(machine_settings, indent=2))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **env,
            "HOME": str(root / "home"),
            "XDG_CONFIG_HOME": str(root / "xdg-config"),
            "XDG_DATA_HOME": str(root / "xdg-data"),
        }
        (root / "home").mkdir()
        self.common = [exe, "--user-data-dir", str(self.user_data), "--extensions-dir", str(self.extensions)]
        self.log_path = root / "code-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def install_extension(self, vsix: Path) -> None:
        out = subprocess.run(
            [*self.common, "--install-extension", str(vsix)], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0 and "successfully installed" in out.stdout, out.stdout + out.stderr

    def start(self) -> None:
        config = self.root / "config.yaml"
        config.write_text(f"bind-addr: 127.0.0.1:{self.port}\nauth: none\ncert: false\n")
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [
                *self.common,
                "--config",
                str(config),
                "--disable-telemetry",
                "--disable-update-check",
                "--disable-workspace-trust",
                "--disable-getting-started-override",
                "--ignore-last-opened",
            ],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"code-server exited: {self.log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                    return resp.status == 200
            except OSError:
                return False

        wait_until(healthy, 60, lambda: f"code-server did not answer: {self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        if self.proc:
            self.log.close()

    def extension_host_logs(self) -> str:
        """The codeassist output channel and the extension host logs, for failure messages."""
        out = []
        for log in sorted((self.user_data / "logs").rglob("*.log")):
            if "exthost" in log.name or "codeassist" in str(log):
                out.append(f"--- {log.relative_to(self.user_data)}\n{log.read_text(errors='replace')[-4000:]}")
        return "\n".join(out)


# -- the browser ---------------------------------------------------------------------------------------------------


GHOST_JS = """
const editor = document.querySelector('.editor-instance .monaco-editor');
if (!editor) return {lines: [], parts: [], below: ''};
const deco = Array.from(editor.querySelectorAll('.ghost-text-decoration, .ghost-text-decoration-preview'));
const lines = new Set(deco.map(e => e.closest('.view-line')).filter(Boolean));
return {
    // Whole rendered lines that carry inline ghost text: typed text + the suggestion's first line.
    lines: Array.from(lines).map(l => l.textContent),
    parts: deco.map(e => e.textContent),
    // Further suggested lines are drawn in a view zone below the cursor line.
    below: Array.from(editor.querySelectorAll('.view-zones .ghost-text, .view-zones .suggest-preview-text'))
        .map(e => e.textContent).join('\\n'),
};
"""


def ghost(driver) -> dict[str, Any]:
    """What the editor shows as ghost text (non-breaking spaces read back as spaces)."""
    found = driver.execute_script(GHOST_JS)

    def norm(text: str) -> str:
        return text.replace("\u00a0", " ")

    return {
        "lines": [norm(t) for t in found["lines"]],
        "parts": [norm(t) for t in found["parts"]],
        "below": norm(found["below"]),
    }


# -- the test ----------------------------------------------------------------------------------------------------


@pytest.fixture
def code_server(tmp_path: Path, vsix: Path, daemon_env, local_model_url: str) -> Iterator[CodeServer]:
    tap = tmp_path / "lsp-wire.jsonl"
    env = {k: v for k, v in daemon_env.env.items() if k != "CODEASSIST_SERVER_URL"}  # comes from the setting
    user = {
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "workbench.enableExperiments": False,
        "telemetry.telemetryLevel": "off",
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "update.mode": "none",
        "security.workspace.trust.enabled": False,
        "editor.minimap.enabled": False,
        "editor.inlineSuggest.enabled": True,
        # Nothing but the inline suggestion may claim Tab.
        "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
        "editor.suggestOnTriggerCharacters": False,
        "editor.wordBasedSuggestions": "off",
        "editor.parameterHints.enabled": False,
        "editor.autoClosingBrackets": "never",
        "editor.autoClosingQuotes": "never",
        "files.insertFinalNewline": False,
        "files.trimTrailingWhitespace": False,
        "codeassist.serverUrl": local_model_url,
        "codeassist.trace.server": "messages",
    }
    machine = {
        # Through the wire tap: `<python> lsp_tee.py <tap> <python> -m codeassist.client.cli lsp`.
        "codeassist.command": sys.executable,
        "codeassist.args": [str(TEE), str(tap), sys.executable, "-m", "codeassist.client.cli", "lsp"],
    }
    cs = CodeServer(tmp_path / "code-server", env, user, machine)
    cs.tap = tap  # type: ignore[attr-defined]
    cs.install_extension(vsix)
    cs.start()
    yield cs
    cs.stop()


def wire(tap: Path) -> list[dict[str, Any]]:
    if not tap.exists():
        return []
    return [json.loads(line) for line in tap.read_text().splitlines() if line.strip()]


def responses(tap: Path, method: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    entries = wire(tap)
    reqs = {e["msg"]["id"]: e["msg"] for e in entries if e["dir"] == "in" and e["msg"].get("method") == method}
    return [
        (reqs[e["msg"]["id"]]["params"], e["msg"])
        for e in entries
        if e["dir"] == "out" and "method" not in e["msg"] and e["msg"].get("id") in reqs
    ]


def test_ghost_text_from_the_real_model_in_code_server_and_tab_accepts(
    code_server: CodeServer, project: Path, tmp_path: Path, daemon_env
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    tap: Path = code_server.tap  # type: ignore[attr-defined]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    driver = start_chromium(tmp_path / "chromium-profile")
    try:

        def shot(name: str) -> Path:
            path = shots / f"{name}.png"
            driver.save_screenshot(str(path))
            return path

        def diag() -> str:
            shot("failure")
            return (
                f"\nwire: {wire(tap)[-8:]}\nghost: {ghost(driver)}\nscreenshots: {shots}\n"
                f"{code_server.extension_host_logs()}"
            )

        driver.get(f"{code_server.url}/?folder={project}")
        WebDriverWait(driver, 90).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".monaco-workbench")))
        # The extension activates on startup and starts `codeassist lsp`: the tap sees `initialize` answered.
        wait_until(
            lambda: any(e["dir"] == "out" and "capabilities" in e["msg"].get("result", {}) for e in wire(tap)),
            90,
            lambda: "the language client never initialized" + diag(),
        )

        # Open fib.py through Quick Open, as a user would.
        WebDriverWait(driver, 60).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, ".explorer-folders-view .monaco-list-row"))
        )
        ActionChains(driver).key_down(Keys.CONTROL).send_keys("p").key_up(Keys.CONTROL).perform()
        box = WebDriverWait(driver, 30).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, ".quick-input-box input"))
        )
        box.send_keys("fib.py")
        WebDriverWait(driver, 30).until(
            ec.presence_of_element_located(
                (By.CSS_SELECTOR, ".quick-input-list .monaco-list-row[aria-label*='fib.py']")
            )
        )
        box.send_keys(Keys.ENTER)
        WebDriverWait(driver, 30).until(
            ec.presence_of_element_located(
                (By.CSS_SELECTOR, ".tab.active[aria-label*='fib.py'], .tab.active[data-resource-name='fib.py']")
            )
        )
        wait_until(
            lambda: any(
                e["dir"] == "in"
                and e["msg"].get("method") == "textDocument/didOpen"
                and e["msg"]["params"]["textDocument"]["uri"].endswith("/fib.py")
                for e in wire(tap)
            ),
            30,
            lambda: "VS Code did not open fib.py with the server" + diag(),
        )

        # Type a new last line.
        editor = driver.find_element(By.CSS_SELECTOR, ".editor-instance .monaco-editor .view-lines")
        editor.click()
        typed = "    return fib"
        ActionChains(driver).key_down(Keys.CONTROL).send_keys(Keys.END).key_up(Keys.CONTROL).perform()
        ActionChains(driver).send_keys(typed).perform()
        position = {"line": 4, "character": len(typed)}

        def answered() -> list[dict[str, Any]]:
            return [
                r["result"]["items"][0]
                for p, r in responses(tap, "textDocument/inlineCompletion")
                if p["position"] == position and (r.get("result") or {}).get("items")
            ]

        def shown() -> dict[str, Any] | None:
            g = ghost(driver)
            return g if ("".join(g["parts"]) + g["below"]).strip() else None

        # A busy CPU model can answer empty (a timeout, after which the daemon pauses completions for a while):
        # then ask again with "Trigger Inline Suggestion" (bound to Alt+\ above) every few seconds, as a user would.
        nudges = {"empty": 0, "at": time.monotonic()}

        def suggestion_shown() -> bool:
            if answered() and shown():
                return True
            empty = [
                r
                for p, r in responses(tap, "textDocument/inlineCompletion")
                if p["position"] == position and not (r.get("result") or {}).get("items")
            ]
            if len(empty) > nudges["empty"] and time.monotonic() - nudges["at"] > 8:
                nudges.update(empty=len(empty), at=time.monotonic())
                ActionChains(driver).key_down(Keys.ALT).send_keys("\\").key_up(Keys.ALT).perform()
            return False

        wait_until(suggestion_shown, 180, lambda: "no ghost text appeared" + diag())
        screenshot = shot("ghost-text")
        item = answered()[-1]
        completion: str = item["insertText"]
        assert item["command"]["command"] == "codeassist.accept"
        completion_id = item["command"]["arguments"][0]
        first, *rest = completion.split("\n")
        on_screen = shown()
        assert on_screen is not None
        if first:
            assert on_screen["lines"] == [typed + first], (on_screen, completion)
        if rest:
            assert "".join(on_screen["below"].split()) == "".join("".join(rest).split()), (on_screen, completion)
        print(f"ghost text screenshot: {screenshot}")

        # Ctrl+Right accepts the next word (when there is more than one): the rest stays up as ghost text.
        if len(re.findall(r"\w+", first)) >= 2:
            ActionChains(driver).key_down(Keys.CONTROL).send_keys(Keys.ARROW_RIGHT).key_up(Keys.CONTROL).perform()

            def partly_accepted() -> str | None:
                g = shown()
                left = "".join(g["parts"]) if g else ""
                return left if g and 0 < len(left) < len(first) and g["lines"] == [typed + first] else None

            left = wait_until(partly_accepted, 10, lambda: "Ctrl+Right did not accept a word" + diag())
            assert first.endswith(left), (left, first)
            shot("word-accepted")

        # Tab accepts (the rest): the document gets the completion, and the accept command reaches the server.
        # (No wait for the ghost text to go: VS Code asks again right after the accept, and a new one may show.)
        ActionChains(driver).send_keys(Keys.TAB).perform()
        ActionChains(driver).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
        expected = FIB + typed + completion
        wait_until(
            lambda: (project / "fib.py").read_text() == expected,
            20,
            lambda: f"after Tab + save, fib.py is {(project / 'fib.py').read_text()!r}, expected {expected!r}" + diag(),
        )
        shot("accepted")

        def accepts() -> list[tuple[dict[str, Any], dict[str, Any]]]:
            return [
                (p, r) for p, r in responses(tap, "workspace/executeCommand") if p["command"] == "codeassist.accept"
            ]

        wait_until(accepts, 20, lambda: "the accept command never reached the server" + diag())
        params, resp = accepts()[0]
        assert params["arguments"][0] == completion_id and "error" not in resp, (params, resp)
        out = daemon_env.run("status", "--json")
        assert json.loads(out.stdout).get("counters", {}).get("accepted", 0) >= 1, out.stdout

        # The explicit trigger the wait above falls back on reaches the server as an invoked request.
        last = (typed + completion).split("\n")
        end = {"line": 4 + len(last) - 1, "character": len(last[-1].encode("utf-16-le")) // 2}
        ActionChains(driver).key_down(Keys.ALT).send_keys("\\").key_up(Keys.ALT).perform()
        wait_until(
            lambda: any(
                p["position"] == end and p["context"]["triggerKind"] == 1
                for p, _ in responses(tap, "textDocument/inlineCompletion")
            ),
            30,
            lambda: "Alt+\\ (Trigger Inline Suggestion) sent no invoked request" + diag(),
        )
    finally:
        driver.quit()
