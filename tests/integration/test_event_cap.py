"""Events that know their markets are mutually exclusive (#24 item 5): Kalshi's
``mutually_exclusive`` stored from the loopback server, the engine feeding the event cap with
the event's positions, and the simulator's bracket events (exactly one bracket resolves YES)."""

from __future__ import annotations

import collections
from decimal import Decimal

import pytest

from kakashi_tui.adapters import queries
from kakashi_tui.adapters.kalshi.client import KalshiClient
from kakashi_tui.adapters.kalshi.source import KalshiSource
from kakashi_tui.adapters.sim import BRACKETS, SimExchange
from kakashi_tui.adapters.source import Estimator, FetchBatch, RawRow, Source
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core import risk
from kakashi_tui.core.models import Estimate, Side
from kakashi_tui.core.money import fmt_cc
from kakashi_tui.frontends.report import ruin
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
from kakashi_tui.trading.config import KakashiConfig, SimSection
from kakashi_tui.trading.engine import Engine, EngineConfig
from kakashi_tui.trading.view import build_view
from tests.conftest import SIM_START_MS, make_engine

EVENT = "KXEV-26JAN05"


class Brackets(Source):
    """Three brackets of one event, each with 9 contracts of NO at 0.90 (YES bid 0.10 x 9)."""

    name = "brackets"

    def __init__(self, exclusive: bool | None) -> None:
        self.t, self.exclusive = SIM_START_MS, exclusive

    def now_ms(self) -> int:
        return self.t

    def fetch(self) -> FetchBatch:
        self.t += 1_000
        rows = []
        for i in range(3):
            t = f"{EVENT}-B{i}"
            market = {"ticker": t, "event_ticker": EVENT, "status": "active", "close_ts": self.t + 3_600_000}
            if self.exclusive is not None:
                market["event_exclusive"] = self.exclusive
            snap = {
                "ticker": t,
                "ts": self.t,
                "yes_bid": "0.1000",
                "yes_ask": "0.1200",
                "yes_bids": (("0.1000", "9.00"),),
                "no_bids": (("0.8800", "9.00"),),
                "volume": 0,
            }
            rows.append(RawRow(market=market, snapshot=snap, payload={"t": t}))
        return FetchBatch(rows=rows)


class Unlikely(Estimator):
    """Every bracket is a 2% shot: buy NO on each."""

    def estimates(self, tickers, now_ms):
        return [Estimate(ticker=t, p_hat=Decimal("0.02"), source="test", ts=now_ms) for t in tickers]


def test_the_risk_panel_counts_an_events_live_orders_before_they_fill(tmp_path):
    """Orders ten minutes from active (resting posts are alike): no position yet, but the gate
    counts what they reserve in the event, so the desk's "Worst event" row must show it too (it
    showed nothing until a fill)."""
    e = Engine(Store(tmp_path / "k.db"), Brackets(None), [Unlikely()], EngineConfig(insert_latency_ms=600_000))
    rep = e.tick()
    assert rep.fills == 0 and len(e.orders) == 2 and not e.account.tickers_held()
    (exposure,) = e.event_exposures()
    assert exposure == (EVENT, risk.event_worst_cc(e.event_legs(EVENT), False)) and exposure[1] > 0
    line = next(r for r in build_view(e).risk if r.name == "Worst event")
    assert line.used == fmt_cc(exposure[1])
    e.store.close()


