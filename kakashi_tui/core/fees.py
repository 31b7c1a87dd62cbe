"""Kalshi trading fees.

Taker fee per order: ``ceil_to_cent(m * C * P * (1 - P))`` for C contracts at price P
(dollars), with m = 0.07 by default and configurable per series (some index series use
0.035). Settlement has no fee.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

DEFAULT_TAKER_MULTIPLIER = Decimal("0.07")
_QUARTER = Decimal("0.25")
_HALF = Decimal("0.5")


def _ceil_cents(dollars: Decimal) -> int:
    return int((dollars * 100).to_integral_value(rounding=ROUND_CEILING))


def taker_fee_cents(contracts: int, p: Decimal, multiplier: Decimal = DEFAULT_TAKER_MULTIPLIER) -> int:
    """Fee in cents for one order of ``contracts`` at price ``p``."""
    if contracts < 0:
        raise ValueError("contracts must be >= 0")
    if contracts == 0:
        return 0
    return _ceil_cents(multiplier * contracts * p * (1 - p))


def fill_fee_cents(
    levels: Iterable[tuple[Decimal, int]], multiplier: Decimal = DEFAULT_TAKER_MULTIPLIER
) -> int:
    """Fee for one order filled across several price levels: the exact sum, ceiled once."""
    total = sum((multiplier * q * p * (1 - p) for p, q in levels), Decimal(0))
    return _ceil_cents(total)


def max_fee_cents(contracts: int, lo: Decimal, hi: Decimal, multiplier: Decimal) -> int:
    """An upper bound on the fee of ``contracts`` filled anywhere in [lo, hi].

    P(1-P) peaks at 0.5, so the bound uses the price in the range closest to 0.5.
    """
    if lo <= _HALF <= hi:
        return _ceil_cents(multiplier * contracts * _QUARTER)
    worst = hi if hi < _HALF else lo
    return taker_fee_cents(contracts, worst, multiplier)


@dataclass(frozen=True)
class FeeSchedule:
    taker_multiplier: Decimal = DEFAULT_TAKER_MULTIPLIER
    series_multipliers: Mapping[str, Decimal] = field(default_factory=dict)

    def multiplier(self, series: str) -> Decimal:
        return self.series_multipliers.get(series, self.taker_multiplier)
