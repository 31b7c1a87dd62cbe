"""Threshold EV strategy: buy the side whose net EV (after fees) clears the edge threshold.

Two ways to buy (``StrategyConfig.mode``, issue #23 item 2): take (``decide``, below: a limit that
walks the asks) or post (``decide_post``: a resting bid at ``post_price``, one grid step over the
best bid at most, under the ask, where the EV after the maker's fee clears); ``both`` takes where
the taker's EV clears, else posts (the engine chooses: trading/engine.py ``decide``).

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
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

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


#: The longest a GTD post may rest (``post_expiry_seconds``): a week.
MAX_POST_EXPIRY_S = 7 * 86_400


class StrategyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    edge_threshold: Decimal = Field(default=Decimal("0.03"), ge=0, le=1)
    kelly_fraction: Decimal | None = Field(default=None, gt=0, le=1)
    # issue #23 item 2: take (an ioc limit that walks the book: ``decide``), post (a resting
    # limit at ``post_price``: ``decide_post``), or both (take when the taker's EV clears, else post)
    mode: Literal["take", "post", "both"] = "take"
    post_tif: Literal["gtc", "gtd"] = "gtc"  # a post's time in force
    post_only: bool = True  # a post that would cross at its activation is rejected, never takes
    # a GTD post's life from its decision (needed with post_tif = "gtd", refused without it)
    post_expiry_seconds: int | None = Field(default=None, validate_default=True, ge=1, le=MAX_POST_EXPIRY_S)

    @field_validator("post_expiry_seconds")
    @classmethod
    def _expiry_with_gtd(cls, v: int | None, info: ValidationInfo) -> int | None:
        tif = info.data.get("post_tif")
        if tif == "gtd" and v is None:
            raise ValueError('post_tif = "gtd" needs post_expiry_seconds (1 to 604800)')
        if tif == "gtc" and v is not None:
            raise ValueError('only for post_tif = "gtd" (a gtc post never expires)')
        return v


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


# -- posting: a resting limit on the market's grid (issue #23 item 2; rules.md "Posting") ------
#: The whole-cent grid: prices every Kalshi price structure holds. A market that states no
#: ``price_ranges`` posts on it (an order there is valid whatever its structure).
CENT_GRID = PriceGrid(((0, 10_000, 100),))


def _side_book(snapshot: Quote, side: Side) -> tuple[int | None, int | None]:
    """``side``'s best bid and best ask in its own prices (cc): a NO bid is a YES ask mirrored."""
    bid_cc, ask_cc, _last = snapshot.prices_cc
    if side is Side.YES:
        return bid_cc, ask_cc
    return (None if ask_cc is None else 10_000 - ask_cc), (None if bid_cc is None else 10_000 - bid_cc)


def _at_or_below(grid: PriceGrid, side: Side, c: int) -> int | None:
    """The highest price of ``side`` at or under ``c`` on ``grid`` (which holds YES prices: a NO
    price q is on it when the YES price 1 - q is)."""
    if c < 0:
        return None
    if side is Side.YES:
        return grid.sell_limit(c)
    y = grid.buy_limit(10_000 - c)
    return None if y is None else 10_000 - y


def _step_above(grid: PriceGrid, side: Side, c: int) -> int | None:
    """The lowest price of ``side`` above ``c`` on ``grid``: one grid step up from ``c``."""
    if c >= 10_000:
        return None
    if side is Side.YES:
        return grid.buy_limit(c + 1)
    y = grid.sell_limit(10_000 - c - 1)
    return None if y is None else 10_000 - y


