"""Paper broker: simulated fills against the order book. It never talks to an exchange.

Buying a side walks that side's asks (the other side's bids mirrored: a YES ask at p is
a NO bid at 1 - p), best first, up to the decision's limit price. Fills are never at a
price better than the book; a short book gives a partial fill; fractional levels are walked
exactly (counts on the 0.01 grid). Each level taken is one exchange fill: its value (price x
count) is rounded against the trader to the centicent (up when paying, down when receiving:
Kalshi's rounding fee) and its trade fee comes from the order's fee accumulator
(core/fees.py). Selling (flatten) walks the side's own bids.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from kakashi_tui.core.fees import FeeAccumulator, FeeTerms, UnitFee, order_fee_cc_units, unit_fee
from kakashi_tui.core.models import Fill, Quote, Side, TradeDecision
from kakashi_tui.core.money import ceil_cc, count_to_hundredths, floor_cc


def _walk(
    levels: list[tuple[Decimal, Decimal]], want: Decimal, ok: Callable[[Decimal], bool]
) -> list[tuple[Decimal, Decimal]]:
    taken: list[tuple[Decimal, Decimal]] = []
    left = want
    for p, q in levels:
        if left <= 0 or not ok(p):
            break
        n = min(q, left)
        taken.append((p, n))
        left -= n
    return taken


def priced(
    taken: list[tuple[Decimal, Decimal]], buying: bool, acc: FeeAccumulator, terms: FeeTerms | None = None
) -> tuple[int, int]:
    """(value, trade fee) in centicents of the fills ``taken`` ((price, count) each, one exchange
    fill per entry): each fill's value rounded against the trader to the centicent, its fee
    charged through the order's accumulator ``acc`` (at ``terms``, else the accumulator's own:
    an order that took and then rests pays its maker fills through the same accumulator)."""
    rounding = ceil_cc if buying else floor_cc
    value = fee = 0
    for p, n in taken:
        value += rounding(p * n)
        fee += acc.charge(n, p, terms)
    return value, fee


def _priced(taken: list[tuple[Decimal, Decimal]], buying: bool, terms: FeeTerms, ts: int) -> tuple[int, int]:
    """(value, trade fee) in centicents of one order that took ``taken``, level by level."""
    return priced(taken, buying, FeeAccumulator(terms, ts))


def _fill(
    ticker: str,
    side: Side,
    action: str,
    requested: Decimal,
    taken: list[tuple[Decimal, Decimal]],
    terms: FeeTerms,
    ts: int,
) -> Fill:
    value, fee = _priced(taken, action == "buy", terms, ts)
    return Fill(
        ticker=ticker,
        ts=ts,
        side=side,
        action=action,
        requested=requested,
        contracts=sum((n for _, n in taken), Decimal(0)),
        value_cc=value,
        fee_cc=fee,
        levels=tuple(taken),
    )


def fill_buy(decision: TradeDecision, quote: Quote, terms: FeeTerms, ts: int) -> Fill | None:
    """Fill a buy against ``quote``; None when nothing is available at or under the limit."""
    taken = walk_asks(decision.side, decision.contracts, decision.limit_price, quote)
    if not taken:
        return None
    return _fill(decision.ticker, decision.side, "buy", decision.contracts, taken, terms, ts)


def walk_asks(
    side: Side,
    contracts: Decimal,
    limit: Decimal,
    quote: Quote,
    available: Callable[[list[tuple[Decimal, Decimal]]], list[tuple[Decimal, Decimal]]] | None = None,
) -> list[tuple[Decimal, Decimal]]:
    """The levels a buy of up to ``contracts`` of ``side`` takes from ``quote``'s asks, best
    first, up to ``limit`` (the taker's walk: what is not there is not filled). ``available``
    maps the asks to what may still be taken (core/queue.py takes off what our own earlier
    fills consumed)."""
    if contracts <= 0:
        return []
    asks = quote.ask_levels(side)
    if available is not None:
        asks = available(asks)
    return _walk(asks, contracts, lambda p: p <= limit)


def fill_sell(ticker: str, side: Side, contracts: Decimal, quote: Quote, terms: FeeTerms, ts: int) -> Fill | None:
    """Sell ``contracts`` of ``side`` into the bids (flatten). Proceeds are ``value_cc``."""
    taken = _walk(quote.bid_levels(side), contracts, lambda p: True)
    if not taken:
        return None
    return _fill(ticker, side, "sell", contracts, taken, terms, ts)


def liquidation_cc(side: Side, contracts: Decimal, quote: Quote | None, terms: FeeTerms, ts: int = 0) -> int:
    """What ``contracts`` of ``side`` would fetch sold into ``quote``'s bids now, after the sale's
    fees; zero when there are no bids. The walk behind the one marking rule, ``ledger.mark_cc``
    (risk_limits.md), which every mark calls. A last trade price never counts.
    Without depth, the top-of-book bid is taken as deep enough (a source that gives no depth
    gives nothing better to go on)."""
    if quote is None or contracts <= 0:
        return 0
    units = unit_fee(terms, ts)
    want = count_to_hundredths(contracts)
    if units is not None and want < _MAX_H_EXACT and len(quote._depth[0]) + len(quote._depth[2]) <= _MAX_LEVELS_EXACT:
        return _liquidation_units(side, want, quote, units)
    levels = quote.bid_levels(side)
    if not levels:
        bid = quote.bid(side)
        if bid is None:
            return 0
        levels = [(bid, contracts)]
    taken = _walk(levels, contracts, lambda p: True)
    if not taken:
        return 0
    value, fee = _priced(taken, False, terms, ts)
    return max(0, value - fee)


# Below these (10^9 contracts, a thousand levels), the Decimal path's fee sums stay within its
# 28 digits, so the integer path below gives its very centicents (a property test holds them).
_MAX_H_EXACT = 10**11
_MAX_LEVELS_EXACT = 1_000


def _liquidation_units(side: Side, want_hundredths: int, quote: Quote, fee: UnitFee) -> int:
    """``liquidation_cc`` in centicents and hundredths: marks run for every open position
    every tick."""
    yc, yq, nc, nq = quote._depth
    cs, qs = (yc, yq) if side is Side.YES else (nc, nq)
    if not cs:  # no depth: the top-of-book bid taken as deep enough
        bid_cc, ask_cc, _last = quote.prices_cc
        top = bid_cc if side is Side.YES else (None if ask_cc is None else 10_000 - ask_cc)
        if top is None:
            return 0
        cs, qs = (top,), (want_hundredths,)
    taken: list[tuple[int, int]] = []
    left = want_hundredths
    for c, q in zip(cs, qs):
        if left <= 0:
            break
        n = min(q, left)
        taken.append((c, n))
        left -= n
    if not taken:
        return 0
    value = sum(c * n // 100 for c, n in taken)  # each level rounded down (what is received)
    return max(0, value - order_fee_cc_units(taken, fee))
