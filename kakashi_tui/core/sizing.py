"""Position sizing under a worst-case-loss cap, in hundredths of a contract: the one home of
the sizing rule, exact in integers for any size.

Kalshi trades every market in hundredths of a contract (``fractional_trading_enabled`` is
always true), so sizing picks the largest count on the 0.01 grid whose worst case stays
within the per-trade cap. The worst case of buying a binary contract is losing everything
paid: the contracts at the limit price, plus the largest fee possible in the walked price
range, plus one centicent of rounding per level taken. Fractional Kelly can shrink that
count, never grow it past the cap.

Prices are in centicents, counts in hundredths, money in centicents. (The same rule in
Decimal dollars is the tests' oracle: tests/strategy_oracle.py.)
"""

from __future__ import annotations

from decimal import Decimal

from kakashi_tui.core.fees import UnitFee, fee_cc_units

_PEAK = 5_000  # $0.50 in centicents: where P(1-P) peaks


def per_trade_cap_cc(equity_cc: int, max_loss_pct: Decimal) -> int:
    """The most one trade may lose: ``max_loss_pct`` percent of equity, floored to a centicent."""
    if equity_cc <= 0:
        return 0
    num, den = max_loss_pct.as_integer_ratio()
    return equity_cc * num // (den * 100)


def worst_fee_price_cc(lo_cc: int, hi_cc: int) -> int:
    """The price in [lo, hi] whose fee is the largest: P(1-P) peaks at $0.50, so the one
    nearest it."""
    return _PEAK if lo_cc <= _PEAK <= hi_cc else (hi_cc if hi_cc < _PEAK else lo_cc)


def worst_case_cc(h: int, limit_cc: int, w_cc: int, fee: UnitFee, levels: int = 1) -> int:
    """Upper bound of cost + fees for ``h`` hundredths filled at prices up to ``limit_cc``
    over at most ``levels`` book levels (each level's value is rounded up by less than a
    centicent), the fee taken at ``w_cc`` (``worst_fee_price_cc`` of the range)."""
    if h <= 0:
        return 0
    return -((-h * limit_cc) // 100) + fee_cc_units(h, w_cc, fee) + max(levels, 1)


def max_hundredths(
    cap_cc: int, limit_cc: int, w_cc: int, fee: UnitFee, available_hundredths: int, levels: int = 1
) -> int:
    """Largest h <= available with worst_case_cc(h) <= cap_cc (0 when none), the fee taken at
    ``w_cc`` (``worst_fee_price_cc`` of [best ask, limit])."""
    if limit_cc <= 0 or cap_cc <= 0 or available_hundredths <= 0:
        return 0
    rounding = max(levels, 1)
    hi = min(available_hundredths, cap_cc * 100 // limit_cc + 1)  # h x limit alone is past the cap above it
    # worst(h) is nondecreasing and lies in [h x rate + r, h x rate + r + 2) with rate =
    # limit + fee per hundredth, so the largest h within the cap (the one answer) lies between
    # these two bounds:
    num, den, flat = fee  # (fee_ratio: never negative, so per_hundredths > 0)
    per_hundredths = (num * 25 * 1_000_000 if flat else num * w_cc * (10_000 - w_cc)) + limit_cc * den * 10_000
    scale = den * 1_000_000  # rate = per_hundredths / scale centicents per hundredth
    lo = min(hi, max(0, (cap_cc - rounding - 2) * scale // per_hundredths))  # worst(lo) <= cap
    hi = min(hi, max(0, (cap_cc - rounding) * scale // per_hundredths))  # worst(hi + 1) > cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if worst_case_cc(mid, limit_cc, w_cc, fee, rounding) <= cap_cc:
            lo = mid
        else:
            hi = mid - 1
    return lo


def kelly_hundredths(equity_cc: int, win: int, k: int, ask_cc: int, fraction: Decimal) -> int:
    """Hundredths of a contract (floored) whose cost at ``ask_cc`` is the fractional-Kelly
    stake: ``fraction`` x f* of equity, f* = (q - a) / (1 - a) for a contract costing a that
    wins with probability q (``win`` in units of which ``k`` make a centicent), 0 when there
    is no edge."""
    if ask_cc <= 0 or ask_cc >= 10_000:
        return 0
    edge = win - ask_cc * k  # q - a, in units
    if edge <= 0:
        return 0
    num, den = fraction.as_integer_ratio()
    # stake / a = equity/10^4 x fraction x (q - a)/(1 - a) / a, with q - a = edge/(k x 10^4),
    # 1 - a = (10^4 - ask)/10^4 and a = ask/10^4; in hundredths, x 100
    return 100 * equity_cc * num * edge // (den * k * (10_000 - ask_cc) * ask_cc)
