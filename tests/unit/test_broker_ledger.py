from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kakashi_tui.core import broker
from kakashi_tui.core.broker import fill_buy, fill_sell, liquidation_cc
from kakashi_tui.core.fees import FeeTerms
from kakashi_tui.core.ledger import (
    Account,
    Kind,
    LedgerEntry,
    buy_entries,
    equity_cc,
    mark_cc,
    sell_entries,
    settle_entries,
    settlement_fixes,
)
from kakashi_tui.core.models import Market, Side, TradeDecision
from tests.conftest import book
from tests.unit.test_strategy_sizing import _quotes, _terms

M = FeeTerms()  # 0.07, quadratic


def decision(side=Side.YES, n=10, limit="0.46", best="0.45"):
    return TradeDecision(
        ticker="T",
        ts=1,
        side=side,
        contracts=D(n),
        limit_price=D(limit),
        best_ask=D(best),
        p_hat=D("0.6"),
        ev_per_contract=D("0.1"),
        worst_case_cc=0,
        accepted=True,
    )


def market(status="determined", result="yes", **kw):
    return Market(ticker="T", status=status, result=result, **kw)


def test_yes_buy_walks_no_bids_mirrored():
    s = book(yes=((0.40, 50),), no=((0.55, 4), (0.54, 3), (0.50, 100)))  # YES asks 0.45x4, 0.46x3, 0.50x100
    f = fill_buy(decision(n=10, limit="0.46"), s, M, ts=9)
    assert f.levels == ((D("0.45"), 4), (D("0.46"), 3))
    assert f.contracts == 7 and f.requested == 10 and f.action == "buy"  # partial: depth short at the limit
    assert f.value_cc == 4 * 4500 + 3 * 4600
    assert f.fee_cc == 1215  # 0.07*(4*.45*.55 + 3*.46*.54) = $0.121464 -> up to the centicent


def test_fractional_sub_penny_levels_are_walked_exactly():
    # tapered_deci_cent tails: YES asks 0.0030 x 2.50 and 0.0040 x 1.25
    s = book(yes=((0.0020, 1),), no=(("0.9970", "2.50"), ("0.9960", "1.25")))
    f = fill_buy(decision(n="3.00", limit="0.0040", best="0.0030"), s, M, ts=9)
    assert f.levels == ((D("0.0030"), D("2.50")), (D("0.0040"), D("0.50")))
    assert f.contracts == D("3.00")
    assert f.value_cc == 75 + 20  # $0.0075 + $0.0020
    # fee accumulator: fill 1 owes ceil($0.000523425) = 6cc; the order ceil($0.000662865) = 7cc in all
    assert f.fee_cc == 7


def test_a_fills_sub_centicent_value_is_rounded_against_the_trader():
    s = book(yes=(("0.4231", "2.57"),), no=(("0.5761", "2.57"),))  # YES bid 0.4231, ask 0.4239
    buy = fill_buy(decision(n="2.57", limit="0.4239", best="0.4239"), s, M, ts=1)  # $1.089423
    sell = fill_sell("T", Side.YES, D("2.57"), s, M, ts=1)  # $1.087367
    assert buy.value_cc == 10895 and sell.value_cc == 10873 and sell.action == "sell"


def test_fee_waiver_and_series_multiplier():
    s = book(yes=((0.40, 50),), no=((0.50, 100),))  # YES ask 0.50
    waived = FeeTerms(waiver_until_ts=10)
    assert fill_buy(decision(n=100, limit="0.5", best="0.5"), s, waived, ts=9).fee_cc == 0
    assert fill_buy(decision(n=100, limit="0.5", best="0.5"), s, waived, ts=10).fee_cc == 17500  # $1.75
    half = FeeTerms(coefficient=D("0.035"))
    assert fill_buy(decision(n=100, limit="0.5", best="0.5"), s, half, ts=1).fee_cc == 8750


def test_no_buy_walks_yes_bids_mirrored_and_full_fill():
    s = book(yes=((0.40, 5), (0.39, 5)), no=((0.55, 5),))  # NO asks 0.60x5, 0.61x5
    f = fill_buy(decision(side=Side.NO, n=8, limit="0.61", best="0.60"), s, M, ts=9)
    assert f.levels == ((D("0.60"), 5), (D("0.61"), 3)) and f.contracts == 8


