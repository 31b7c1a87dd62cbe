"""Text from outside (a kill reason another process wrote, a ticker, a title, a file name, a
server's message) made fit for one terminal or log line: the one rule, used wherever such text
is printed, logged or alerted.

Nothing the text holds can act on the terminal or the log: control characters (C0, DEL, C1,
ESC and so every escape sequence), line and paragraph breaks, and invisible format characters
(bidi overrides, zero-width marks) are written as visible escapes (``\\n``, ``\\x1b``,
``\\u202e``), so a reason cannot clear the screen, forge a log line or reorder what follows it.
Printable text (accents, CJK, symbols) is kept as it is. The result is bounded: an over-long
text is cut, with ``...`` at the end, to ``limit`` characters at most. Applying the rule twice
changes nothing (the escapes are printable).
"""

from __future__ import annotations

from typing import Any

#: The default bound: long enough for a reason, a path or a server's message, short enough for a line.
SAFE_LIMIT = 300
_ELLIPSIS = "..."
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(c: str) -> str:
    named = _NAMED.get(c)
    if named is not None:
        return named
    o = ord(c)
    if o < 0x100:
        return f"\\x{o:02x}"
    return f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def safe_text(text: Any, limit: int | None = SAFE_LIMIT, ascii_only: bool = False) -> str:
    """``text`` (a path as its name; anything else not a string by its ``repr``) with every character that is not
    printable escaped, cut to at most ``limit`` characters (``None``: never cut) with ``...``.
    ``ascii_only``: escape everything beyond ASCII too (a wire message in a log line)."""
    if not isinstance(text, str) and hasattr(text, "__fspath__"):  # a path (the domain imports no os)
        text = text.__fspath__()
    s = text if isinstance(text, str) else repr(text)
    if limit is not None and limit < len(_ELLIPSIS) + 1:
        raise ValueError(f"limit must be at least {len(_ELLIPSIS) + 1}")
    if (limit is None or len(s) <= limit) and s.isprintable() and (not ascii_only or s.isascii()):
        return s  # the usual case, at C speed
    out: list[str] = []
    n = 0
    for c in s if limit is None else s[: limit + 1]:  # each character is at least one out
        piece = c if c.isprintable() and (not ascii_only or c.isascii()) else _escape(c)
        out.append(piece)
        n += len(piece)
        if limit is not None and n > limit:
            break
    if limit is None or n <= limit:
        return "".join(out)
    # Cut whole pieces (never half an escape) until the ellipsis fits.
    while n > limit - len(_ELLIPSIS):
        n -= len(out.pop())
    return "".join(out) + _ELLIPSIS
