"""The event cap (#24 item 5): the worst case over an event's outcomes, every position in it
counted, and the gate's refusal past ``[risk] max_event_loss_pct`` (risk_limits.md 8a)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakashi_tui.core import risk
from kakashi_tui.core.broker import fill_buy
from kakashi_tui.core.fees import FeeTerms, fee_cc_units, fee_ratio, taker_fee_cc
from kakashi_tui.core.ledger import Account, Kind, LedgerEntry, buy_entries
from kakashi_tui.core.models import MarketStatus, Side, TradeDecision
from kakashi_tui.core.risk import Leg, RiskContext, RiskLimits, check, event_worst_cc
from kakashi_tui.core.sizing import worst_case_cc, worst_fee_price_cc
from tests.conftest import book

NOW = 1_767_571_200_000
EQUITY = 10_000_000  # $1,000: the event cap is 2% of it, $20.00 = 200,000 cc
CTX = RiskContext(
    now_ms=NOW,
    kill_switch=False,
    daily_stopped=False,
    open_positions=0,
    cash_cc=EQUITY,
    equity_cc=EQUITY,
    day_start_equity_cc=EQUITY,
    market_status=MarketStatus.ACTIVE,
    market_close_ts=NOW + 3_600_000,
    quote_ts=NOW - 1000,
    spread=D("0.02"),
    event="KXHIGH-26JAN05",
    event_exclusive=True,
)
FEE = fee_ratio(FeeTerms(), NOW)  # Kalshi's quadratic taker fee, 0.07 x C x P x (1 - P)


def decision(ticker: str, side: Side, contracts: int, limit_cc: int) -> TradeDecision:
    """A buy as the strategy sizes it: its worst case is the gate's (sizing.worst_case_cc)."""
    h = contracts * 100
    worst = worst_case_cc(h, limit_cc, worst_fee_price_cc(limit_cc, limit_cc), FEE)
    price = D(limit_cc) / 10_000
    return TradeDecision(ticker, NOW, side, D(contracts), price, price, D("0.5"), D("0.01"), worst)


# Three brackets of one mutually exclusive event held (a fourth, D, is not): bought through the
# broker into the ledger, so each cost is what the account books, fees included.
#   A YES 10 @ 0.30: $3.00 + fee 0.07 x 10 x 0.30 x 0.70 = $0.1470 -> 31,470 cc, pays $10 if A
#   B NO 20 @ 0.80: $16.00 + fee 0.07 x 20 x 0.80 x 0.20 = $0.2240 -> 162,240 cc, pays $20 unless B
#   C NO 5 @ 0.90: $4.50 + fee 0.07 x 5 x 0.90 x 0.10 = $0.0315 -> 45,315 cc, pays $5 unless C
BUYS = [
    ("A", Side.YES, 10, book("A", NOW, yes=((0.28, 50),), no=((0.70, 50),))),
    ("B", Side.NO, 20, book("B", NOW, yes=((0.20, 50),), no=((0.78, 50),))),
    ("C", Side.NO, 5, book("C", NOW, yes=((0.10, 50),), no=((0.88, 50),))),
]


def held_legs() -> tuple[Leg, ...]:
    acct = Account.from_entries([LedgerEntry(NOW, Kind.DEPOSIT, EQUITY, "deposit:initial")])
    for i, (t, side, n, q) in enumerate(BUYS):
        fill = fill_buy(decision(t, side, n, 9_900), q, FeeTerms(), NOW)
        assert fill is not None and fill.contracts == n
        for e in buy_entries(fill, i + 1):
            acct.apply(e)
    return tuple(Leg.held(p.ticker, p.side, p.contracts, p.cost_cc) for p in acct.open_positions())


def test_the_worst_case_of_an_exclusive_event_worked_out_by_hand():
    legs = held_legs()
    assert [(g.ticker, g.lose_cc, g.win_cc) for g in legs] == [
        ("A", 31_470, 31_470 - 100_000),
        ("B", 162_240, 162_240 - 200_000),
        ("C", 45_315, 45_315 - 50_000),
    ]
    assert taker_fee_cc(D(20), D("0.80"), FeeTerms()) == 2_240  # (the fee in B's cost, as the broker charged it)
    # The event resolves one way of these (Kalshi: at most one market YES):
    #   A YES: -68,530 - 37,760 - 4,685 = -110,975 (a gain)
    #   B YES: 31,470 + 162,240 - 4,685 = 189,025   <- the worst
    #   C YES: 31,470 - 37,760 + 45,315 = 39,025
    #   none of them (D, or nothing): 31,470 - 37,760 - 4,685 = -10,975
    assert event_worst_cc(legs, exclusive=True) == 189_025
    # Not known to be exclusive: any combination may happen, each position its own worst case.
    assert event_worst_cc(legs, exclusive=False) == 31_470 + 162_240 + 45_315 == 239_025
    assert event_worst_cc((), exclusive=True) == event_worst_cc((), exclusive=False) == 0