def test_nothing_at_or_under_limit_is_no_fill():
    s = book(yes=((0.40, 5),), no=((0.55, 5),))
    assert fill_buy(decision(limit="0.44", best="0.44"), s, M, ts=1) is None
    assert fill_buy(decision(n=0), s, M, ts=1) is None


def test_sell_walks_own_bids():
    s = book(yes=((0.40, 3), (0.38, 10)), no=((0.55, 5),))
    f = fill_sell("T", Side.YES, D(5), s, M, ts=2)
    assert f.levels == ((D("0.40"), 3), (D("0.38"), 2)) and f.value_cc == 19600


@st.composite
def books(draw):
    yes_best = draw(st.integers(1, 90))
    spread = draw(st.integers(1, 5))
    no_best = 100 - min(yes_best + spread, 99)
    q = st.integers(1, 5000).map(lambda h: D(h) / 100)
    ys = [(yes_best - i, draw(q)) for i in range(draw(st.integers(1, 4))) if yes_best - i >= 1]
    ns = [(no_best - i, draw(q)) for i in range(draw(st.integers(1, 4))) if no_best - i >= 1]
    return book(yes=[(D(c) / 100, q) for c, q in ys], no=[(D(c) / 100, q) for c, q in ns])


@given(s=books(), side=st.sampled_from(list(Side)), h=st.integers(1, 30000), extra=st.integers(0, 5))
def test_fills_never_better_than_book_nor_past_limit(s, side, h, extra):
    best = s.ask(side)
    n = D(h) / 100
    limit = min(best + D(extra) / 100, D("0.99"))
    f = fill_buy(decision(side=side, n=n, limit=str(limit), best=str(best)), s, M, ts=1)
    asks = s.ask_levels(side)
    if f is None:
        return
    assert f.contracts <= n
    assert f.contracts == sum(q for _, q in f.levels)
    for (p, q), (ap, aq) in zip(f.levels, asks):
        assert p == ap and q <= aq  # level by level, the book's own price, never better
        assert p <= limit
    assert f.levels[0][0] == best


def _account(*entries):
    acct = Account.from_entries([LedgerEntry(ts=0, kind=Kind.DEPOSIT, amount_cc=10_000_000, key="deposit:initial")])
    for e in entries:
        acct.apply(e)
    return acct


def test_account_folds_buys_fees_and_settlement():
    s = book(yes=((0.40, 50),), no=((0.55, 50),))
    f = fill_buy(decision(n=10, limit="0.45"), s, M, ts=5)
    acct = _account(*buy_entries(f, 1))
    fee = f.fee_cc
    assert acct.cash_cc == 10_000_000 - 45_000 - fee
    [pos] = acct.open_positions()
    assert pos.contracts == 10 and pos.cost_cc == 45_000 + fee and pos.avg_price == D("0.45")
    sale_fee = 1680  # 0.07 x 10 x 0.40 x 0.60 = $0.168
    # what selling into the YES bid would fetch, after its fee
    assert mark_cc(pos.side, pos.contracts, s) == 40_000 - sale_fee
    assert equity_cc(acct, {"T": s}) == acct.cash_cc + 40_000 - sale_fee
    for e in settle_entries(acct.open_positions(), market(result="yes"), ts=6):
        acct.apply(e)
    assert acct.open_positions() == [] and acct.cash_cc == 10_000_000 - 45_000 - fee + 100_000
    assert acct.realized_cc == 100_000 - 45_000 - fee
    assert acct.deposits_cc + acct.realized_cc == acct.cash_cc  # flat: start + realised = cash


def test_losing_settlement_pays_zero():
    acct = _account(
        LedgerEntry(ts=1, kind=Kind.BUY, amount_cc=-30_000, key="b", ticker="T", side=Side.NO, contracts=D(5))
    )
    [e] = settle_entries(acct.open_positions(), market(result="yes"), ts=2)
    assert e.amount_cc == 0 and e.key == "settle:T:no"
    acct.apply(e)
    assert acct.cash_cc == 10_000_000 - 30_000 and acct.realized_cc == -30_000


