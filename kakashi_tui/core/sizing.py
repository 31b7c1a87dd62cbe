"""Discrete position sizing under a worst-case-loss cap.

The worst case of buying a binary contract is losing everything paid: cost + fees.
Sizing picks the largest whole number of contracts whose worst case stays within the
per-trade cap. Fractional Kelly can shrink that number, never grow it past the cap.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from kakashi_tui.core.fees import max_fee_cents
from kakashi_tui.core.money import price_to_cents


def per_trade_cap_cents(equity_cents: int, max_loss_pct: Decimal) -> int:
    """The most one trade may lose: ``max_loss_pct`` percent of equity, floored to a cent."""
    if equity_cents <= 0:
        return 0
    return int((Decimal(equity_cents) * max_loss_pct / 100).to_integral_value(rounding=ROUND_FLOOR))


def worst_case_cents(contracts: int, best_ask: Decimal, limit: Decimal, multiplier: Decimal) -> int:
    """Upper bound of cost + fee for ``contracts`` filled at prices in [best_ask, limit]."""
    return contracts * price_to_cents(limit) + max_fee_cents(contracts, best_ask, limit, multiplier)


def max_contracts(
    cap_cents: int, best_ask: Decimal, limit: Decimal, multiplier: Decimal, available: int
) -> int:
    """Largest n <= available with worst_case_cents(n) <= cap_cents."""
    unit = price_to_cents(limit)
    if unit <= 0 or cap_cents <= 0 or available <= 0:
        return 0
    n = min(available, cap_cents // unit)
    while n > 0 and worst_case_cents(n, best_ask, limit, multiplier) > cap_cents:
        n -= 1
    return n


def kelly_fraction(win_p: Decimal, ask: Decimal) -> Decimal:
    """Full-Kelly fraction of bankroll for a binary contract costing ``ask`` paying $1.

    f* = (q - a) / (1 - a) where q is the probability of winning; 0 when there is no edge.
    """
    if ask >= 1 or win_p <= ask:
        return Decimal(0)
    return (win_p - ask) / (1 - ask)


def kelly_contracts(equity_cents: int, win_p: Decimal, ask: Decimal, fraction: Decimal) -> int:
    stake = Decimal(equity_cents) * fraction * kelly_fraction(win_p, ask)
    unit = price_to_cents(ask)
    if unit <= 0:
        return 0
    return int((stake / unit).to_integral_value(rounding=ROUND_FLOOR))
