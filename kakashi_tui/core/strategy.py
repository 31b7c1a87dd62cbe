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
from kakashi_tui.core.fees import FeeTerms, UnitFee, fee_cc_units, unit_fee
from kakashi_tui.core.memo import Memo
from kakashi_tui.core.models import GRID, Estimate, Quote, Side, TradeDecision, make_decision
from kakashi_tui.core.money import hundredths_to_count
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
    ts: int | None = None,
) -> TradeDecision | None:
    """A proposal before the risk gate (``verdict`` gives it one), or None when neither side
    clears the threshold. ``equity_cc`` is the liquidation equity (ledger.equity_cc): the
    per-trade cap's base. The decision is stamped ``ts`` (default: the quote's time). The rule
    in integer units (``_decide_units``) where that is exact, else in Decimal
    (``decide_decimal``, the reference; a property test holds the two equal)."""
    stamp = snapshot.ts if ts is None else ts
    fee = None if cfg.kelly_fraction is not None else unit_fee(terms, now_ms)
    if fee is not None:
        try:
            return _decide_units(snapshot, estimate, equity_cc, max_loss_pct, fee, cfg.edge_threshold, stamp)
        except _NotExact:
            pass
    d = decide_decimal(snapshot, estimate, equity_cc, max_loss_pct, terms, cfg, now_ms)
    if d is None or d.ts == stamp:
        return d
    return d._replace(ts=stamp)


def decide_decimal(
    snapshot: Quote,
    estimate: Estimate,
    equity_cc: int,
    max_loss_pct: Decimal,
    terms: FeeTerms,
    cfg: StrategyConfig,
    now_ms: int = 0,
) -> TradeDecision | None:
    """``decide`` in Decimal arithmetic throughout: the reference."""
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


# -- the same rule in integer units ---------------------------------------------------------
#: With fee coefficients of at most COEF_DIGITS significant digits (fees.unit_fee), and counts
#: under 10^13 hundredths, every product the Decimal reference makes has at most 28 digits (the
#: default context's precision), so it is exact and integer arithmetic gives the very same centicents.
_MAX_H = 10**13
_MAX_PLACES = 20
_PEAK = 5_000  # $0.50 in centicents: where P(1-P) peaks


class _NotExact(Exception):
    """A size past where the integer path is known exact: the caller takes the reference."""


#: (p_hat, threshold) -> (places, one centicent in those units, p_hat and threshold in them), or
#: None past _MAX_PLACES: the per-belief part of every decision, kept (bounded: beliefs change rarely)
_UNITS: Memo[tuple[Decimal, Decimal], tuple[int, int, int, int] | None] = Memo("strategy.units")
#: fee terms (``fees.unit_fee``) -> the one-contract fee at each price in centicents (index: price cc)
_FEE_1: dict[UnitFee, list[int]] = {}
#: 1 - p for each price on the grid: a YES bid read as a NO ask (and back)
_MIRROR: tuple[Decimal, ...] = tuple(_ONE - g for g in GRID)
_CAP: list[tuple[int, Decimal, int]] = [(0, Decimal(0), 0)]  # the last (equity, max loss %, cap): one equity a tick


def _units(p_hat: Decimal, threshold: Decimal) -> tuple[int, int, int, int] | None:
    key = (p_hat, threshold)
    try:
        return _UNITS[key]
    except KeyError:
        pass
    # EVs compared as integers in units of 10^-places dollars: with at most _MAX_PLACES decimal
    # places in p_hat and the threshold, the reference's Decimal sums are exact, so they compare alike
    places = max(4, -int(p_hat.as_tuple().exponent), -int(threshold.as_tuple().exponent))
    out = None
    if places <= _MAX_PLACES and p_hat.is_finite() and threshold.is_finite():
        out = (places, 10 ** (places - 4), int(p_hat.scaleb(places)), int(threshold.scaleb(places)))
    return _UNITS.put(key, out)


def _fee_1(fee: UnitFee) -> list[int]:
    try:
        return _FEE_1[fee]
    except KeyError:
        pass
    if len(_FEE_1) > 64:  # a handful of fee terms in a run
        _FEE_1.clear()
    table = _FEE_1[fee] = [fee_cc_units(100, c, fee) for c in range(10_001)]
    return table


def _cap(equity_cc: int, max_loss_pct: Decimal) -> int:
    last = _CAP[0]  # (one read: another thread may replace it, never half of it)
    if last[0] == equity_cc and last[1] == max_loss_pct:
        return last[2]
    cap = per_trade_cap_cc(equity_cc, max_loss_pct)
    _CAP[0] = (equity_cc, max_loss_pct, cap)
    return cap


#: What a belief makes of a book, whatever the equity: (p_hat, threshold, fee, prices, book) ->
#: (side, best ask cc, best ask, EV, limit cc, limit, hundredths available, levels walked), or
#: None (no side clears the threshold). A market's book and belief repeat from tick to tick
#: (most of a replay's decisions are of a book seen before); bounded.
_Priced = tuple[Side, int, Decimal, Decimal, int, Decimal, int, int]
_PRICED: Memo[tuple[Decimal, Decimal, UnitFee, tuple[int | None, int | None, int | None], str], _Priced | None] = Memo(
    "strategy.priced"
)


