"""Definitions in a parsed file: name, kind, line, and a compact summary (signature + docstring head, member
signatures for classes) — what a cross-file snippet shows, never a whole body."""

from __future__ import annotations

from dataclasses import dataclass

from codeassist.context.syntax_window import DEFINITIONS
from tree_sitter import Node

__all__ = ["Definition", "extract_definitions"]

TYPES = frozenset(
    {
        "class_definition",
        "class_declaration",
        "abstract_class_declaration",
        "interface_declaration",
        "impl_item",
        "trait_item",
        "struct_specifier",
        "class_specifier",
        "namespace_definition",
        "enum_declaration",
        "record_declaration",
        "mod_item",
    }
)
WHOLE = frozenset(
    {
        "struct_item",
        "enum_item",
        "type_item",
        "type_spec",
        "type_alias_declaration",
        "enum_specifier",
        "union_specifier",
        "const_item",
        "static_item",
        "preproc_def",
        "preproc_function_def",
        "type_definition",
    }
)
WRAPPERS = frozenset(
    {
        "decorated_definition",
        "export_statement",
        "template_declaration",
        "type_declaration",
        "declaration_list",
        "linkage_specification",
    }
)
COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
RUST_TYPES = frozenset({"struct_item", "enum_item", "union_item", "trait_item", "type_item"})
SIGNATURES = frozenset({"function_signature_item"})  # a Rust trait's methods (no body)
MAX_SIG_LINES = 6
MAX_WHOLE_LINES = 15
MAX_MEMBERS = 12


@dataclass(slots=True)
class Definition:
    name: str
    kind: str
    path: str
    line: int  # 0-based line of the definition's first line
    text: str  # the summary shown as a snippet
    owner: str = ""  # enclosing class/impl/namespace name, "" at top level
    sig: tuple[int, int] = (0, 3)  # lines of ``text`` holding the signature (after an owner header line)
    tag: str = ""  # "classmethod", "staticmethod", "property" (decorators; TS static/get): listed first in outlines

    def short(self) -> str:
        """A compact form: the owner's header line (for members) and the signature, without docs."""
        lines = self.text.split("\n")
        a, b = self.sig
        return "\n".join(lines[:1] + lines[a:b] if a > 0 and self.owner else lines[a:b])


def _name(node: Node) -> str | None:
    n = node.child_by_field_name("name")
    if n is None:
        d = node.child_by_field_name("declarator")
        while d is not None and d.type not in (
            "identifier",
            "field_identifier",
            "qualified_identifier",
            "type_identifier",
            "destructor_name",
            "operator_name",
        ):
            d = d.child_by_field_name("declarator") or d.child_by_field_name("name")
        n = d
    if n is None and node.type == "impl_item":
        n = node.child_by_field_name("type")  # `impl<T> fmt::Display for Stack<T>`: filed under `Stack`
        while n is not None and n.type in ("generic_type", "scoped_type_identifier", "reference_type"):
            n = n.child_by_field_name("type") or n.child_by_field_name("name")
    return n.text.decode("utf-8", "replace") if n is not None and n.text else None


def _lines(data: bytes, a: int, b: int, limit: int) -> str:
    start = data.rfind(b"\n", 0, a) + 1
    text = data[start:b].decode("utf-8", "replace").rstrip()
    lines = text.split("\n")
    return "\n".join(lines[:limit])


def _signature(data: bytes, node: Node) -> str:
    body = node.child_by_field_name("body")
    if body is None:
        return _lines(data, node.start_byte, node.end_byte, MAX_SIG_LINES)
    end = body.start_byte + (1 if data[body.start_byte : body.start_byte + 1] == b"{" else 0)
    return _lines(data, node.start_byte, end, MAX_SIG_LINES)


def _doc_head(data: bytes, node: Node) -> tuple[str, str]:
    """(comment lines before the node, docstring lines after the signature), 3 lines at most each."""
    before: list[str] = []
    prev = node.prev_sibling
    while prev is not None and prev.type in COMMENTS and len(before) < 3:
        before.insert(0, _lines(data, prev.start_byte, prev.end_byte, 3))
        prev = prev.prev_sibling
    after = ""
    body = node.child_by_field_name("body")
    if body is not None and body.named_child_count:
        first = body.named_children[0]
        is_string = first.named_child_count and first.named_children[0].type == "string"
        if first.type == "expression_statement" and is_string:
            after = _lines(data, first.start_byte, first.end_byte, 3)
    return "\n".join(before[-3:]), after