def test_a_trade_counts_at_the_gates_worst_case_and_never_as_a_gain():
    legs = held_legs()
    # NO on D at 0.85 x 10: $8.50 + fee $0.0893 + a centicent of rounding = 85,894 cc if D is YES;
    # where it wins ($10) it counts 0, not -$1.41. The worst stays B YES.
    no_d = decision("D", Side.NO, 10, 8_500)
    assert no_d.worst_case_cc == 85_000 + 893 + 1
    assert Leg.pending("D", Side.NO, D(10), no_d.worst_case_cc) == Leg("D", Side.NO, 85_894, 0)
    assert event_worst_cc((*legs, Leg.pending("D", Side.NO, D(10), 85_894)), True) == 189_025
    ctx = replace(CTX, event_legs=legs)
    assert check(no_d, ctx, RiskLimits()) == (True, "accepted")


def test_the_gate_refuses_the_trade_that_would_breach_the_event_cap():
    ctx = replace(CTX, event_legs=held_legs())
    # YES on D at 0.10 x 20: $2.00 + fee $0.1260 + 1 cc = 21,261 cc, lost whenever D is not YES:
    # B YES then loses 189,025 + 21,261 = 210,286 cc > $20.00 (2% of $1,000.00)
    yes_d = decision("D", Side.YES, 20, 1_000)
    assert yes_d.worst_case_cc == 21_261
    assert check(yes_d, ctx, RiskLimits()) == (
        False,
        "event cap: worst case $21.0286 > 2% of equity $1,000.00 ($20.00) in KXHIGH-26JAN05",
    )
    # within the per-trade cap ($10.00), so the event cap is what refuses it. The headroom is
    # 200,000 - 189,025 = 10,975 cc: 10 contracts (10,631 cc) fit, 11 (11,694 cc) do not
    assert check(decision("D", Side.YES, 10, 1_000), ctx, RiskLimits()) == (True, "accepted")
    assert not check(decision("D", Side.YES, 11, 1_000), ctx, RiskLimits())[0]
    # a tighter cap refuses sooner; an event not known to be exclusive counts every position whole
    assert not check(no_d := decision("D", Side.NO, 10, 8_500), ctx, RiskLimits(max_event_loss_pct=D("1.5")))[0]
    ok, why = check(no_d, replace(ctx, event_exclusive=False), RiskLimits())
    assert not ok and why.startswith(risk.EVENT_CAP) and "worst case $32.4919" in why  # 239,025 + 85,894


def test_the_event_cap_only_tightens():
    assert RiskLimits().max_event_loss_pct == D("2")
    with pytest.raises(ValueError, match="loosens the event cap past 2%"):
        RiskLimits(max_event_loss_pct=D("2.5"))
    with pytest.raises(ValueError):
        RiskLimits(max_event_loss_pct=D("0"))


def brute_force_worst(legs: list[Leg], markets: list[str], exclusive: bool) -> int:
    """Every way the event's markets can resolve, enumerated: at most one YES when exclusive,
    any combination otherwise."""
    outcomes: list[frozenset[str]]
    if exclusive:
        outcomes = [frozenset()] + [frozenset([m]) for m in markets]
    else:
        outcomes = [frozenset(c) for r in range(len(markets) + 1) for c in itertools.combinations(markets, r)]
    worst = None
    for yes in outcomes:
        loss = sum(g.win_cc if (g.ticker in yes) == (g.side is Side.YES) else g.lose_cc for g in legs)
        worst = loss if worst is None else max(worst, loss)
    return worst or 0


TRADE = st.tuples(
    st.integers(0, 4),  # which market of the event
    st.sampled_from([Side.YES, Side.NO]),
    st.integers(1, 2_500),  # hundredths of a contract
    st.integers(100, 9_900),  # limit, centicents
    st.integers(0, 100),  # the fill's price below the limit, centicents
)


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 5), st.booleans(), st.lists(TRADE, max_size=25), st.sampled_from(["1", "2"]))
def test_no_sequence_of_trades_through_the_gate_leaves_an_event_past_its_cap(k, exclusive, trades, pct):
    """Whatever is tried, in whatever order, an event's worst case (each position at what it
    cost, fees included) never passes the cap after a trade the gate accepted; and the worst case
    is the enumeration's."""
    markets = [f"EV-B{i}" for i in range(k)]
    limits = RiskLimits(max_event_loss_pct=D(pct))
    cap = risk.event_cap_cc(EQUITY, limits.max_event_loss_pct)
    held: list[Leg] = []
    for i, side, h, limit_cc, below in trades:
        t = markets[i % k]
        worst = worst_case_cc(h, limit_cc, worst_fee_price_cc(limit_cc, limit_cc), FEE)
        price = D(limit_cc) / 10_000
        d = TradeDecision(t, NOW, side, D(h) / 100, price, price, D("0.5"), D("0.01"), worst)
        ok, _why = check(d, replace(CTX, event_exclusive=exclusive, event_legs=tuple(held)), limits)
        if ok:  # filled at or under the limit: it costs no more than the gate counted
            fill_cc = max(1, limit_cc - below)
            cost = -((-h * fill_cc) // 100) + fee_cc_units(h, fill_cc, FEE)
            assert cost <= worst
            held.append(Leg.held(t, side, D(h) / 100, cost))
        now = event_worst_cc(held, exclusive)
        assert now <= cap
        assert now == brute_force_worst(held, markets, exclusive)
