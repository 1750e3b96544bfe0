"""UTF-16 vs UTF-8 positions with emoji and CJK; bad positions are clear errors."""

from __future__ import annotations

import pytest
from codeassist.lsp.positions import PositionError, offset_to_position, position_to_offset
from hypothesis import given
from hypothesis import strategies as st

TEXT = "a😀b面c\nsecond 行\r\nlast"


def test_utf16_counts_astral_characters_as_two_units() -> None:
    # 'a'=1, '😀'=2, 'b'=1, '面'=1 → 'c' starts at unit 5 (code point 4)
    assert position_to_offset(TEXT, 0, 5, "utf-16") == 4
    assert position_to_offset(TEXT, 0, 3, "utf-16") == 2


def test_utf8_counts_bytes() -> None:
    # 'a'=1, '😀'=4, 'b'=1, '面'=3 → 'c' at byte 9
    assert position_to_offset(TEXT, 0, 9, "utf-8") == 4
    assert position_to_offset(TEXT, 0, 5, "utf-8") == 2


def test_crlf_line_end_is_not_part_of_the_line() -> None:
    start = TEXT.index("second")
    assert position_to_offset(TEXT, 1, 8, "utf-16") == start + 8
    with pytest.raises(PositionError, match="past the end of line 1"):
        position_to_offset(TEXT, 1, 9, "utf-16")


@pytest.mark.parametrize(
    ("line", "char", "enc", "msg"),
    [
        (0, 2, "utf-16", "inside a multi-unit character"),
        (0, 3, "utf-8", "inside a multi-unit character"),
        (0, 7, "utf-16", "past the end of line 0"),
        (5, 0, "utf-16", "past the end of the document"),
        (-1, 0, "utf-16", "negative"),
    ],
)
def test_bad_positions_are_clear_errors(line: int, char: int, enc: str, msg: str) -> None:
    with pytest.raises(PositionError, match=msg):
        position_to_offset(TEXT, line, char, enc)


def test_lenient_mode_clamps_like_the_spec() -> None:
    assert position_to_offset(TEXT, 0, 99, "utf-16", strict=False) == TEXT.index("\n")


@given(st.text(alphabet=st.sampled_from("ab😀面\n é"), max_size=40), st.data())
def test_round_trip(text: str, data: st.DataObject) -> None:
    offset = data.draw(st.integers(0, len(text)))
    for enc in ("utf-8", "utf-16", "utf-32"):
        line, char = offset_to_position(text, offset, enc)
        assert position_to_offset(text, line, char, enc) == offset
