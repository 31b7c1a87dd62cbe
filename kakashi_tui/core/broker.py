"""Paper broker: simulated fills against the order book. It never talks to an exchange.

Buying a side walks that side's asks (the other side's bids mirrored: a YES ask at p is
a NO bid at 1 - p), best first, up to the decision's limit price. Fills are never at a
price better than the book; a short book gives a partial fill; fees are charged on the
fill. Selling (flatten) walks the side's own bids down to an optional floor.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from kakashi_tui.core.fees import fill_fee_cents
from kakashi_tui.core.models import Fill, Side, TickQuote, TradeDecision
from kakashi_tui.core.money import price_to_cents


def _walk(levels: list[tuple[Decimal, int]], want: int, ok: Callable[[Decimal], bool]) -> list[tuple[Decimal, int]]:
    taken: list[tuple[Decimal, int]] = []
    left = want
    for p, q in levels:
        if left <= 0 or not ok(p):
            break
        n = min(q, left)
        taken.append((p, n))
        left -= n
    return taken


def fill_buy(decision: TradeDecision, snapshot: TickQuote, multiplier: Decimal, ts: int) -> Fill | None:
    """Fill a buy against ``snapshot``; None when nothing is available at or under the limit."""
    if decision.contracts <= 0:
        return None
    taken = _walk(snapshot.ask_levels(decision.side), decision.contracts, lambda p: p <= decision.limit_price)
    if not taken:
        return None
    return Fill(
        ticker=decision.ticker,
        ts=ts,
        side=decision.side,
        requested=decision.contracts,
        contracts=sum(q for _, q in taken),
        cost_cents=sum(price_to_cents(p) * q for p, q in taken),
        fee_cents=fill_fee_cents(taken, multiplier),
        levels=tuple(taken),
    )


def bid_levels(snapshot: TickQuote, side: Side) -> list[tuple[Decimal, int]]:
    levels = snapshot.yes_bids if side is Side.YES else snapshot.no_bids
    return [(lv.price, lv.qty) for lv in levels]


def fill_sell(
    ticker: str, side: Side, contracts: int, snapshot: TickQuote, multiplier: Decimal, ts: int
) -> Fill | None:
    """Sell ``contracts`` of ``side`` into the bids (flatten). Proceeds are ``cost_cents``."""
    taken = _walk(bid_levels(snapshot, side), contracts, lambda p: True)
    if not taken:
        return None
    return Fill(
        ticker=ticker,
        ts=ts,
        side=side,
        requested=contracts,
        contracts=sum(q for _, q in taken),
        cost_cents=sum(price_to_cents(p) * q for p, q in taken),
        fee_cents=fill_fee_cents(taken, multiplier),
        levels=tuple(taken),
    )