def test_scalar_settlement_pays_the_value_to_yes_and_the_rest_to_no():
    acct = _account(
        LedgerEntry(ts=1, kind=Kind.BUY, amount_cc=-10_000, key="b1", ticker="T", side=Side.YES, contracts=D(4)),
        LedgerEntry(ts=1, kind=Kind.BUY, amount_cc=-10_000, key="b2", ticker="T", side=Side.NO, contracts=D("2.50")),
    )
    m = market(result="scalar", settlement_value="0.3", market_type="scalar")
    entries = {e.side: e.amount_cc for e in settle_entries(acct.open_positions(), m, ts=2)}
    assert entries == {Side.YES: 12_000, Side.NO: 17_500}  # 4 x $0.30, 2.50 x $0.70


def test_a_changed_result_is_corrected_by_new_entries_only():
    """Paid at `determined`; an `amended` result that differs is corrected by a new entry (never an
    edit); seeing the same result again writes nothing; a second change gets its own key."""
    acct = _account(
        LedgerEntry(ts=1, kind=Kind.BUY, amount_cc=-45_000, key="b", ticker="T", side=Side.YES, contracts=D(10))
    )
    ledger = list(settle_entries(acct.open_positions(), market("determined", "yes"), ts=2))
    for e in ledger:
        acct.apply(e)
    assert settlement_fixes(acct, market("determined", "yes"), ts=3) == []
    fix = settlement_fixes(acct, market("amended", "no"), ts=4)
    assert [(e.kind, e.amount_cc, e.key) for e in fix] == [(Kind.SETTLE_FIX, -100_000, "settle:T:yes:fix:1")]
    for e in fix:
        acct.apply(e)
    ledger += fix
    assert settlement_fixes(acct, market("finalized", "no"), ts=5) == []
    back = settlement_fixes(acct, market("amended", "yes"), ts=6)
    assert [(e.amount_cc, e.key) for e in back] == [(100_000, "settle:T:yes:fix:2")]
    for e in back:
        acct.apply(e)
    ledger += back
    assert len({e.key for e in ledger}) == len(ledger)  # every entry its own key: append-only
    assert acct.cash_cc == 10_000_000 - 45_000 + 100_000 and acct.realized_cc == 55_000
    assert sum(c.pnl_cc for c in acct.closed) == acct.realized_cc


def test_partial_sell_releases_proportional_cost_and_its_fee_counts_in_that_sale():
    acct = _account(
        LedgerEntry(ts=1, kind=Kind.BUY, amount_cc=-40_000, key="b", ticker="T", side=Side.YES, contracts=D(10))
    )
    s = book(yes=((0.50, 4),), no=((0.45, 5),))
    f = fill_sell("T", Side.YES, D(10), s, M, ts=2)
    for e in sell_entries(f, 7):
        acct.apply(e)
    [pos] = acct.open_positions()
    assert pos.contracts == 6 and pos.cost_cc == 24_000
    assert acct.realized_cc == 20_000 - 16_000 - f.fee_cc
    [sale] = acct.closed
    assert sale.fee_cc == f.fee_cc > 0 and sale.pnl_cc == acct.realized_cc  # the sale fee is in its PnL


def test_flatten_then_realised_equals_cash_change():
    s = book(yes=((0.44, 50),), no=((0.55, 50),))
    buy = fill_buy(decision(n="7.25", limit="0.45"), s, M, ts=5)
    sell = fill_sell("T", Side.YES, buy.contracts, s, M, ts=6)
    acct = _account(*buy_entries(buy, 1), *sell_entries(sell, 2))
    assert acct.open_positions() == []
    assert acct.deposits_cc + acct.realized_cc == acct.cash_cc
    assert acct.fees_cc == buy.fee_cc + sell.fee_cc
    assert sum(c.pnl_cc for c in acct.closed) == acct.realized_cc