def post_price(
    snapshot: Quote,
    p_hat: Decimal,
    side: Side,
    threshold: Decimal,
    terms: FeeTerms,
    grid: PriceGrid | None = None,
    now_ms: int = 0,
) -> int | None:
    """The price (``side``'s own, centicents) at which to rest a bid on ``side``: the highest
    price on the market's grid (``grid``; none stated: whole cents, ``CENT_GRID``) that

    (a) is below ``side``'s best ask: it rests, never crosses;
    (b) improves ``side``'s best bid by at most one grid step (first in the queue, at the least
        EV given up for it: rules.md "Posting" says why);
    (c) clears ``threshold``: p_hat(side) - price - the maker's fee per contract
        (``terms.maker()``, one contract's fee rounded up to the centicent, as Kalshi rounds)
        is at least the threshold (``core/ev.py``'s one rule, at the maker's fee).

    None when no price does, or when ``side`` has no bid or no ask to place it against."""
    bid, ask = _side_book(snapshot, side)
    if bid is None or ask is None:
        return None
    g = CENT_GRID if grid is None else grid
    up = _step_above(g, side, bid)
    top = min(ask - 1, bid if up is None else up)  # (a) and (b)
    budget = ev_units(p_hat, threshold).budget(side)  # (c): a price clears when its cost is within it
    costs = price_costs(maker_fee(terms, now_ms))
    if costs.rising:  # (every real fee schedule: the cost never falls as the price rises)
        p = _at_or_below(g, side, min(top, highest_clearing_ask_cc(budget, costs)))
        return p if p is not None and p > 0 else None
    p = _at_or_below(g, side, top)
    while p is not None and p > 0:
        if costs.cost[p] <= budget:
            return p
        p = _at_or_below(g, side, p - 1)
    return None


def post_side(
    snapshot: Quote,
    p_hat: Decimal,
    threshold: Decimal,
    terms: FeeTerms,
    grid: PriceGrid | None = None,
    now_ms: int = 0,
) -> tuple[Side, int, int] | None:
    """The side to post on: (side, its ``post_price``, the net EV there in ``ev_units``), the
    side with the better EV after the maker's fee (YES on a tie, as ``decide`` chooses); None
    when neither side has a post price. What a belief makes of a quote's top of book at the
    maker's fee is kept (``_POSTED``): a market decided tick after tick on a quote that has not
    moved is priced once."""
    fee = maker_fee(terms, now_ms)
    bid_cc, ask_cc, _last = snapshot.prices_cc
    key = (bid_cc, ask_cc, p_hat, threshold, fee, None if grid is None else grid.ranges)
    try:
        return _POSTED[key]
    except KeyError:
        pass
    u = ev_units(p_hat, threshold)
    fee_1 = price_costs(fee).fee
    best: tuple[Side, int, int] | None = None
    for side in (Side.YES, Side.NO):
        p = post_price(snapshot, p_hat, side, threshold, terms, grid, now_ms)
        if p is not None:
            ev = net_ev_units(u.win(side), p, fee_1[p], u.k)
            if best is None or ev > best[2]:
                best = (side, p, ev)
    return _POSTED.put(key, best)


