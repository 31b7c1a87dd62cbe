"""Threshold EV strategy: buy the side whose net EV (after fees) clears the edge threshold.

Sizing is in hundredths of a contract: the largest count whose worst-case loss (cost + fees
at the limit price) stays within the per-trade cap; optional fractional Kelly can only
shrink it. The limit price is the deepest ask level at which the EV still clears
the threshold, so the broker may walk the book up to it and no further.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from kakashi_tui.core.ev import net_ev, win_probability
from kakashi_tui.core.fees import FeeTerms
from kakashi_tui.core.models import Estimate, Quote, Side, TradeDecision
from kakashi_tui.core.sizing import kelly_contracts, max_contracts, per_trade_cap_cc, worst_case_cc


_ONE = Decimal(1)


class StrategyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    edge_threshold: Decimal = Field(default=Decimal("0.03"), ge=0, le=1)
    kelly_fraction: Decimal | None = Field(default=None, gt=0, le=1)


def side_evs(snapshot: Quote, p_hat: Decimal, terms: FeeTerms, now_ms: int = 0) -> dict[Side, Decimal | None]:
    """Net EV per contract of buying one contract of each side at its best ask."""
    out: dict[Side, Decimal | None] = {}
    for side in Side:
        ask = snapshot.ask(side)
        out[side] = None if ask is None else net_ev(p_hat, side, ask, _ONE, terms, now_ms)
    return out


def pick_side(evs: dict[Side, Decimal | None], threshold: Decimal) -> tuple[Decimal, Side] | None:
    """The side with the best net EV at or above the threshold (YES on a tie), or None."""
    candidates = [(ev, s) for s, ev in evs.items() if ev is not None and ev >= threshold]
    return max(candidates, key=lambda t: (t[0], t[1] is Side.YES)) if candidates else None


def decide(
    snapshot: Quote,
    estimate: Estimate,
    equity_cc: int,
    max_loss_pct: Decimal,
    terms: FeeTerms,
    cfg: StrategyConfig,
    now_ms: int = 0,
) -> TradeDecision | None:
    """A proposal, or None when neither side clears the threshold. ``equity_cc`` is the
    liquidation equity (ledger.equity_cc): the per-trade cap's base."""
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
        if net_ev(estimate.p_hat, side, p, _ONE, terms, now_ms) < cfg.edge_threshold:
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
