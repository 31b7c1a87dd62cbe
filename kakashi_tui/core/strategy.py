"""Threshold EV strategy: buy the side whose net EV (after fees) clears the edge threshold.

Sizing is discrete: the largest whole number of contracts whose worst-case loss (cost +
fees, at the limit price) stays within the per-trade cap; optional fractional Kelly can
only shrink it. The limit price is the deepest ask level at which the EV still clears
the threshold, so the broker may walk the book up to it and no further.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from kakashi_tui.core.ev import net_ev, win_probability
from kakashi_tui.core.models import Estimate, Side, TickQuote, TradeDecision
from kakashi_tui.core.sizing import kelly_contracts, max_contracts, per_trade_cap_cents, worst_case_cents


class StrategyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    edge_threshold: Decimal = Field(default=Decimal("0.03"), ge=0, le=1)
    kelly_fraction: Decimal | None = Field(default=None, gt=0, le=1)


def side_evs(snapshot: TickQuote, p_hat: Decimal, multiplier: Decimal) -> dict[Side, Decimal | None]:
    """Net EV per contract of buying one contract of each side at its best ask."""
    out: dict[Side, Decimal | None] = {}
    for side in Side:
        ask = snapshot.ask(side)
        out[side] = None if ask is None else net_ev(p_hat, side, ask, 1, multiplier)
    return out


def pick_side(evs: dict[Side, Decimal | None], threshold: Decimal) -> tuple[Decimal, Side] | None:
    """The side with the best net EV at or above the threshold (YES on a tie), or None."""
    candidates = [(ev, s) for s, ev in evs.items() if ev is not None and ev >= threshold]
    return max(candidates, key=lambda t: (t[0], t[1] is Side.YES)) if candidates else None


def decide(
    snapshot: TickQuote,
    estimate: Estimate,
    equity_cents: int,
    max_loss_pct: Decimal,
    multiplier: Decimal,
    cfg: StrategyConfig,
) -> TradeDecision | None:
    """A proposal, or None when neither side clears the threshold."""
    evs = side_evs(snapshot, estimate.p_hat, multiplier)
    picked = pick_side(evs, cfg.edge_threshold)
    if picked is None:
        return None
    ev, side = picked
    best_ask = snapshot.ask(side)
    assert best_ask is not None
    levels = snapshot.ask_levels(side) or [(best_ask, 0)]
    limit = best_ask
    available = 0
    for p, q in levels:
        if net_ev(estimate.p_hat, side, p, 1, multiplier) < cfg.edge_threshold:
            break
        limit, available = p, available + q
    cap = per_trade_cap_cents(equity_cents, max_loss_pct)
    n = max_contracts(cap, best_ask, limit, multiplier, available)
    if cfg.kelly_fraction is not None:
        n = min(n, kelly_contracts(equity_cents, win_probability(estimate.p_hat, side), best_ask, cfg.kelly_fraction))
    return TradeDecision(
        ticker=snapshot.ticker,
        ts=snapshot.ts,
        side=side,
        contracts=n,
        limit_price=limit,
        best_ask=best_ask,
        p_hat=estimate.p_hat,
        ev_per_contract=ev,
        worst_case_cents=worst_case_cents(n, best_ask, limit, multiplier),
    )
