from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kakashi_tui.core.broker import fill_buy, fill_sell
from kakashi_tui.core.ledger import Account, Kind, LedgerEntry, buy_entries, equity_cents, mark_cents, sell_entries, settle_entries
from kakashi_tui.core.models import Side, TradeDecision
from tests.conftest import book

M = D("0.07")


def decision(side=Side.YES, n=10, limit="0.46", best="0.45"):
    return TradeDecision(ticker="T", ts=1, side=side, contracts=n, limit_price=D(limit), best_ask=D(best),
                         p_hat=D("0.6"), ev_per_contract=D("0.1"), worst_case_cents=0, accepted=True)


def test_yes_buy_walks_no_bids_mirrored():
    s = book(yes=((0.40, 50),), no=((0.55, 4), (0.54, 3), (0.50, 100)))  # YES asks 0.45x4, 0.46x3, 0.50x100
    f = fill_buy(decision(n=10, limit="0.46"), s, M, ts=9)
    assert f.levels == ((D("0.45"), 4), (D("0.46"), 3))
    assert f.contracts == 7 and f.requested == 10  # partial: depth short at the limit
    assert f.cost_cents == 4 * 45 + 3 * 46
    assert f.fee_cents == 13  # 0.07*(4*.45*.55 + 3*.46*.54) = 0.121464 -> ceil 13c


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
    f = fill_sell("T", Side.YES, 5, s, M, ts=2)
    assert f.levels == ((D("0.40"), 3), (D("0.38"), 2)) and f.cost_cents == 196


prices = st.integers(2, 98)


@st.composite
def books(draw):
    yes_best = draw(st.integers(1, 90))
    spread = draw(st.integers(1, 5))
    no_best = 100 - min(yes_best + spread, 99)
    ys = [(yes_best - i, draw(st.integers(1, 50))) for i in range(draw(st.integers(1, 4))) if yes_best - i >= 1]
    ns = [(no_best - i, draw(st.integers(1, 50))) for i in range(draw(st.integers(1, 4))) if no_best - i >= 1]
    return book(yes=[(c / 100, q) for c, q in ys], no=[(c / 100, q) for c, q in ns])


@given(s=books(), side=st.sampled_from(list(Side)), n=st.integers(1, 300), extra=st.integers(0, 5))
def test_fills_never_better_than_book_nor_past_limit(s, side, n, extra):
    best = s.ask(side)
    limit = min(best + D(extra) / 100, D("0.99"))
    f = fill_buy(decision(side=side, n=n, limit=str(limit), best=str(best)), s, M, ts=1)
    asks = s.ask_levels(side)
    if f is None:
        return
    assert f.contracts <= n
    for (p, q), (ap, aq) in zip(f.levels, asks):
        assert p == ap and q <= aq  # level by level, the book's own price, never better
        assert p <= limit
    assert f.levels[0][0] == best


def test_account_folds_buys_fees_and_settlement():
    s = book(yes=((0.40, 50),), no=((0.55, 50),))
    f = fill_buy(decision(n=10, limit="0.45"), s, M, ts=5)
    acct = Account.from_entries([LedgerEntry(ts=0, kind=Kind.DEPOSIT, amount_cents=100_000, key="deposit:initial")])
    for e in buy_entries(f, 1):
        acct.apply(e)
    fee = f.fee_cents
    assert acct.cash_cents == 100_000 - 450 - fee
    [pos] = acct.open_positions()
    assert pos.contracts == 10 and pos.cost_cents == 450 + fee and pos.avg_price == D("0.45")
    assert mark_cents(pos, s) == 400  # marked at the YES bid
    assert equity_cents(acct, {"T": s}) == acct.cash_cents + 400
    for e in settle_entries(acct.open_positions(), Side.YES, ts=6):
        acct.apply(e)
    assert acct.open_positions() == [] and acct.cash_cents == 100_000 - 450 - fee + 1000
    assert acct.realized_cents == 1000 - 450 - fee


def test_losing_settlement_pays_zero():
    acct = Account()
    acct.apply(LedgerEntry(ts=0, kind=Kind.DEPOSIT, amount_cents=1000, key="d"))
    acct.apply(LedgerEntry(ts=1, kind=Kind.BUY, amount_cents=-300, key="b", ticker="T", side=Side.NO, contracts=5))
    [e] = settle_entries(acct.open_positions(), Side.YES, ts=2)
    assert e.amount_cents == 0 and e.key == "settle:T:no"
    acct.apply(e)
    assert acct.cash_cents == 700 and acct.realized_cents == -300


def test_partial_sell_releases_proportional_cost():
    acct = Account()
    acct.apply(LedgerEntry(ts=0, kind=Kind.DEPOSIT, amount_cents=1000, key="d"))
    acct.apply(LedgerEntry(ts=1, kind=Kind.BUY, amount_cents=-400, key="b", ticker="T", side=Side.YES, contracts=10))
    s = book(yes=((0.50, 4),), no=((0.45, 5),))
    f = fill_sell("T", Side.YES, 10, s, M, ts=2)
    for e in sell_entries(f, 7):
        acct.apply(e)
    [pos] = acct.open_positions()
    assert pos.contracts == 6 and pos.cost_cents == 240
    assert acct.realized_cents == 200 - 160 - f.fee_cents


def test_closing_more_than_held_is_refused():
    acct = Account()
    with pytest.raises(ValueError, match="closes more"):
        acct.apply(LedgerEntry(ts=1, kind=Kind.SETTLE, amount_cents=100, key="s", ticker="T", side=Side.YES,
                               contracts=-1))