def decide_post(
    snapshot: Quote,
    estimate: Estimate,
    equity_cc: int,
    max_loss_pct: Decimal,
    terms: FeeTerms,
    cfg: StrategyConfig,
    grid: PriceGrid | None = None,
    now_ms: int = 0,
    ts: int | None = None,
) -> TradeDecision | None:
    """A post's proposal before the risk gate (``decide``'s, for a resting order), or None when
    no side has a post price. Its ``limit_price`` is the post price and its ``best_ask`` the
    side's best ask it rests under (``is_post``). Sized by the per-trade cap at the post price,
    not bounded by displayed depth (a resting order waits for liquidity; it takes none), with
    the worst case of every fill it could have: a post-only order's fills are all a maker's, at
    its price, at ``terms.maker()``; one that is not post-only may take at activation, so its fee
    is the taker's at the dearest price up to its limit; either without a fee waiver (``lasting``:
    the order may outlive it). Each fill's value is rounded up by
    less than a centicent, and a fill is at least a hundredth, so the worst case adds a
    centicent a hundredth off a whole-cent price (and one more, as ``worst_case_cc`` always
    does): never less than ``orders.reserved_cc`` reserves for the order. Fractional Kelly
    (``kelly_fraction``) at the post price can only shrink it."""
    p_hat, threshold = estimate.p_hat, cfg.edge_threshold
    got = post_side(snapshot, p_hat, threshold, terms, grid, now_ms)
    if got is None:
        return None
    side, p, ev = got
    u = ev_units(p_hat, threshold)
    lasting = terms.lasting()  # (it rests: its worst case counts no waiver, which it may outlive)
    if cfg.post_only:
        fee, w_cc = maker_fee(lasting, now_ms), p
    else:
        fee, w_cc = fee_ratio(lasting, now_ms), worst_fee_price_cc(1, p)
    per = p if cfg.post_only and p % 100 == 0 else p + 100  # (+1 cc a hundredth: each fill's rounding)
    cap = _cap(equity_cc, max_loss_pct)
    h = max_hundredths(cap, per, w_cc, fee, cap * 100 // per + 1, 1)
    if cfg.kelly_fraction is not None:
        h = min(h, kelly_hundredths(equity_cc, u.win(side), u.k, p, cfg.kelly_fraction))
    worst = worst_case_cc(h, per, w_cc, fee, 1)
    ask = _side_book(snapshot, side)[1]
    assert ask is not None  # (post_price: a side without an ask has no post price)
    stamp = snapshot.ts if ts is None else ts
    return make_decision(
        (
            snapshot.ticker,
            stamp,
            side,
            hundredths_to_count(h),
            GRID[p],
            GRID[ask],
            p_hat,
            ev_decimal(ev, u),
            worst,
            equity_cc,
            False,
            "",
        )
    )


def is_post(d: TradeDecision) -> bool:
    """Whether ``d`` is a post (``decide_post``'s: a resting order) rather than a take: a post's
    limit is under the best ask it saw (it never crosses), a take's never is (its limit is the
    best ask or a deeper ask, and the grid only raises it)."""
    return d.limit_price < d.best_ask


def wanted_post(
    snapshot: Quote,
    p_hat: Decimal,
    cfg: StrategyConfig,
    terms: FeeTerms,
    grid: PriceGrid | None = None,
    now_ms: int = 0,
) -> tuple[Side, int] | None:
    """What a market's live post should be now, by ``cfg.mode``'s rule: (side, price) of
    ``post_side``; None when no post clears, and in ``both`` mode when the taker's EV clears
    (the strategy would take, not post). A live post that is not this is re-priced: cancelled,
    and decided afresh once it is done."""
    if cfg.mode == "take":
        return None
    if cfg.mode == "both" and pick_side(side_evs(snapshot, p_hat, terms, now_ms), cfg.edge_threshold) is not None:
        return None
    got = post_side(snapshot, p_hat, cfg.edge_threshold, terms, grid, now_ms)
    return None if got is None else (got[0], got[1])


# -- what is kept between decisions ------------------------------------------------------------
#: 1 - p for each price on the grid: a YES bid read as a NO ask (and back)
_MIRROR: tuple[Decimal, ...] = tuple(_ONE - g for g in GRID)
_CAP: list[tuple[int, Decimal, int]] = [(0, _ZERO, 0)]  # the last (equity, max loss %, cap): one equity a tick
#: (p_hat, threshold, fee) -> clearing_asks_cc: one per belief
_CLEARING: Memo[tuple[Decimal, Decimal, UnitFee], tuple[int, int]] = Memo("strategy.clearing")
#: (bid, ask, p_hat, threshold, maker's fee, grid's ranges) -> post_side: what a post would be
_POSTED: Memo[tuple[object, ...], tuple[Side, int, int] | None] = Memo("strategy.posted")
#: id(terms) -> (terms, the maker's fee_ratio unwaived): ``FeeTerms.maker()`` makes new terms
_MAKER_FEE: Memo[int, tuple[FeeTerms, UnitFee]] = Memo("strategy.maker_fee")


def maker_fee(terms: FeeTerms, now_ms: int) -> UnitFee:
    """``fee_ratio(terms.maker(), now_ms)``, kept by the taker's terms (the engine hands over one
    terms object per market: no hashing, as ``fees.fee_ratio`` keeps its own)."""
    if terms.waived(now_ms):
        return fee_ratio(terms, now_ms)  # (waived alike: the maker's terms keep the waiver)
    hit = _MAKER_FEE.get(id(terms))
    if hit is None or hit[0] is not terms:
        hit = _MAKER_FEE.put(id(terms), (terms, fee_ratio(terms.maker(), now_ms)))  # (kept alive with its id)
    return hit[1]


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
