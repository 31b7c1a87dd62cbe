"""Units: prices, counts and money, exact. Conversions live here and nowhere else.

- **Prices** are probabilities in [0, 1] as ``Decimal`` on Kalshi's finest grid, $0.0001 (a
  contract pays $1, so 0.4230 costs 42.30 cents; ``deci_cent`` / ``tapered_deci_cent`` markets
  quote 0.0030 and 0.9930). Stored as integer centicents.
- **Counts** (contracts, book quantities, volume) are ``Decimal`` on the 0.01 grid (Kalshi's
  ``*_fp`` strings, "2.50"); stored as integer hundredths of a contract.
- **Money** is integer **centicents** (``*_cc``): $0.0001, Kalshi's own unit for fee rounding
  and direct-member balances ("Fee Rounding", docs.kalshi.com). $1 = 10,000 cc.

A fill's value (price x count) has up to six decimals of a dollar; it becomes money once,
here, rounded against the trader (``ceil_cc`` for what is paid, ``floor_cc`` for what is
received), which is Kalshi's "rounding fee".
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from kakashi_tui.core.memo import Memo

PRICE_STEP = Decimal("0.0001")
COUNT_STEP = Decimal("0.01")
CC_PER_DOLLAR = 10_000
ONE = Decimal(1)
ZERO = Decimal(0)
#: Counts past this (10^12 contracts) are not a market: bound before SQLite (INTEGER is 64-bit).
MAX_COUNT = Decimal(10) ** 12


def price(value: str | int | float | Decimal) -> Decimal:
    """A probability as an exact Decimal (floats go through ``repr`` to avoid binary noise)."""
    if isinstance(value, float):
        value = repr(value)
    return Decimal(value)


def on_grid(value: Decimal, step: Decimal) -> bool:
    try:
        return value.is_finite() and value == value.quantize(step)
    except InvalidOperation:
        return False


#: every price in [0, 1] on the grid -> its centicents (a Decimal finds its value however written)
_CC_OF: dict[Decimal, int] = {Decimal(c).scaleb(-4): c for c in range(CC_PER_DOLLAR + 1)}


def price_to_cc(p: Decimal) -> int:
    """Exact centicents of an on-grid price; raises if the price is off the $0.0001 grid."""
    try:
        return _CC_OF[p]
    except (KeyError, TypeError):  # (outside [0, 1], off the grid, a signalling NaN)
        pass
    c = p * CC_PER_DOLLAR
    if c != c.to_integral_value():
        raise ValueError(f"price {p} is not on the $0.0001 grid")
    return int(c)


def cc_to_price(cc: int) -> Decimal:
    return Decimal(cc).scaleb(-4)


def count(value: str | int | Decimal) -> Decimal:
    """A count as an exact Decimal on the 0.01 grid; raises when it is not."""
    d = Decimal(value)
    if not on_grid(d, COUNT_STEP):
        raise ValueError(f"count {value} is not on the 0.01 grid")
    return d


def count_to_hundredths(n: Decimal) -> int:
    try:
        return _H_OF[n]
    except (KeyError, TypeError):  # (a count hundredths_to_count has not made lately; a signalling NaN)
        pass
    h = n * 100
    if h != h.to_integral_value():
        raise ValueError(f"count {n} is not on the 0.01 grid")
    return int(h)


#: the counts made lately, both ways (sizes and book quantities repeat): bounded, refilled on use
_COUNT_OF: Memo[int, Decimal] = Memo("money.counts")
_H_OF: Memo[Decimal, int] = Memo("money.hundredths")


def hundredths_to_count(h: int) -> Decimal:
    n = _COUNT_OF.get(h)
    if n is None:
        n = _COUNT_OF.put(h, Decimal(h).scaleb(-2))
        _H_OF.put(n, h)
    return n


def fmt_count(n: Decimal) -> str:
    """12, 2.5, 0.01: a count as the operator reads it (no trailing zeros)."""
    return format(n.normalize(), "f")


def dollars_to_cc(dollars: Decimal, up: bool) -> int:
    """Money from an exact dollar amount: ``up`` rounds toward +inf (what is paid), else down."""
    return int((dollars * CC_PER_DOLLAR).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR))


def ceil_cc(dollars: Decimal) -> int:
    return dollars_to_cc(dollars, True)


def floor_cc(dollars: Decimal) -> int:
    return dollars_to_cc(dollars, False)


def fmt_cc(cc: int) -> str:
    """$1,234.56 / -$0.07; four decimals only when there are sub-cent centicents ($0.0123)."""
    sign = "-" if cc < 0 else ""
    c = abs(cc)
    dollars, frac = divmod(c, CC_PER_DOLLAR)
    tail = f"{frac // 100:02d}" if frac % 100 == 0 else f"{frac:04d}"
    return f"{sign}${dollars:,}.{tail}"
