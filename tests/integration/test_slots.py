"""Slots by value (issue #24, item 7): when the caps leave fewer new positions than a tick has
candidates, the best (EV per dollar of worst-case loss, core/slots.py) get them, whatever the
order of the feed's rows; every candidate is still recorded with its reason."""

import shutil
import sqlite3
import tempfile
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kakashi_tui.adapters.source import FetchBatch
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core import risk, slots
from kakashi_tui.core.models import Side, TradeDecision
from kakashi_tui.core.risk import RiskLimits
from kakashi_tui.trading.engine import Engine, EngineConfig
from tests.integration.test_engine import NOW, FakeSource, FixedEstimator, row


def decisions(db):
    c = sqlite3.connect(db)
    try:
        return c.execute(
            "SELECT tick, ticker, side, contracts_hundredths, worst_case_cc, accepted, reason"
            " FROM decisions ORDER BY id"
        ).fetchall()
    finally:
        c.close()


def one_tick(db, rows, p, limits):
    store = Store(db)
    try:
        e = Engine(
            store,
            FakeSource([FetchBatch(rows=rows)]),
            [FixedEstimator(p)],
            EngineConfig(limits=limits, insert_latency_ms=0),
        )
        rep = e.tick()
        return rep, e.account.tickers_held()
    finally:
        store.close()


def test_the_last_slot_goes_to_the_best_trade_not_the_first_in_the_feed(tmp_path):
    # the case: a +0.046 trade came first in the feed and took the last slot over a +0.134 one
    p = {"SMALL": 0.5134, "BIG": 0.6014}
    one_slot = RiskLimits(max_open_positions=1)
    got = []
    for name, order in (("small_first", ["SMALL", "BIG"]), ("big_first", ["BIG", "SMALL"])):
        rep, held = one_tick(tmp_path / f"{name}.db", [row(t) for t in order], p, one_slot)
        evs = {d.ticker: d.ev_per_contract for d in rep.decisions}
        assert evs == {"SMALL": D("0.046"), "BIG": D("0.134")}
        assert held == {"BIG"} and rep.fills == 1
        # every candidate recorded, the refused with today's wording; stored in one order
        assert [(d.ticker, d.accepted, d.reason) for d in rep.decisions] == [
            ("BIG", True, "accepted"),
            ("SMALL", False, f"{risk.MAX_POSITIONS} (1/1)"),
        ]
        got.append(decisions(tmp_path / f"{name}.db"))
    assert got[0] == got[1]


def test_value_is_per_dollar_at_risk_not_per_contract(tmp_path):
    # CHEAP: +0.10 a contract on $0.20 risked; DEAR: +0.13 a contract on $0.80 risked. Per contract
    # DEAR is better; per dollar it can lose, CHEAP is (0.10 / ~0.21 vs 0.13 / ~0.81)
    rows = [row("DEAR", bid="0.75", ask="0.80", depth=500), row("CHEAP", bid="0.15", ask="0.20", depth=500)]
    rep, held = one_tick(tmp_path / "k.db", rows, {"DEAR": 0.9437, "CHEAP": 0.3112}, RiskLimits(max_open_positions=1))
    by = {d.ticker: d for d in rep.decisions}
    assert by["DEAR"].ev_per_contract > by["CHEAP"].ev_per_contract
    assert slots.value(by["CHEAP"]) > slots.value(by["DEAR"])
    assert held == {"CHEAP"} and by["DEAR"].reason == f"{risk.MAX_POSITIONS} (1/1)"


def test_ties_go_to_the_ticker_and_the_value_is_exact():
    def dec(t, ev, c, w):
        return TradeDecision(t, NOW, Side.YES, D(c), D("0.45"), D("0.45"), D("0.6"), D(ev), w)

    # 0.1 x 3 x 10_000 / 3_000 == 1 exactly; a float ranking would see 0.30000000000000004 / 0.3
    tie = [dec("B", "0.1", "3", 3_000), dec("A", "0.3", "1", 3_000), dec("C", "0.2", "1.5", 3_000)]
    assert [slots.value(d) for d in tie] == [1, 1, 1]
    assert [d.ticker for d in slots.by_value(tie)] == ["A", "B", "C"]
    # one centicent more at risk loses the tie, however small the difference
    assert [d.ticker for d in slots.by_value([dec("A", "0.3", "1", 3_001), tie[0]])] == ["B", "A"]
    assert slots.value(dec("Z", "0.5", "0", 0)) == 0  # nothing at risk: last (the gate refuses it anyway)


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory) -> Path:
    """A database made once for the module's runs, which each start from a copy of it."""
    path = tmp_path_factory.mktemp("slots") / "empty.db"
    Store(path).close()
    return path


#: one market of a tick: (bid, spread, belief less the bid, in cents; depth, quote age ms)
market = st.tuples(
    st.integers(5, 90),
    st.sampled_from([1, 2, 3, 7]),
    st.integers(-40, 40),
    st.sampled_from([3, 40, 500]),
    st.sampled_from([0, 0, 0, 40_000]),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    markets=st.lists(market, min_size=2, max_size=7),
    order=st.randoms(use_true_random=False),
    max_open=st.integers(0, 3),
    bankroll=st.sampled_from([200_000, 10_000_000]),
)
def test_the_filled_markets_do_not_depend_on_the_order_of_the_rows(empty_db, markets, order, max_open, bankroll):
    tickers = [f"M{i}" for i in range(len(markets))]
    rows = [
        row(t, ts=NOW - age, bid=str(D(b) / 100), ask=str(D(b + s) / 100), depth=depth)
        for t, (b, s, _p, depth, age) in zip(tickers, markets)
    ]
    p = {t: D(min(99, max(1, b + edge))) / 100 for t, (b, _s, edge, _d, _a) in zip(tickers, markets)}
    shuffled = rows[:]
    order.shuffle(shuffled)
    cfg = EngineConfig(bankroll_cc=bankroll, limits=RiskLimits(max_open_positions=max_open), insert_latency_ms=0)
    runs = []
    with tempfile.TemporaryDirectory() as d:
        for name, feed in (("a", rows), ("b", shuffled)):
            shutil.copyfile(empty_db, Path(d) / f"{name}.db")  # (a new database costs ~30 ms a run)
            store = Store(Path(d) / f"{name}.db")
            try:
                e = Engine(store, FakeSource([FetchBatch(rows=feed)]), [FixedEstimator(p)], cfg)
                e.tick()
                runs.append((e.account.tickers_held(), decisions(Path(d) / f"{name}.db")))
            finally:
                store.close()
    assert runs[0][0] == runs[1][0]  # the same markets filled
    assert runs[0][1] == runs[1][1]  # and the same decisions, stored in the same order
    assert len(runs[0][0]) <= max_open
    event(f"slots bind: {any(r[5] == 0 and r[6].startswith(risk.MAX_POSITIONS) for r in runs[0][1]) and max_open > 0}")
