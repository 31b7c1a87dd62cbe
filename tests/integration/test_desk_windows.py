"""The engine computes a tick and keeps no view state (issue #21): the desk's rolling windows (the
decision log, the equity chart, each market's recent quotes) are the service's ``DeskWindows``,
fed from each ``TickReport``, with the bounds the desk always had."""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.models import TradeDecision
from kakashi_tui.trading.engine import Engine, TickReport
from kakashi_tui.trading.service import TradingService
from kakashi_tui.trading.view import (
    DECISIONS_KEPT,
    DECISIONS_SHOWN,
    EQUITY_KEPT,
    QUOTES_KEPT,
    DeskWindows,
    build_view,
)
from tests.conftest import book, make_engine

VIEW_STATE = ("recent_decisions", "equity_series", "quote_history", "killed_at")


def run(service: TradingService, ticks: int) -> list[TickReport]:
    reports = [service.step() for _ in range(ticks)]
    assert all(r is not None for r in reports)
    return [r for r in reports if r is not None]


def rolling_windows(obj: object) -> list[str]:
    """The attributes of ``obj`` that are rolling windows: a deque, or a dict of them."""
    out = []
    for name, value in vars(obj).items():
        if isinstance(value, deque) or (isinstance(value, dict) and any(isinstance(v, deque) for v in value.values())):
            out.append(name)
    return out


def test_the_engine_keeps_no_view_state(db_path):
    e = make_engine(db_path)
    try:
        service = TradingService(e)
        run(service, 10)
        service.publish_view()
        e.throw_kill("test")  # (the kill's instant was kept on the engine for the benchmark)
        assert not [n for n in VIEW_STATE if hasattr(e, n)]
        assert rolling_windows(e) == []  # nothing that grows with the run for a view to read
        assert sorted(rolling_windows(service.windows)) == ["books", "decisions", "equity"]
    finally:
        e.store.close()


def test_the_view_shows_what_the_service_windows_kept_from_each_report(db_path):
    e = make_engine(db_path)
    try:
        service = TradingService(e)
        reports = run(service, 200)
        decided = [d for r in reports for d in r.decisions]
        assert len(decided) > DECISIONS_SHOWN  # enough for the log to show only the newest
        v = service.publish_view()
        assert v.decisions == tuple(decided[-DECISIONS_SHOWN:])
        assert v.equity_series == tuple(r.equity_cc for r in reports) == tuple(e.store.recent_equity(EQUITY_KEPT))
        assert v.equity_series[-1] == v.equity_cc
        ticker = sorted(v.books)[0]
        quotes = [q for r in reports for q in r.quotes if q.ticker == ticker]
        assert len(quotes) > QUOTES_KEPT and v.books[ticker] == tuple(quotes[-QUOTES_KEPT:])
        service.focus = ticker  # the detail panel's market: only its history is copied
        assert set(service.publish_view().books) == {ticker}
    finally:
        e.store.close()


def test_a_restart_shows_the_recent_equity_from_the_store(db_path):
    store = Store(db_path)
    with store.atomic():
        for i in range(1, EQUITY_KEPT + 101):
            store.insert_tick(
                tick=i,
                ts=i * 1000,
                wall_ms=i * 1000,
                saved=0,
                rejected=0,
                decisions=0,
                fills=0,
                settled=0,
                errors=0,
                latency_ms=0.0,
                cash_cc=0,
                equity_cc=1_000_000 + i,
            )
    store.close()
    e = make_engine(db_path)
    try:
        service = TradingService(e)
        recorded = [1_000_000 + i for i in range(101, EQUITY_KEPT + 101)]  # the newest 500, oldest first
        assert list(service.windows.equity) == recorded
        assert service.publish_view().equity_series == tuple(recorded)  # before the first tick
        [r] = run(service, 1)
        assert service.publish_view().equity_series == (*recorded[1:], r.equity_cc)  # still 500
    finally:
        e.store.close()


def a_report(db_path) -> TickReport:
    e = make_engine(db_path)
    try:
        for _ in range(40):
            r = e.tick()
            if r.decisions:
                return r
    finally:
        e.store.close()
    raise AssertionError("no decision in 40 ticks")


def test_the_windows_keep_their_bounds(db_path):
    r = a_report(db_path)
    d: TradeDecision = r.decisions[0]
    w = DeskWindows([7] * 3)
    for i in range(DECISIONS_KEPT + 50):
        w.feed(replace(r, decisions=(d._replace(ts=i),), equity_cc=i, quotes=(book("T", ts=i + 1),), gone=()))
    assert (DECISIONS_KEPT, DECISIONS_SHOWN, EQUITY_KEPT, QUOTES_KEPT) == (200, 60, 500, 4)
    assert [x.ts for x in w.decisions] == list(range(50, DECISIONS_KEPT + 50))
    assert [x.ts for x in w.shown_decisions()] == list(range(DECISIONS_KEPT - 10, DECISIONS_KEPT + 50))
    assert list(w.equity) == [7] * 3 + list(range(DECISIONS_KEPT + 50))  # seeded, then each tick's
    for i in range(DECISIONS_KEPT + 50, EQUITY_KEPT + 50):
        w.feed(replace(r, decisions=(), equity_cc=i, quotes=(), gone=()))
    assert list(w.equity) == list(range(50, EQUITY_KEPT + 50))
    assert [x.ts for x in w.books["T"]] == list(range(DECISIONS_KEPT + 47, DECISIONS_KEPT + 51))
    w.feed(replace(r, decisions=(), quotes=(book("U"),), gone=("T",)))  # settled: the engine let it go
    assert list(w.books) == ["U"]


def test_a_view_without_windows_has_no_log_chart_or_history(db_path):
    """``build_view`` alone (the restored-state summary) reads the engine, and nothing it keeps."""
    e = make_engine(db_path)
    try:
        e.tick()
        v = build_view(e)
        assert v.decisions == () and v.equity_series == () and v.books == {}
        assert v.markets  # the engine's own state is there
    finally:
        e.store.close()


def test_an_engine_is_made_with_no_windows_to_seed(db_path):
    """The engine no longer reads the store's equity curve when it is made (the service does)."""
    e = make_engine(db_path)
    try:
        e.tick()
        again = Engine(e.store, e.source, e.estimators, e.cfg)
        assert not hasattr(again, "equity_series")
        assert list(TradingService(again).windows.equity) == e.store.recent_equity(EQUITY_KEPT)
    finally:
        e.store.close()
