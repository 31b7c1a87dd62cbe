"""The strategy's rule in Decimal dollars, as the docs write it: the oracle of the production
path (``core/strategy.py``, in integers), held equal to it by tests/unit/test_strategy_sizing.py.

This was production's ``decide_decimal`` (with ``ev.net_ev`` and ``sizing``'s Decimal
functions). Every function here runs in an exact context: the arithmetic is all sums and
products of finite decimals, which 1,000 digits hold exactly, and the divisions that are not
(the size bound, Kelly's stake) are floored, as their results are, once (in ``FLOORED``). Production's old
copy ran in Decimal's default 28 digits, so past them (a p_hat of 30 digits, an 18-digit fee
coefficient on a large order) and in Kelly's two divisions it rounded: 1/3 Kelly of a stake
could come out 9.99 contracts where the rule says 10.00.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_FLOOR, Context, Decimal, localcontext
from functools import wraps
from typing import Any, TypeVar

from kakashi_tui.core.fees import FeeTerms, taker_fee_cc
from kakashi_tui.core.models import Estimate, Quote, Side, TradeDecision
from kakashi_tui.core.money import ONE, ceil_cc, count_to_hundredths, hundredths_to_count
from kakashi_tui.core.strategy import StrategyConfig

EXACT = Context(prec=1_000)  # (rounding as the default's: a zero sum is +0, as it was)
FLOORED = Context(prec=1_000, rounding=ROUND_FLOOR)
_ZERO = Decimal(0)
_HALF = Decimal("0.5")
F = TypeVar("F", bound=Callable[..., Any])


def exact(f: F) -> F:
    @wraps(f)
    def run(*a: Any, **kw: Any) -> Any:
        with localcontext(EXACT):
            return f(*a, **kw)

    return run  # type: ignore[return-value]


def win_probability(p_hat: Decimal, side: Side) -> Decimal:
    return p_hat if side is Side.YES else ONE - p_hat


@exact
def net_ev(
    p_hat: Decimal,
    side: Side,
    ask: Decimal,
    contracts: Decimal = Decimal(1),
    terms: FeeTerms = FeeTerms(),
    now_ms: int = 0,
) -> Decimal:
    """Net EV per contract in dollars of buying ``side`` at ``ask``: win - ask - fee per contract."""
    if contracts <= 0:
        raise ValueError("contracts must be > 0")
    fee = Decimal(taker_fee_cc(contracts, ask, terms, now_ms)) / 10_000 / contracts
    return win_probability(p_hat, side) - ask - fee


@exact
def max_fee_cc(qty: Decimal, lo: Decimal, hi: Decimal, terms: FeeTerms, now_ms: int = 0) -> int:
    """The fee of ``qty`` at the price in [lo, hi] nearest 0.5 (where P(1-P) peaks)."""
    worst = _HALF if lo <= _HALF <= hi else (hi if hi < _HALF else lo)
    return taker_fee_cc(qty, worst, terms, now_ms)


@exact
def worst_case_cc(
    contracts: Decimal, best_ask: Decimal, limit: Decimal, terms: FeeTerms, levels: int = 1, now_ms: int = 0
) -> int:
    if contracts <= 0:
        return 0
    return ceil_cc(contracts * limit) + max_fee_cc(contracts, best_ask, limit, terms, now_ms) + max(levels, 1)


@exact
def max_contracts(
    cap_cc: int,
    best_ask: Decimal,
    limit: Decimal,
    terms: FeeTerms,
    available: Decimal,
    levels: int = 1,
    now_ms: int = 0,
) -> Decimal:
    """Largest n <= available on the 0.01 grid with worst_case_cc(n) <= cap_cc (a bisection)."""
    if limit <= 0 or cap_cc <= 0 or available <= 0:
        return _ZERO
    with localcontext(FLOORED):
        hi = min(count_to_hundredths(available), int(Decimal(cap_cc) / (limit * 100)) + 1)
    lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if worst_case_cc(hundredths_to_count(mid), best_ask, limit, terms, levels, now_ms) <= cap_cc:
            lo = mid
        else:
            hi = mid - 1
    return hundredths_to_count(lo)


@exact
def kelly_fraction(win_p: Decimal, ask: Decimal) -> Decimal:
    """f* = (q - a) / (1 - a); 0 when there is no edge."""
    if ask >= 1 or win_p <= ask:
        return _ZERO
    return (win_p - ask) / (1 - ask)


@exact
def kelly_contracts(equity_cc: int, win_p: Decimal, ask: Decimal, fraction: Decimal) -> Decimal:
    """Contracts (0.01 grid, floored) whose cost at ``ask`` is the fractional-Kelly stake:
    equity x fraction x f* / ask, divided once (so floored once)."""
    if ask <= 0:
        return _ZERO
    edge, rest = (win_p - ask, 1 - ask) if ask < 1 and win_p > ask else (_ZERO, ONE)
    with localcontext(FLOORED):
        n = Decimal(equity_cc) * fraction * edge / (10_000 * rest * ask)
        return n.quantize(Decimal("0.01"), rounding=ROUND_FLOOR)


@exact
def per_trade_cap_cc(equity_cc: int, max_loss_pct: Decimal) -> int:
    if equity_cc <= 0:
        return 0
    return int((Decimal(equity_cc) * max_loss_pct / 100).to_integral_value(rounding=ROUND_FLOOR))


@exact
def side_evs(snapshot: Quote, p_hat: Decimal, terms: FeeTerms, now_ms: int = 0) -> dict[Side, Decimal | None]:
    out: dict[Side, Decimal | None] = {}
    for side in Side:
        ask = snapshot.ask(side)
        out[side] = None if ask is None else net_ev(p_hat, side, ask, ONE, terms, now_ms)
    return out


def pick_side(evs: dict[Side, Decimal | None], threshold: Decimal) -> tuple[Decimal, Side] | None:
    candidates = [(ev, s) for s, ev in evs.items() if ev is not None and ev >= threshold]
    return max(candidates, key=lambda t: (t[0], t[1] is Side.YES)) if candidates else None


@exact
def decide_decimal(
    snapshot: Quote,
    estimate: Estimate,
    equity_cc: int,
    max_loss_pct: Decimal,
    terms: FeeTerms,
    cfg: StrategyConfig,
    now_ms: int = 0,
) -> TradeDecision | None:
    """``strategy.decide`` in Decimal arithmetic throughout."""
    evs = side_evs(snapshot, estimate.p_hat, terms, now_ms)
    picked = pick_side(evs, cfg.edge_threshold)
    if picked is None:
        return None
    ev, side = picked
    best_ask = snapshot.ask(side)
    assert best_ask is not None
    levels = snapshot.ask_levels(side) or [(best_ask, Decimal(0))]
    limit = best_ask
    available = Decimal(0)
    walked = 0
    for p, q in levels:
        if net_ev(estimate.p_hat, side, p, ONE, terms, now_ms) < cfg.edge_threshold:
            break
        limit, available, walked = p, available + q, walked + 1
    cap = per_trade_cap_cc(equity_cc, max_loss_pct)
    n = max_contracts(cap, best_ask, limit, terms, available, walked, now_ms)
    if cfg.kelly_fraction is not None:
        n = min(n, kelly_contracts(equity_cc, win_probability(estimate.p_hat, side), best_ask, cfg.kelly_fraction))
    return TradeDecision(
        ticker=snapshot.ticker,
        ts=snapshot.ts,
        side=side,
        contracts=n,
        limit_price=limit,
        best_ask=best_ask,
        p_hat=estimate.p_hat,
        ev_per_contract=ev,
        worst_case_cc=worst_case_cc(n, best_ask, limit, terms, walked, now_ms),
        equity_cc=equity_cc,
    )
