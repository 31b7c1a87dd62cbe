"""Threshold EV strategy: buy the side whose net EV (after fees) clears the edge threshold.

Sizing is in hundredths of a contract: the largest count whose worst-case loss (cost + fees
at the limit price) stays within the per-trade cap; optional fractional Kelly can only
shrink it. The limit price is the deepest ask level at which the EV still clears
the threshold, so the broker may walk the book up to it and no further.

One path, exact for every input: EVs (core/ev.py), fees (core/fees.py) and sizes
(core/sizing.py) are integers (centicents, hundredths, EVs in units of 10^-places dollars),
which Python does not bound, so there is no range past which another path takes over. The
same rule in Decimal dollars, as written in the docs, is the tests' oracle
(tests/strategy_oracle.py; a Hypothesis test holds the two equal, Kelly sizing, long p_hats,
sub-penny prices and any fee coefficient included).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from kakashi_tui.core.ev import (
    EvUnits,
    PriceCosts,
    ev_decimal,
    ev_units,
    highest_clearing_ask_cc,
    net_ev_units,
    price_costs,
)
from kakashi_tui.core.fees import FeeTerms, UnitFee, fee_ratio
from kakashi_tui.core.grid import PriceGrid
from kakashi_tui.core.memo import Memo
from kakashi_tui.core.models import GRID, Estimate, Quote, Side, TradeDecision, make_decision
from kakashi_tui.core.money import count_to_hundredths, hundredths_to_count, price_to_cc
from kakashi_tui.core.sizing import (
    kelly_hundredths,
    max_hundredths,
    per_trade_cap_cc,
    worst_case_cc,
    worst_fee_price_cc,
)

_ONE = Decimal(1)
_ZERO = Decimal(0)


class StrategyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    edge_threshold: Decimal = Field(default=Decimal("0.03"), ge=0, le=1)
    kelly_fraction: Decimal | None = Field(default=None, gt=0, le=1)


_E = TypeVar("_E", int, Decimal)


def _choose(ev_yes: _E | None, ev_no: _E | None, threshold: _E) -> Side | None:
    """The side with the best net EV at or above the threshold (YES on a tie), or None."""
    if ev_yes is not None and ev_yes >= threshold:
        return Side.NO if ev_no is not None and ev_no > ev_yes else Side.YES
    return Side.NO if ev_no is not None and ev_no >= threshold else None


def side_evs(snapshot: Quote, p_hat: Decimal, terms: FeeTerms, now_ms: int = 0) -> dict[Side, Decimal | None]:
    """Net EV per contract of buying one contract of each side at its best ask."""
    u = ev_units(p_hat, _ZERO)
    fee_1 = price_costs(fee_ratio(terms, now_ms)).fee
    bid_cc, ask_cc, _last = snapshot.prices_cc
    out: dict[Side, Decimal | None] = {}
    for side, a in ((Side.YES, ask_cc), (Side.NO, None if bid_cc is None else 10_000 - bid_cc)):
        out[side] = None if a is None else ev_decimal(net_ev_units(u.win(side), a, fee_1[a], u.k), u)
    return out


def pick_side(evs: dict[Side, Decimal | None], threshold: Decimal) -> tuple[Decimal, Side] | None:
    """The side with the best net EV at or above the threshold (YES on a tie), or None."""
    side = _choose(evs[Side.YES], evs[Side.NO], threshold)
    ev = None if side is None else evs[side]
    return None if side is None or ev is None else (ev, side)


def clearing_asks_cc(p_hat: Decimal, threshold: Decimal, fee: UnitFee) -> tuple[int, int]:
    """The highest YES ask and the highest NO ask, in centicents (-1: none), at which ``decide``
    could buy on belief ``p_hat`` with fee terms no dearer than ``fee``: a quote whose asks are
    both above them is never traded (the catalog replay's pre-filter compares asks with these,
    computed once per belief by the one EV rule)."""
    key = (p_hat, threshold, fee)
    hit = _CLEARING.get(key)
    if hit is None:
        u, costs = ev_units(p_hat, threshold), price_costs(fee)
        y = highest_clearing_ask_cc(u.budget(Side.YES), costs)
        n = highest_clearing_ask_cc(u.budget(Side.NO), costs)
        hit = _CLEARING.put(key, (y, n))
    return hit


def decide(
    snapshot: Quote,
    estimate: Estimate,
    equity_cc: int,
    max_loss_pct: Decimal,
    terms: FeeTerms,
    cfg: StrategyConfig,
    now_ms: int = 0,
    ts: int | None = None,
) -> TradeDecision | None:
    """A proposal before the risk gate (``verdict`` gives it one), or None when neither side
    clears the threshold. ``equity_cc`` is the liquidation equity (ledger.equity_cc): the
    per-trade cap's base. The decision is stamped ``ts`` (default: the quote's time)."""
    p_hat, threshold = estimate.p_hat, cfg.edge_threshold
    fee = fee_ratio(terms, now_ms)
    key = (p_hat, threshold, fee, snapshot.prices_cc, snapshot.book_text)  # (the book text is the depth's stored form)
    try:
        priced = _PRICED[key]
    except KeyError:
        # (~1 MB: the books are kept with their keys; a run's working set fits)
        priced = _PRICED.put(key, _price(snapshot, ev_units(p_hat, threshold), price_costs(fee)))
    if priced is None:
        return None
    side, best_cc, best_ask, ev, limit_cc, limit, w_cc, available_hundredths, walked, win, k = priced
    h = max_hundredths(_cap(equity_cc, max_loss_pct), limit_cc, w_cc, fee, available_hundredths, walked)
    if cfg.kelly_fraction is not None:
        h = min(h, kelly_hundredths(equity_cc, win, k, best_cc, cfg.kelly_fraction))
    worst = worst_case_cc(h, limit_cc, w_cc, fee, walked)
    stamp = snapshot.ts if ts is None else ts
    return make_decision(
        (snapshot.ticker, stamp, side, hundredths_to_count(h), limit, best_ask, p_hat, ev, worst, equity_cc, False, "")
    )


def limit_on_grid(
    d: TradeDecision, grid: PriceGrid, snapshot: Quote, terms: FeeTerms, now_ms: int = 0
) -> TradeDecision:
    """``d`` with its (buy) limit on the market's price grid, rounded in the trader's disfavour:
    up to the next grid price, never a cheaper one than the grid allows (core/grid.py), its
    worst case re-bounded at the new limit. A limit already on the grid (the usual case: it is a
    book level, and a quote off its grid is rejected) is left as it is; a limit with no grid
    price at or above it sizes to nothing."""
    c = price_to_cc(d.limit_price)
    up = grid.buy_limit(c)
    if up == c:
        return d
    if up is None:
        return d._replace(contracts=hundredths_to_count(0), worst_case_cc=0)
    h = count_to_hundredths(d.contracts)
    best = price_to_cc(d.best_ask)
    levels = sum(1 for p, _q in snapshot.ask_levels(d.side) if price_to_cc(p) <= up)
    worst = worst_case_cc(h, up, worst_fee_price_cc(min(best, up), up), fee_ratio(terms, now_ms), levels)
    return d._replace(limit_price=GRID[up], worst_case_cc=worst)


# -- what is kept between decisions ------------------------------------------------------------
#: 1 - p for each price on the grid: a YES bid read as a NO ask (and back)
_MIRROR: tuple[Decimal, ...] = tuple(_ONE - g for g in GRID)
_CAP: list[tuple[int, Decimal, int]] = [(0, _ZERO, 0)]  # the last (equity, max loss %, cap): one equity a tick
#: (p_hat, threshold, fee) -> clearing_asks_cc: one per belief
_CLEARING: Memo[tuple[Decimal, Decimal, UnitFee], tuple[int, int]] = Memo("strategy.clearing")


def _cap(equity_cc: int, max_loss_pct: Decimal) -> int:
    last = _CAP[0]  # (one read: another thread may replace it, never half of it)
    if last[0] == equity_cc and last[1] == max_loss_pct:
        return last[2]
    cap = per_trade_cap_cc(equity_cc, max_loss_pct)
    _CAP[0] = (equity_cc, max_loss_pct, cap)
    return cap


#: What a belief makes of a book, whatever the equity: (p_hat, threshold, fee, prices, book) ->
#: (side, best ask cc, best ask, EV, limit cc, limit, the price of the largest fee between the
#: two, hundredths available, levels walked, the side's win in EV units, one centicent in
#: them), or None (no side clears the threshold). A market's book and belief repeat from tick
#: to tick (most of a replay's decisions are of a book seen before); bounded.
_Priced = tuple[Side, int, Decimal, Decimal, int, Decimal, int, int, int, int, int]
_PRICED: Memo[tuple[Decimal, Decimal, UnitFee, tuple[int | None, int | None, int | None], str], _Priced | None] = Memo(
    "strategy.priced"
)


def _price(snapshot: Quote, u: EvUnits, costs: PriceCosts) -> _Priced | None:
    fee_1, cost, k = costs.fee, costs.cost, u.k
    bid_cc, ask_cc, _last = snapshot.prices_cc
    no_cc = None if bid_cc is None else 10_000 - bid_cc  # the NO ask: the YES bid mirrored
    ev_yes = None if ask_cc is None else net_ev_units(u.p, ask_cc, fee_1[ask_cc], k)
    ev_no = None if no_cc is None else net_ev_units(u.win(Side.NO), no_cc, fee_1[no_cc], k)
    side = _choose(ev_yes, ev_no, u.thr)
    if side is None:
        return None
    best_cc, ev_i = (ask_cc, ev_yes) if side is Side.YES else (no_cc, ev_no)
    assert best_cc is not None and ev_i is not None
    budget = u.budget(side)  # a level clears when its cost is within it
    yc, yq, nc, nq = snapshot._depth
    level_cc, level_hundredths = (nc, nq) if side is Side.YES else (yc, yq)  # the other side's bids, mirrored
    limit_cc, available_hundredths, walked = best_cc, 0, 0
    last_c = -1
    if not level_cc:
        walked = 1  # no depth: the best ask with nothing available
    for c, q in zip(level_cc, level_hundredths):
        if cost[10_000 - c] > budget:
            break
        limit_cc, available_hundredths, walked, last_c = 10_000 - c, available_hundredths + q, walked + 1, c
    best_ask = GRID[best_cc]
    limit = best_ask if last_c < 0 else _MIRROR[last_c]
    w_cc = worst_fee_price_cc(best_cc, limit_cc)
    return (
        side,
        best_cc,
        best_ask,
        ev_decimal(ev_i, u),
        limit_cc,
        limit,
        w_cc,
        available_hundredths,
        walked,
        u.win(side),
        k,
    )
