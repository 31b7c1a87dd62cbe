"""Expected value per contract, net of fees: the one home of the EV rule.

Buying YES at ask a:  EV = p_hat - a - fee
Buying NO  at ask b:  EV = (1 - p_hat) - b - fee
where ``fee`` is one contract's taker fee at that price, rounded up to the centicent (the
worst case per contract: a larger order's fee per contract is never more). A side *clears*
when its EV is at least the edge threshold.

Everything here is exact, for any p_hat and threshold: EVs are integers in units of
10^-places dollars, ``places`` being the most decimal places of p_hat, the threshold and the
price grid ($0.0001), so every term is a whole number of units (Python's integers have no
bound). ``budget`` turns the rule around: a side clears at ask a exactly when a's *cost*
(a + its one-contract fee, in centicents) is within the belief's budget, so walking a book and
bounding the asks that can clear (the catalog replay's pre-filter) use the one comparison.

Positive EV is necessary but not sufficient for profit: it is an estimate, and the
variance of a binary payoff is large.
"""

from __future__ import annotations

from bisect import bisect_right
from decimal import Decimal
from typing import NamedTuple

from kakashi_tui.core.fees import UnitFee, fee_cc_units
from kakashi_tui.core.memo import Memo
from kakashi_tui.core.models import Side

#: one dollar in centicents: the price grid's prices are 0..ONE_CC
ONE_CC = 10_000


class EvUnits(NamedTuple):
    """A belief and a threshold as integers: EVs are counted in units of 10^-places dollars."""

    places: int
    k: int  # one centicent in units (10^(places - 4))
    p: int  # p_hat in units: YES's win
    thr: int  # the threshold in units
    shown: int  # the places of the EV as a Decimal (p_hat's, at least the grid's 4)

    def win(self, side: Side) -> int:
        """The probability of ``side`` winning, in units."""
        return self.p if side is Side.YES else 10**self.places - self.p

    def budget(self, side: Side) -> int:
        """The highest cost (ask + one contract's fee, centicents) at which ``side`` clears."""
        return (self.win(side) - self.thr) // self.k


def _places(x: Decimal) -> int:
    e = x.as_tuple().exponent
    assert isinstance(e, int), f"{x} is not a finite number"
    return max(0, -e)


def _in_units(x: Decimal, places: int) -> int:
    """``x`` x 10^places exactly (``places`` at least x's decimal places)."""
    num, den = x.as_integer_ratio()
    scale: int = 10**places
    return num * scale // den  # (den divides 10^places: exact)


#: (p_hat, threshold) -> their EvUnits: the per-belief part of every decision (beliefs change rarely)
_UNITS: Memo[tuple[Decimal, Decimal], EvUnits] = Memo("ev.units")


def ev_units(p_hat: Decimal, threshold: Decimal) -> EvUnits:
    """The units in which ``p_hat``'s EVs compare exactly with ``threshold`` (both finite)."""
    key = (p_hat, threshold)
    try:
        return _UNITS[key]
    except KeyError:
        pass
    shown = max(4, _places(p_hat))
    places = max(shown, _places(threshold))
    u = EvUnits(places, 10 ** (places - 4), _in_units(p_hat, places), _in_units(threshold, places), shown)
    return _UNITS.put(key, u)


def net_ev_units(win: int, ask_cc: int, fee_cc: int, k: int) -> int:
    """Net EV per contract, in units, of buying at ``ask_cc`` a side that wins with ``win``."""
    return win - (ask_cc + fee_cc) * k


def ev_decimal(ev: int, u: EvUnits) -> Decimal:
    """An EV in units as a Decimal, written as p_hat - ask - fee writes it (p_hat's places,
    at least four)."""
    return Decimal(f"{ev // 10 ** (u.places - u.shown)}E-{u.shown}")  # (exact: no context rounding)


class PriceCosts(NamedTuple):
    """Fee terms over the price grid: one contract's fee and cost (price + fee) at each price
    in centicents, and whether the cost never falls as the price rises (true for any
    coefficient up to 1, that is every real fee schedule)."""

    fee: list[int]
    cost: list[int]
    rising: bool


_COSTS: dict[UnitFee, PriceCosts] = {}


def price_costs(fee: UnitFee) -> PriceCosts:
    """The grid's one-contract fees and costs under ``fee`` (kept: a handful of terms a run)."""
    try:
        return _COSTS[fee]
    except KeyError:
        pass
    if len(_COSTS) > 64:
        _COSTS.clear()
    fee_1 = [fee_cc_units(100, c, fee) for c in range(ONE_CC + 1)]
    cost = [c + f for c, f in enumerate(fee_1)]
    out = _COSTS[fee] = PriceCosts(fee_1, cost, all(a <= b for a, b in zip(cost, cost[1:])))
    return out


def highest_clearing_ask_cc(budget: int, costs: PriceCosts) -> int:
    """The highest ask on the grid whose cost is within ``budget`` (-1 when none): at any ask
    above it the side does not clear."""
    cost = costs.cost
    if costs.rising:
        return bisect_right(cost, budget) - 1
    for a in range(ONE_CC, -1, -1):
        if cost[a] <= budget:
            return a
    return -1