def test_marking_is_liquidation_value_bids_vanish_or_only_a_last_trade():
    acct = _account(
        LedgerEntry(ts=1, kind=Kind.BUY, amount_cc=-45_000, key="b", ticker="T", side=Side.YES, contracts=D(10))
    )
    [pos] = acct.open_positions()
    no_bids = book(yes=(), no=((0.55, 10),))
    assert mark_cc(pos.side, pos.contracts, no_bids) == 0 and equity_cc(acct, {"T": no_bids}) == acct.cash_cc
    last_only = book(yes=(), no=(), last=D("0.99"))
    assert mark_cc(pos.side, pos.contracts, last_only) == 0  # a last trade never counts
    assert mark_cc(pos.side, pos.contracts, None) == 0  # no quote at all: nothing it can be sold for that we know of
    thin = book(yes=((0.40, 4), (0.30, 100)), no=((0.55, 10),))  # bids are walked: 4 at 0.40, 6 at 0.30
    assert liquidation_cc(Side.YES, D(10), thin, FeeTerms(coefficient=D(0))) == 16_000 + 18_000


def test_closing_more_than_held_is_refused():
    acct = Account()
    with pytest.raises(ValueError, match="closes more"):
        acct.apply(
            LedgerEntry(ts=1, kind=Kind.SETTLE, amount_cc=100, key="s", ticker="T", side=Side.YES, contracts=D(-1))
        )


def test_a_six_decimal_settlement_value_pays_floored_to_the_centicent():
    acct = _account(
        LedgerEntry(ts=1, kind=Kind.BUY, amount_cc=-10_000, key="b", ticker="T", side=Side.YES, contracts=D("3.33"))
    )
    m = market(result="scalar", settlement_value="0.123457", market_type="scalar")
    [e] = settle_entries(acct.open_positions(), m, ts=2)
    assert e.amount_cc == 4111  # 3.33 x $0.123457 = $0.41111181 -> $0.4111


def test_equity_with_a_memo_marks_as_without_one_while_quotes_and_holdings_change():
    # the engine keeps a memo across ticks: a position is re-marked only when its inputs change
    s1 = book(yes=((0.40, 50),), no=((0.55, 50),))
    s2 = book(yes=((0.38, 50), (0.37, 50)), no=((0.58, 50),))
    acct = _account(*buy_entries(fill_buy(decision(n=10, limit="0.45"), s1, M, ts=5), 1))
    memo: dict = {}
    waiver = FeeTerms(waiver_until_ts=100)
    s1_later = book(yes=((0.40, 50),), no=((0.55, 50),), ts=9_000)  # the same book, another quote
    assert s1_later.same_book(s1) and not s2.same_book(s1) and not s1.same_book(None)
    for marks, terms_of, now in [
        ({"T": s1}, None, 0),
        ({"T": s1_later}, None, 0),
        ({"T": s2}, None, 0),
        ({"T": s2}, lambda _t: waiver, 50),
        ({"T": s2}, lambda _t: waiver, 150),
        ({"T": None}, None, 0),
        ({"T": s1}, None, 0),
    ]:
        assert equity_cc(acct, marks, terms_of, now, memo) == equity_cc(acct, marks, terms_of, now)
    marks = {"T": s1}
    before = equity_cc(acct, marks, None, 0, memo)
    acct = _account(*buy_entries(fill_buy(decision(n=20, limit="0.45"), s1, M, ts=5), 1))  # more contracts
    assert equity_cc(acct, marks, None, 0, memo) == equity_cc(acct, marks) != before


@given(st.data())
def test_marks_in_integer_units_equal_the_decimal_walk(data):
    # liquidation_cc takes an integer path (every open position is marked every tick); the
    # Decimal walk through the fee accumulator is the reference
    q = data.draw(_quotes())
    terms = data.draw(_terms)
    side = data.draw(st.sampled_from(list(Side)))
    contracts = D(data.draw(st.integers(min_value=1, max_value=10**9))).scaleb(-2)
    ts = data.draw(st.sampled_from([0, 5_000, 20_000]))
    got = liquidation_cc(side, contracts, q, terms, ts)
    saved = broker._MAX_H_EXACT
    broker._MAX_H_EXACT = 0  # every count past the bound: the Decimal walk
    try:
        want = liquidation_cc(side, contracts, q, terms, ts)
    finally:
        broker._MAX_H_EXACT = saved
    assert got == want
