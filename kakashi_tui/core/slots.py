"""Who gets the slots: the one ranking rule (issue #24, item 7).

When the caps (max open positions, cash, the daily and drawdown headroom) leave fewer new
positions than a tick has candidates, the engine gates and fills its candidates best first,
so the last slot goes to the best trade, never to whichever came first in the feed.

**Best** is the most expected profit per dollar the trade can lose::

    value = ev_per_contract x contracts / worst case
          = ev_per_contract x contracts x 10_000 / worst_case_cc

(the net EV per contract in dollars, the size in contracts, the worst-case loss in centicents;
the same number as the EV per contract over the worst case per contract). It is an exact
rational (``fractions.Fraction`` of the decision's Decimals and integers): no float, no
rounding, so two candidates compare the same on every machine. Ties go to the ticker, in
ascending order; a sort by this key is stable, so what ties then (two rows of one market in
one tick) keeps the order the feed gave that market's rows.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Protocol, TypeVar

_CC_PER_DOLLAR = 10_000
_NONE = Fraction(0)


class Candidate(Protocol):
    """What the ranking reads of a decision (a ``TradeDecision``)."""

    @property
    def ticker(self) -> str: ...

    @property
    def contracts(self) -> Decimal: ...

    @property
    def ev_per_contract(self) -> Decimal: ...

    @property
    def worst_case_cc(self) -> int: ...


def value(d: Candidate) -> Fraction:
    """Expected profit per dollar of worst-case loss, exactly; 0 for a decision that risks
    nothing (no size: it never reaches the ranking, the gate refuses it)."""
    if d.worst_case_cc <= 0:
        return _NONE
    # (Fraction of a Decimal is exact)
    return Fraction(d.ev_per_contract) * Fraction(d.contracts) * _CC_PER_DOLLAR / d.worst_case_cc


def rank_key(d: Candidate) -> tuple[Fraction, str]:
    """Sort key, best first: the higher value, then the ticker (ascending)."""
    return -value(d), d.ticker


C = TypeVar("C", bound=Candidate)


def by_value(candidates: list[C]) -> list[C]:
    """The candidates best first (``rank_key``; stable)."""
    return sorted(candidates, key=rank_key)
