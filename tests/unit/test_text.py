"""core/text.py: outside text made fit for one terminal or log line (issue #20, item 8)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kakashi_tui.adapters.kalshi.wire import _safe
from kakashi_tui.core.text import safe_text

HOSTILE = "evil\n2026-01-01T00:00:00.000Z COMMAND  rearm\x1b[2J\x07\x9b31m\u202eok\u200b\r\t\x7f\x00"


def test_controls_breaks_escapes_and_bidi_overrides_come_out_as_visible_escapes():
    s = safe_text(HOSTILE)
    assert s == ("evil\\n2026-01-01T00:00:00.000Z COMMAND  rearm\\x1b[2J\\x07\\x9b31m\\u202eok\\u200b\\r\\t\\x7f\\x00")
    assert s.isprintable() and "\x1b" not in s and "\n" not in s


def test_printable_text_is_kept_as_it_is_and_ascii_only_escapes_the_rest():
    assert safe_text("45° or above · 東京") == "45° or above · 東京"
    assert safe_text("45° \U0001f600", ascii_only=True) == "45\\xb0 \\U0001f600"
    assert safe_text(None) == "None" and safe_text(b"\x1b") == "b'\\x1b'"  # not text: its repr


def test_long_text_is_cut_with_an_ellipsis_and_never_through_an_escape():
    assert safe_text("1" * 5000, 40) == "1" * 37 + "..."
    assert safe_text("1" * 40, 40) == "1" * 40
    cut = safe_text("ab" + "\x1b" * 20, 12)
    assert cut == "ab\\x1b..." and len(cut) <= 12
    assert len(safe_text("\x1b" * 10_000_000, 300)) <= 300  # bounded work too: only the head is read
    assert safe_text("x" * 10_000, None) == "x" * 10_000
    with pytest.raises(ValueError):
        safe_text("x", 3)


@given(st.text(), st.integers(4, 400), st.booleans())
def test_property_the_result_is_one_bounded_printable_line_and_a_second_pass_changes_nothing(text, limit, ascii_only):
    s = safe_text(text, limit, ascii_only)
    assert len(s) <= limit and s.isprintable() and (s.isascii() or not ascii_only)
    assert safe_text(s, limit, ascii_only) == s
    if len(text) <= limit and text.isprintable() and (text.isascii() or not ascii_only):
        assert s == text


def test_the_kalshi_wire_uses_the_same_rule():
    assert _safe("a\x1b[2J\u202e", 200) == "a\\x1b[2J\\u202e"
    assert _safe(12, 200) == "12" and _safe("é" * 300, 20) == "\\xe9" * 4 + "..."