def _summary(data: bytes, node: Node, members: list[str] | None = None) -> tuple[str, int, int]:
    """(summary text, first and end line of the signature within it)."""
    if node.type in WHOLE:
        return _lines(data, node.start_byte, node.end_byte, MAX_WHOLE_LINES), 0, 3
    before, after = _doc_head(data, node)
    sig = _signature(data, node)
    parts = [p for p in (before, sig, after) if p]
    parts.extend(members or [])
    a = before.count("\n") + 1 if before else 0
    return "\n".join(parts), a, a + min(sig.count("\n") + 1, 3)


def _variable(node: Node) -> str | None:
    """Module-level constant/variable names (Python assignments, JS/TS const/let, Go const/var)."""
    if node.type == "expression_statement" and node.named_child_count:
        a = node.named_children[0]
        if a.type == "assignment":
            left = a.child_by_field_name("left")
            if left is not None and left.type == "identifier" and left.text:
                return left.text.decode()
    if node.type in ("lexical_declaration", "variable_declaration", "const_declaration", "var_declaration"):
        for d in node.named_children:
            n = d.child_by_field_name("name")
            if n is not None and n.type == "identifier" and n.text:
                return n.text.decode()
    return None


def _is_prototype(node: Node) -> bool:
    if node.type not in ("declaration", "field_declaration"):
        return False
    d = node.child_by_field_name("declarator")
    while d is not None and d.type in ("pointer_declarator", "reference_declarator"):
        d = d.child_by_field_name("declarator")
    return d is not None and d.type == "function_declarator"


_TAGS = ("classmethod", "staticmethod", "property")


def _tag(wrapper: Node, node: Node) -> str:
    """How a member is bound: a Python decorator (``@classmethod``...), or TS/JS ``static`` / ``get``."""
    if wrapper.type == "decorated_definition":
        for c in wrapper.named_children:
            if c.type == "decorator" and c.text:
                text = c.text.decode("utf-8", "replace")
                for tag in _TAGS:
                    if tag in text or (tag == "property" and text.endswith(".setter")):
                        return tag
    elif node.type == "method_definition":
        for c in node.children[:3]:
            if c.type == "static":
                return "staticmethod"
            if c.type == "get":
                return "property"
    return ""


def extract_definitions(root: Node, data: bytes, path: str) -> list[Definition]:
    out: list[Definition] = []

    def visit(container: Node, owner: str | None, depth: int, owner_line: str = "") -> list[str]:
        member_sigs: list[str] = []
        for child in container.named_children:
            node = child
            while node.type in WRAPPERS and node.named_child_count:
                if node.type in ("type_declaration", "declaration_list"):
                    visit(node, owner, depth, owner_line)
                    break
                inner = node.child_by_field_name("definition") or node.child_by_field_name("declaration")
                node = inner if inner is not None else node.named_children[-1]
            kind = node.type
            if kind in DEFINITIONS or kind in WHOLE or kind in SIGNATURES or _is_prototype(node):
                name = _name(node)
                if not name or (kind == "mod_item" and node.child_by_field_name("body") is None):
                    continue  # `mod x;` declares a file (an import), it defines nothing here
                members: list[str] = []
                if kind in TYPES and depth < 2:
                    body = node.child_by_field_name("body")
                    if body is not None:
                        first = _signature(data, node).split("\n", 1)[0]
                        members = visit(body, name, depth + 1, first)[:MAX_MEMBERS]
                text, a, b = _summary(data, node, members)
                if owner is not None and kind not in TYPES:
                    member_sigs.append(_signature(data, node))
                    if owner_line:
                        text, a, b = f"{owner_line}\n{text}", a + 1, b + 1
                tag = _tag(child, node) if owner is not None else ""
                out.append(Definition(name, kind, path, node.start_point[0], text, owner or "", (a, b), tag))
            elif owner is None and depth == 0:
                var = _variable(node)
                if var:
                    out.append(
                        Definition(
                            var, "variable", path, node.start_point[0], _lines(data, node.start_byte, node.end_byte, 3)
                        )
                    )
        return member_sigs

    visit(root, None, 0)
    # Rust: `impl X` blocks of a type declared in this file are filed under it (their methods' owner): the type
    # stands for them, so that a lookup of `X` or a repo-wide match finds one definition, not one per impl.
    types = {d.name for d in out if d.kind in RUST_TYPES and not d.owner}
    if types:
        out = [d for d in out if not (d.kind == "impl_item" and d.name in types)]
    return out
