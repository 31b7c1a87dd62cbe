"""Expected value per contract, net of fees.

Buying YES at ask a:  EV = p_hat - a - fee
Buying NO  at ask b:  EV = (1 - p_hat) - b - fee
where ``fee`` is the per-contract taker fee (the fee of ``contracts`` at that price,
divided by ``contracts``; one contract is the worst case because the fee is ceiled to the
centicent).
Positive EV is necessary but not sufficient for profit: it is an estimate, and the
variance of a binary payoff is large.
"""

from __future__ import annotations

from decimal import Decimal

from kakashi_tui.core.fees import FeeTerms, taker_fee_cc
from kakashi_tui.core.models import Side
from kakashi_tui.core.money import ONE


def win_probability(p_hat: Decimal, side: Side) -> Decimal:
    return p_hat if side is Side.YES else ONE - p_hat


def net_ev(
    p_hat: Decimal,
    side: Side,
    ask: Decimal,
    contracts: Decimal = Decimal(1),
    terms: FeeTerms = FeeTerms(),
    now_ms: int = 0,
) -> Decimal:
    """Net EV per contract in dollars (= probability units) of buying ``side`` at ``ask``."""
    if contracts <= 0:
        raise ValueError("contracts must be > 0")
    fee = Decimal(taker_fee_cc(contracts, ask, terms, now_ms)) / 10_000 / contracts
    return win_probability(p_hat, side) - ask - fee