def _price(snapshot: Quote, p_hat: Decimal, fee: UnitFee, threshold: Decimal) -> _Priced | None:
    units = _units(p_hat, threshold)
    if units is None:
        raise _NotExact
    places, k, win_yes, thr = units
    fee_1 = _fee_1(fee)
    bid_cc, ask_cc, _last = snapshot.prices_cc
    best: tuple[int, Side, int] | None = None  # (ev, side, ask cc)
    if ask_cc is not None:
        ev_i = win_yes - (ask_cc + fee_1[ask_cc]) * k
        if ev_i >= thr:
            best = (ev_i, Side.YES, ask_cc)
    if bid_cc is not None:
        a_cc = 10_000 - bid_cc
        ev_i = 10**places - win_yes - (a_cc + fee_1[a_cc]) * k
        # pick_side: the best EV at or above the threshold, YES on a tie
        if ev_i >= thr and (best is None or ev_i > best[0]):
            best = (ev_i, Side.NO, a_cc)
    if best is None:
        return None
    _ev, side, best_cc = best
    best_ask = GRID[best_cc]
    win_p = p_hat if side is Side.YES else _ONE - p_hat
    ev = win_p - best_ask - Decimal(fee_1[best_cc]) / 10_000 / _ONE  # as net_ev writes it
    win = win_yes if side is Side.YES else 10**places - win_yes
    yc, yq, nc, nq = snapshot._depth
    level_cc, level_h = (nc, nq) if side is Side.YES else (yc, yq)  # the other side's bids, mirrored
    limit_cc, available_h, walked = best_cc, 0, 0
    last_c = -1
    if not level_cc:
        walked = 1  # no depth: the best ask with nothing available
    for c, q in zip(level_cc, level_h):
        a_cc = 10_000 - c
        if win - (a_cc + fee_1[a_cc]) * k < thr:
            break
        limit_cc, available_h, walked, last_c = a_cc, available_h + q, walked + 1, c
    limit = best_ask if last_c < 0 else _MIRROR[last_c]
    return side, best_cc, best_ask, ev, limit_cc, limit, available_h, walked


def _decide_units(
    snapshot: Quote,
    estimate: Estimate,
    equity_cc: int,
    max_loss_pct: Decimal,
    fee: UnitFee,
    threshold: Decimal,
    ts: int,
) -> TradeDecision | None:
    p_hat = estimate.p_hat
    key = (p_hat, threshold, fee, snapshot.prices_cc, snapshot.book_text)  # (the book text is the depth's stored form)
    try:
        priced = _PRICED[key]
    except KeyError:
        priced = _price(snapshot, p_hat, fee, threshold)
        _PRICED.put(key, priced)  # (~1 MB: the books are kept with their keys; a run's working set fits)
    if priced is None:
        return None
    side, best_cc, best_ask, ev, limit_cc, limit, available_h, walked = priced
    cap = _cap(equity_cc, max_loss_pct)
    # the worst price for the fee in [best ask, limit]: the one nearest $0.50
    w_cc = _PEAK if best_cc <= _PEAK <= limit_cc else (limit_cc if limit_cc < _PEAK else best_cc)
    rounding = max(walked, 1)

    def worst(h: int) -> int:  # sizing.worst_case_cc in hundredths and centicents
        if h <= 0:
            return 0
        return -((-h * limit_cc) // 100) + fee_cc_units(h, w_cc, fee) + rounding

    h = 0
    if limit_cc > 0 and cap > 0 and available_h > 0:  # sizing.max_contracts
        # the reference's int(cap / (limit x 100)) + 1: cap x 100 / limit_cc is exact in 28 digits
        hi = min(available_h, cap * 100 // limit_cc + 1)
        if hi >= _MAX_H:
            raise _NotExact
        # worst(h) is nondecreasing and lies in [h x rate + r, h x rate + r + 2) with rate =
        # limit + fee per hundredth, so the largest h within the cap (the one answer, which the
        # reference's bisection of [0, hi] finds) lies between these two bounds:
        num, den, flat = fee
        per_h = (num * 25 * 1_000_000 if flat else num * w_cc * (10_000 - w_cc)) + limit_cc * den * 10_000
        scale = den * 1_000_000  # rate = per_h / scale centicents per hundredth
        lo = min(hi, max(0, (cap - rounding - 2) * scale // per_h))  # worst(lo) <= cap
        hi = min(hi, max(0, (cap - rounding) * scale // per_h))  # worst(hi + 1) > cap
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if worst(mid) <= cap:
                lo = mid
            else:
                hi = mid - 1
        h = lo
    return make_decision(
        (snapshot.ticker, ts, side, hundredths_to_count(h), limit, best_ask, p_hat, ev, worst(h), equity_cc, False, "")
    )
