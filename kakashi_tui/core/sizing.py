"""Position sizing under a worst-case-loss cap, in fractional contracts.

Kalshi trades every market in hundredths of a contract (``fractional_trading_enabled`` is
always true), so sizing picks the largest count on the 0.01 grid whose worst case stays
within the per-trade cap. The worst case of buying a binary contract is losing everything
paid: the contracts at the limit price, plus the largest fee possible in the walked price
range, plus one centicent of rounding per level taken. Fractional Kelly can shrink that
count, never grow it past the cap.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from kakashi_tui.core.fees import FeeTerms, max_fee_cc
from kakashi_tui.core.money import ceil_cc, count_to_hundredths, hundredths_to_count

_ZERO = Decimal(0)


def per_trade_cap_cc(equity_cc: int, max_loss_pct: Decimal) -> int:
    """The most one trade may lose: ``max_loss_pct`` percent of equity, floored to a centicent."""
    if equity_cc <= 0:
        return 0
    return int((Decimal(equity_cc) * max_loss_pct / 100).to_integral_value(rounding=ROUND_FLOOR))


def worst_case_cc(
    contracts: Decimal, best_ask: Decimal, limit: Decimal, terms: FeeTerms, levels: int = 1, now_ms: int = 0
) -> int:
    """Upper bound of cost + fees for ``contracts`` filled at prices in [best_ask, limit] over at
    most ``levels`` book levels (each level's value is rounded up by less than a centicent)."""
    if contracts <= 0:
        return 0
    return ceil_cc(contracts * limit) + max_fee_cc(contracts, best_ask, limit, terms, now_ms) + max(levels, 1)


def max_contracts(
    cap_cc: int,
    best_ask: Decimal,
    limit: Decimal,
    terms: FeeTerms,
    available: Decimal,
    levels: int = 1,
    now_ms: int = 0,
) -> Decimal:
    """Largest n <= available on the 0.01 grid with worst_case_cc(n) <= cap_cc."""
    if limit <= 0 or cap_cc <= 0 or available <= 0:
        return _ZERO
    hi = min(count_to_hundredths(available), int(Decimal(cap_cc) / (limit * 100)) + 1)
    lo = 0
    while lo < hi:  # worst_case_cc grows with n: the largest h that fits
        mid = (lo + hi + 1) // 2
        if worst_case_cc(hundredths_to_count(mid), best_ask, limit, terms, levels, now_ms) <= cap_cc:
            lo = mid
        else:
            hi = mid - 1
    return hundredths_to_count(lo)


def kelly_fraction(win_p: Decimal, ask: Decimal) -> Decimal:
    """Full-Kelly fraction of bankroll for a binary contract costing ``ask`` paying $1.

    f* = (q - a) / (1 - a) where q is the probability of winning; 0 when there is no edge.
    """
    if ask >= 1 or win_p <= ask:
        return _ZERO
    return (win_p - ask) / (1 - ask)


def kelly_contracts(equity_cc: int, win_p: Decimal, ask: Decimal, fraction: Decimal) -> Decimal:
    """Contracts (0.01 grid, floored) whose cost at ``ask`` is the fractional-Kelly stake."""
    if ask <= 0:
        return _ZERO
    stake_dollars = Decimal(equity_cc) / 10_000 * fraction * kelly_fraction(win_p, ask)
    return (stake_dollars / ask).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
