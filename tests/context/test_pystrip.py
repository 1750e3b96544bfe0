from __future__ import annotations

from codeassist.context.index import parse_file
from codeassist.context.langs import parser_for
from codeassist.context.pystrip import strip_bodies
from codeassist.context.symbols import extract_definitions

from .conftest import FIXTURES

TRICKY = b'''import os


def one(a: int,
        b: str = ")") -> int:
    # a comment before the first statement belongs to the signature
    x = a + 1
    return x


def doc(x):
    """Doc head.

    More.
    """
    text = """
not code: def fake():
    pass
"""
    return text


# leads the class
class Box(Base):
    """A box."""

    def get(self):  # trailing comment
        return self.v

    def put(self, v): self.v = v

    @property
    def size(self) -> int:
        if self.v:
            return 1
        return 0


LIMIT = 3
def tail(): pass
'''


def _defs(data: bytes) -> list[tuple[object, ...]]:
    tree = parser_for("python").parse(data)
    return [(d.name, d.kind, d.line, d.text, d.owner, d.sig) for d in extract_definitions(tree.root_node, data, "t.py")]


def test_stripped_bodies_keep_every_definition_and_line() -> None:
    stripped = strip_bodies(TRICKY)
    assert len(stripped) < len(TRICKY) and stripped.count(b"\n") == TRICKY.count(b"\n")
    assert b"return x" not in stripped and b"not code" not in stripped and b'"""Doc head.' in stripped
    assert not parser_for("python").parse(stripped).root_node.has_error
    assert _defs(stripped) == _defs(TRICKY)


def test_stripping_matches_a_full_parse_on_the_fixtures() -> None:
    files = sorted(FIXTURES.rglob("*.py"))
    assert files
    for path in files:
        data = path.read_bytes()
        assert _defs(strip_bodies(data)) == _defs(data), path


def test_a_file_that_does_not_strip_cleanly_is_parsed_whole() -> None:
    data = b"def f():\n    x = (\n1)\n    return x\n\ndef g():\n    pass\n"
    defs, _ = parse_file("t.py", "python", data, parser_for("python"))
    assert [d.name for d in defs] == ["f", "g"]
