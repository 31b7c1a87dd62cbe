"""The desk's orders panel's data (issue #23 item 9): the view's order rows, and the operator's
cancel of one order (``CancelOrder``), applied by the engine's cancel path and recorded for the
catalog like the other commands."""

from __future__ import annotations

import sqlite3

import pytest

from kakashi_tui.trading.commands import CancelOrder, from_record, record_of
from kakashi_tui.trading.config import FillsSection, KakashiConfig
from kakashi_tui.trading.view import OrderLine, build_view
from tests.conftest import make_engine

#: An hour (the longest latency allowed): the seeded run's orders are still live after 40 ticks.
LIVE = KakashiConfig(fills=FillsSection(insert_latency_ms=3_600_000, cancel_latency_ms=500))


@pytest.fixture
def live(tmp_path):
    e = make_engine(tmp_path / "k.db", cfg=LIVE)
    for _ in range(40):
        e.tick()
    yield e
    e.store.close()


def test_the_view_has_a_row_per_live_order_with_its_queue_and_age(live):
    now = live.source.now_ms()
    v = build_view(live)
    assert [o.order_id for o in v.orders] == ["1", "2", "3"]
    first = v.orders[0]
    o = live.orders["1"]
    assert first == OrderLine(
        "1",
        o.ticker,
        o.side,
        o.limit_cc,
        o.quantity_hundredths,
        o.quantity_hundredths,
        None,
        now - o.decided_ts,
        "submitted",
        "ioc",
    )
    assert first.age_ms == 2_280_000  # decided 38 minutes before the view (the seed's ticks)


def test_cancel_order_asks_by_the_cancel_path_and_is_recorded(live, tmp_path):
    now = live.source.now_ms()
    recorded: list = []
    live.source.commands_applied = recorded.extend  # (what a recorder would write to the catalog)
    assert live.execute(CancelOrder("2"), now) is True
    assert live.execute(CancelOrder("2"), now) is False  # asked already: one request
    assert live.execute(CancelOrder("99"), now) is False  # no such live order
    assert build_view(live).orders[1].state == "cancelling"
    assert live.orders["2"].cancel_effective_ts == now + 500
    live.tick()  # the next step: past the cancel latency, still before activation
    assert "2" not in live.orders and {"1", "3"} <= set(live.orders)
    con = sqlite3.connect(tmp_path / "k.db")
    rows = con.execute("SELECT ts, state, reason FROM order_events WHERE order_id = 2 ORDER BY id").fetchall()
    con.close()
    assert rows[1:] == [(now, "cancel_requested", "operator"), (now + 500, "cancelled", "cancel requested")]
    assert [(r.ts, r.kind, r.text) for r in recorded] == [(now, "cancel_order", "2")] * 2 + [
        (now, "cancel_order", "99")
    ]
    assert from_record(record_of(CancelOrder("2"), now, 41, now)) == CancelOrder("2")


def test_the_blotter_reads_each_fills_role(tmp_path):
    """The blotter's liquidity column is ``fills.role`` (take mode makes only takers: one row is
    made a maker's here, one a row before v10, NULL, which was a taker's)."""
    from kakashi_tui.adapters.queries import connect_readonly
    from kakashi_tui.frontends.desk.lookups import fills_blotter

    db = tmp_path / "k.db"
    e = make_engine(db, cfg=KakashiConfig(fills=FillsSection(insert_latency_ms=0)))
    for _ in range(40):
        e.tick()
    e.store.close()
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE fills SET role = 'maker' WHERE id = 1")
        con.execute("UPDATE fills SET role = NULL WHERE id = 2")
    con.close()
    ro = connect_readonly(db)
    rows, total = fills_blotter(ro)
    ro.close()
    roles = {r[0]: r[-1] for r in rows}
    assert total >= 3 and roles[1] == "maker" and roles[2] == "taker"
    assert set(roles.values()) == {"maker", "taker"}
