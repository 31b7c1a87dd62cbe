"""Prices and money.

Prices are probabilities in [0, 1] as ``Decimal`` on the one-cent grid (a Kalshi
contract pays $1, so a probability of 0.42 costs 42 cents). Money is integer cents.
Conversions live here and nowhere else.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

CENT = Decimal("0.01")
ONE = Decimal(1)
ZERO = Decimal(0)


def price(value: str | int | float | Decimal) -> Decimal:
    """A probability as an exact Decimal (floats go through ``str`` to avoid binary noise)."""
    if isinstance(value, float):
        value = repr(value)
    return Decimal(value)


def cents_to_price(cents: int) -> Decimal:
    return (Decimal(cents) * CENT).quantize(CENT)


def price_to_cents(p: Decimal) -> int:
    """Exact cents of an on-grid price; raises if the price is off the cent grid."""
    c = p * 100
    if c != c.to_integral_value():
        raise ValueError(f"price {p} is not on the cent grid")
    return int(c)


def round_ask(p: Decimal) -> Decimal:
    """Conservative grid rounding for a price we would pay: up to the cent."""
    return p.quantize(CENT, rounding=ROUND_CEILING)


def round_bid(p: Decimal) -> Decimal:
    """Conservative grid rounding for a price we would receive: down to the cent."""
    return p.quantize(CENT, rounding=ROUND_FLOOR)


def fmt_cents(cents: int) -> str:
    """$1,234.56 / -$0.07."""
    sign = "-" if cents < 0 else ""
    c = abs(cents)
    return f"{sign}${c // 100:,}.{c % 100:02d}"
