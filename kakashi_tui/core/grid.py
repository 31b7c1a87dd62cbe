"""A market's price grid (Kalshi's ``price_ranges``): which prices it quotes and trades at.

Kalshi states each market's tick structure as ``price_ranges``, a list of ``{start, end, step}``
dollar strings (spec 3.34 ``PriceRange``): the prices ``start + k x step`` up to ``end``, each
range closed at both ends. It is the truth, whatever ``price_level_structure`` names:
``linear_cent`` ($0.01 from 0 to 1), ``deci_cent`` ($0.001), ``tapered_deci_cent`` ($0.001 under
$0.10 and over $0.90), the ``center_*_edge_*`` structures of July 2026, and
``center_deci_edge_centi_cent`` ($0.0001 steps under $0.01 and over $0.99). Kakashi's finest
price is $0.0001, so a range whose bounds or step are finer is not a grid Kakashi can hold.

One rule, here: ``PriceGrid.has`` (a quote's prices must sit on its market's grid, else the row
is rejected: core/validate.py) and ``PriceGrid.buy_limit`` / ``sell_limit`` (a limit price put on
the grid in the trader's disfavour: a buyer's limit up to the next grid price, a seller's down,
never a better price than the grid allows). A market without ``price_ranges`` (a server before
3.29) has no grid here: its prices are only held to the $0.0001 grid, as before.

The stored form (the ``markets`` table and the catalog's ``price_ranges`` column) is
``grid_text``: compact JSON ``[["0.0000","1.0000","0.0100"],...]``, 4-decimal dollar strings
(start, end, step).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

_SCALE = 10_000  # centicents a dollar
_MAX_RANGES = 64


class GridError(ValueError):
    """``price_ranges`` that are not a grid Kakashi can hold (a reason, one line)."""


def _cc(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (str, int, Decimal)):
        raise GridError(f"price_ranges {what} is not a dollar string")
    try:
        d = Decimal(v)
    except (InvalidOperation, ValueError):
        raise GridError(f"price_ranges {what} {str(v)[:20]!r} is not a dollar amount") from None
    if not d.is_finite():
        raise GridError(f"price_ranges {what} is not a dollar amount")
    x = d * _SCALE
    if x != x.to_integral_value():
        raise GridError(f"price_ranges {what} {d} is finer than $0.0001")
    return int(x)


def parse_ranges(raw: Any) -> tuple[tuple[int, int, int], ...]:
    """Kalshi's ``price_ranges`` (``[{start, end, step}]``, or the stored ``[[start, end, step]]``)
    as (start, end, step) centicents; ``GridError`` with the reason when it is not a grid."""
    if not isinstance(raw, (list, tuple)) or not raw:
        raise GridError("price_ranges is not a non-empty list")
    if len(raw) > _MAX_RANGES:
        raise GridError(f"price_ranges has more than {_MAX_RANGES} ranges")
    out = []
    for r in raw:
        if isinstance(r, dict):
            parts = (r.get("start"), r.get("end"), r.get("step"))
        elif isinstance(r, (list, tuple)) and len(r) == 3:
            parts = tuple(r)
        else:
            raise GridError("price_ranges entry is not {start, end, step}")
        start, end, step = (_cc(v, w) for v, w in zip(parts, ("start", "end", "step")))
        if not 0 <= start <= end <= _SCALE:
            raise GridError(f"price_ranges range {start}..{end} (centicents) is not within [0, 1]")
        if step <= 0:
            raise GridError("price_ranges step is not positive")
        out.append((start, end, step))
    return tuple(out)


def grid_text(raw: Any) -> str:
    """The stored form of ``price_ranges`` (``GridError`` when it is not a grid)."""
    ranges = parse_ranges(raw)
    return json.dumps([[_dollars(a), _dollars(b), _dollars(s)] for a, b, s in ranges], separators=(",", ":"))


def _dollars(cc: int) -> str:
    return f"{cc // _SCALE}.{cc % _SCALE:04d}"


class PriceGrid:
    """The prices of one ``price_ranges``, as a table by centicent (10,001 flags)."""

    __slots__ = ("ranges", "_on")

    def __init__(self, ranges: tuple[tuple[int, int, int], ...]) -> None:
        self.ranges = ranges
        on = bytearray(_SCALE + 1)
        for start, end, step in ranges:
            for c in range(start, end + 1, step):
                on[c] = 1
        self._on = bytes(on)

    def has(self, cc: int) -> bool:
        """Whether ``cc`` centicents is a price of this grid."""
        return 0 <= cc <= _SCALE and self._on[cc] == 1

    def buy_limit(self, cc: int) -> int | None:
        """A buyer's limit on the grid: ``cc`` if it is a grid price, else the next one up (the
        trader's disfavour: never a cheaper price than the grid allows); None when none is."""
        for c in range(max(cc, 0), _SCALE + 1):
            if self._on[c]:
                return c
        return None

    def sell_limit(self, cc: int) -> int | None:
        """A seller's limit on the grid: ``cc`` if it is a grid price, else the next one down."""
        for c in range(min(cc, _SCALE), -1, -1):
            if self._on[c]:
                return c
        return None


@lru_cache(maxsize=256)
def grid_of(text: str) -> PriceGrid:
    """The grid of a stored ``price_ranges`` text (``grid_text``), made once per distinct text."""
    return PriceGrid(parse_ranges(json.loads(text)))


def off_grid(
    grid: PriceGrid, prices: tuple[int | None, ...], yes_levels: tuple[int, ...], no_levels: tuple[int, ...]
) -> str:
    """The first price of a quote not on ``grid``, named ("yes_bid 0.4235"); "" when all are.
    NO bids are YES asks mirrored: a NO bid at p is checked as the YES price 1 - p."""
    bid, ask = prices[0], prices[1]
    if bid is not None and not grid.has(bid):
        return f"yes_bid {_dollars(bid)}"
    if ask is not None and not grid.has(ask):
        return f"yes_ask {_dollars(ask)}"
    for c in yes_levels:
        if not grid.has(c):
            return f"yes bid level {_dollars(c)}"
    for c in no_levels:
        if not grid.has(_SCALE - c):
            return f"no bid level {_dollars(c)}"
    return ""
