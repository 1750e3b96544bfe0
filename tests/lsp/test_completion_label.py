"""The popup item's label (Helix's ``textDocument/completion``) for a suggestion on the cursor's line or the next."""

from __future__ import annotations

from codeassist.lsp.server import completion_label


def test_label_is_the_word_and_the_first_line() -> None:
    assert completion_label("fi", "b(n - 1)\n    return x") == "fib(n - 1)"


def test_label_of_a_next_line_suggestion_says_it_starts_there() -> None:
    # at a line end the answer starts with a newline: not "fooreturn x"
    assert completion_label("foo", "\n    return x\n") == "foo ⏎ return x"


def test_label_is_cut_to_sixty_characters() -> None:
    assert len(completion_label("w", "x" * 100)) == 60