@pytest.mark.parametrize("exclusive", [True, None, False])
def test_the_engine_caps_an_event_by_its_worst_case_over_its_outcomes(tmp_path, exclusive):
    """NO on three brackets, $8.1567 each (9 x 0.90 + fee $0.0567): exclusive, at most one can
    lose (worst $8.1567 - 2 x $0.8433 = $6.47), so all three are bought; not known to be
    exclusive, each counts whole, and the third ($24.47 > $20.00, 2% of $1,000) is refused."""
    e = Engine(Store(tmp_path / "k.db"), Brackets(exclusive), [Unlikely()], EngineConfig(insert_latency_ms=0))
    rep = e.tick()
    got = [(d.ticker, d.side, d.accepted) for d in rep.decisions]
    assert [(t, s) for t, s, _ok in got] == [(f"{EVENT}-B{i}", Side.NO) for i in range(3)]
    costs = [p.cost_cc for p in e.account.open_positions()]
    assert costs[:2] == [81_567, 81_567]
    if exclusive:
        assert rep.fills == 3 and e.event_exposures() == [(EVENT, 81_567 - 2 * (90_000 - 81_567))]
    else:
        assert rep.fills == 2 and e.event_exposures() == [(EVENT, 2 * 81_567)]
        third = rep.decisions[2]
        assert not third.accepted and third.reason.startswith(f"{risk.EVENT_CAP}: worst case $24.4")
        assert third.reason.endswith(f"in {EVENT}")
    stored = e.store.db.execute_sql("SELECT DISTINCT event_exclusive FROM markets").fetchall()
    assert stored == [(None if exclusive is None else int(exclusive),)]
    # the desk's risk panel: the largest event's worst case against the cap (2% of equity now),
    # while an event holds two markets or more
    line = next(r for r in build_view(e).risk if r.name == "Worst event")
    assert (line.used, line.limit) == (fmt_cc(e.event_exposures()[0][1]), fmt_cc(e.equity() * 2 // 100))
    e.account.positions.pop((f"{EVENT}-B0", Side.NO))  # (one market held: the row says nothing)
    e.account.positions.pop((f"{EVENT}-B1", Side.NO))
    assert [r.name for r in build_view(e).risk if r.name == "Worst event"] == []
    e.store.close()
    # the odds of ruin draw the brackets of a stored exclusive event jointly (risk_limits.md)
    assert ruin.load_inputs(tmp_path / "k.db").exclusive == (frozenset({EVENT}) if exclusive else frozenset())


def test_the_loopback_kalshi_source_stores_mutually_exclusive(tmp_path):
    """GET /events (after a full listing) and GET /events/{e} (a narrowed source's look-up) both
    say it; every market row of the event carries it into the store."""
    st = FakeKalshi.with_markets(3, require_signature=False, page_size=100)
    st.lifecycle_zoo()  # a second event, KXZOO-26JAN05: not exclusive
    st.exclusive_events = {"KXFAKE-26JAN05"}
    with FakeKalshiServer(st) as srv:
        for name, narrowed in (("full.db", None), ("narrow.db", ["KXFAKE-26JAN05-T00", "KXZOO-26JAN05-ACTI"])):
            c = KalshiClient(base_url=srv.base_url, backoff_base=0.01, timeout=2.0, reads_per_s=500)
            with c:
                e = Engine(Store(tmp_path / name), KalshiSource(c, tickers=narrowed), [], EngineConfig())
                e.tick()
                rows = dict(e.store.db.execute_sql("SELECT ticker, event_exclusive FROM markets").fetchall())
                e.store.close()
            assert rows["KXFAKE-26JAN05-T00"] == 1 and rows["KXZOO-26JAN05-ACTI"] == 0, name
            if narrowed is None:
                assert {t: x for t, x in rows.items() if t.startswith("KXFAKE")} == {
                    f"KXFAKE-26JAN05-T{i:02d}": 1 for i in range(3)
                }
        assert ("GET", "/trade-api/v2/events") in [(m, p.split("?")[0]) for m, p in st.requests]
        assert any(p.startswith("/trade-api/v2/events/KXFAKE-26JAN05") for _m, p in st.requests)


def test_the_simulators_brackets_resolve_exactly_one_yes_and_move_no_other_market():
    plain = SimExchange(seed=3, markets=6, start_ms=SIM_START_MS)
    with_events = SimExchange(seed=3, markets=6, start_ms=SIM_START_MS, bracket_events=2)
    results: dict[str, dict[str, str]] = collections.defaultdict(dict)
    for _ in range(260):
        a, b = plain.fetch(), with_events.fetch()
        assert [(r.market, r.snapshot) for r in a.rows] == [
            (r.market, r.snapshot) for r in b.rows if not r.market["ticker"].startswith("SIMB-")
        ]
        for r in b.rows:
            m = r.market
            if m["ticker"].startswith("SIMB-"):
                assert m["event_exclusive"] is True and m["ticker"].startswith(m["event_ticker"] + "-B")
                if m["status"] == "determined":
                    results[m["event_ticker"]][m["ticker"]] = m["result"]
    assert len(results) >= 3
    for event, got in results.items():
        assert len(got) == BRACKETS and sorted(got.values()) == ["no"] * (BRACKETS - 1) + ["yes"], event


def test_a_simulated_run_stores_brackets_under_their_event_for_the_cap_and_the_report(tmp_path):
    """``[sim] bracket_events`` through the runtime: the store keeps each bracket's event and
    its exclusivity, and the report's event-clustered intervals group the brackets as one
    (``market_rows``' event, what ``edge.gather_forecasts`` resamples by)."""
    db = tmp_path / "b.db"
    e = make_engine(db, cfg=KakashiConfig(sim=SimSection(bracket_events=2)))
    for _ in range(30):
        e.tick()
    e.store.close()
    con = queries.connect_readonly(db)
    try:
        rows = queries.market_rows(con)
    finally:
        con.close()
    events = collections.defaultdict(set)
    for ticker, _title, _series, event, _o, _c, exclusive in rows:
        if ticker.startswith("SIMB-"):
            assert exclusive == 1
            events[event].add(ticker)
        else:
            assert event == ticker and exclusive is None
    assert len(events) == 2 and all(len(ts) == BRACKETS for ts in events.values())


def test_a_live_order_counts_in_its_events_worst_case_before_it_fills(tmp_path):
    """With the default 500 ms latency the first tick's orders are still live when the third bracket
    is decided: they count as if filled (issue #24 item 5: "every position and resting order"), so
    the third is refused in the same tick, and two fill at the next."""
    e = Engine(Store(tmp_path / "k.db"), Brackets(False), [Unlikely()], EngineConfig(insert_latency_ms=500))
    rep = e.tick()
    assert [d.accepted for d in rep.decisions] == [True, True, False] and rep.fills == 0
    assert rep.decisions[2].reason.startswith("event cap: worst case ")
    assert len(e.orders) == 2 and not e.account.open_positions()
    e.tick()
    assert [p.cost_cc for p in e.account.open_positions()] == [81_567, 81_567]
