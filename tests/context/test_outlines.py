"""Imported names first and what they offer: class outlines, module outlines through re-exports, receivers of a
known type, common names weighed by rarity, the budget spent on outlines — on real files in a tmp dir."""

from __future__ import annotations

from pathlib import Path

from codeassist.context.budget import pack
from codeassist.context.engine import ContextEngine
from codeassist.context.retrieve import Snippet
from codeassist.context.templates import template_for
from codeassist.context.tokens import default_counter

MODELS = '''"""Records."""


class Record:
    """A row of the table, typed."""

    def __init__(self, key: str, value: int) -> None:
        self.key, self.value = key, value

    def _private(self) -> None:
        pass

    def describe(self) -> str:
        return self.key

    @property
    def size(self) -> int:
        return self.value

    @classmethod
    def from_row(cls, row: dict) -> "Record":
        return cls(row["key"], row["value"])
'''

HELPERS = """def slugify(title: str, sep: str = "-") -> str:
    return title.lower().replace(" ", sep)


def _hidden() -> None:
    pass
"""


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "repo"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _build(root: Path, rel: str, text: str, budget: int = 2048) -> dict:
    engine = ContextEngine(budget=budget)
    engine.add_root(root, background=False, watch=False)
    (root / rel).write_text(text)
    engine.indexes[root.resolve()].index_file(rel)
    offset = text.index("    \n") + 4 if "    \n" in text else len(text)
    parts = engine.build(text, offset, template_for("qwen"), path=root / rel)
    engine.close()
    return {"prompt": parts.prompt, "snippets": parts.snippets, "tokens": parts.tokens}


def test_an_imported_class_not_used_yet_comes_with_its_outline(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"pkg/__init__.py": "", "pkg/models.py": MODELS})
    text = "from pkg.models import Record\n\n\ndef load(rows):\n    \n"
    out = _build(root, "app.py", text)
    outline = [s for s in out["snippets"] if "outline" in str(s["reason"])]
    assert outline and "not used yet" in str(outline[0]["reason"])
    body = str(outline[0]["text"])
    assert "class Record:" in body and '"""A row of the table, typed."""' in body
    assert "def from_row(cls, row: dict)" in body and "def describe(self)" in body and "_private" not in body
    # constructors, then classmethods, then properties, then the other public methods
    order = [body.index(s) for s in ("def __init__", "@classmethod", "@property", "def describe")]
    assert order == sorted(order)


def test_a_module_outline_follows_reexports_through_init(tmp_path: Path) -> None:
    root = _repo(
        tmp_path,
        {
            "lib/__init__.py": "from .text import slugify as slugify\nfrom .models import Record\n",
            "lib/text.py": HELPERS,
            "lib/models.py": MODELS,
        },
    )
    text = "import lib\n\n\ndef title(t):\n    \n"
    out = _build(root, "app.py", text)
    mod = [s for s in out["snippets"] if "imports module lib" in str(s["reason"])]
    assert mod and mod[0]["path"] == "lib/__init__.py"
    assert "def slugify(title: str" in str(mod[0]["text"]) and "class Record:" in str(mod[0]["text"])
    assert "_hidden" not in str(mod[0]["text"])


def test_a_receiver_of_a_known_type_brings_its_class(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"pkg/__init__.py": "", "pkg/models.py": MODELS})
    text = "from pkg.models import Record as R\n\n\ndef show(rec: R):\n    x = rec.size\n    \n"
    out = _build(root, "app.py", text)
    assert "def from_row(cls, row: dict)" in out["prompt"]


def test_common_names_matched_across_the_repo_weigh_less_than_rare_ones(tmp_path: Path) -> None:
    files = {f"m{i}.py": f"def run():\n    pass\n\n\nx{i} = run()\n" for i in range(2)}
    files |= {f"u{i}.py": f"from m0 import run\n\n\ndef f{i}():\n    return run()\n" for i in range(30)}
    files["rare.py"] = "class Gadget:\n    def calibrate_flux(self):\n        pass\n"
    root = _repo(tmp_path, files)
    text = "def go(a, b):\n    a.run()\n    b.calibrate_flux()\n    \n"
    out = _build(root, "app.py", text)
    reasons = [str(s["reason"]) for s in reversed(out["snippets"])]  # best first
    rare = [i for i, r in enumerate(reasons) if "calibrate_flux" in r]
    common = [i for i, r in enumerate(reasons) if "uses run" in r]
    assert rare and (not common or rare[0] < common[0])


def test_pack_spends_leftover_budget_growing_outlines() -> None:
    c = default_counter()
    outline = "class Big:\n" + "\n".join(f"    def method_{i}(self, a: int) -> int:" for i in range(80))
    small = Snippet("b.py", "def helper(x):\n    return x", "imports helper", 2.0, 0, 2)
    big = Snippet("a.py", outline, "imports Big; outline", 1.5, 0, 81, trim=True)
    chosen, costs = pack([small, big], lambda s: f"<|file_sep|>{s.path}\n{s.text}\n", c, 600)
    assert [s.path for s in chosen] == ["b.py", "a.py"]
    assert 0.9 * 600 <= sum(costs) <= 600  # the outline grew into what the first pass left
    assert "first" in chosen[1].reason and chosen[1].text.startswith("class Big:")


def test_short_file_gives_its_unused_window_to_snippets(tmp_path: Path) -> None:
    big = "class Big:\n" + "".join(f"    def method_{i}(self, a: int) -> int:\n        return a\n" for i in range(120))
    root = _repo(tmp_path, {"big.py": big})
    text = "from big import Big\n\n\ndef f():\n    \n"
    out = _build(root, "app.py", text, budget=2048)
    snippet_tokens = sum(int(s["tokens"]) for s in out["snippets"])
    assert snippet_tokens > 0.45 * 2048, snippet_tokens  # beyond the snippets' 30% share: the window needs little
    assert "def method_60(self, a: int)" in out["prompt"]


def test_a_typed_receiver_finds_members_inherited_from_a_base_class(tmp_path: Path) -> None:
    base = "class BaseClient:\n    def build_request(self, method: str, url: str) -> dict:\n        return {}\n"
    client = (
        "from .base import BaseClient\n\n\nclass Client(BaseClient):\n"
        "    def send(self, request: dict) -> None:\n        pass\n"
    )
    root = _repo(
        tmp_path,
        {"lib/__init__.py": "from .client import Client\n", "lib/base.py": base, "lib/client.py": client},
    )
    text = "import lib\n\n\ndef go():\n    with lib.Client() as c:\n        c.build_request('GET', '/')\n    \n"
    out = _build(root, "app.py", text)
    hit = [s for s in out["snippets"] if "c.build_request" in str(s["reason"])]
    assert hit and hit[0]["path"] == "lib/base.py" and "def build_request(self, method: str" in str(hit[0]["text"])
