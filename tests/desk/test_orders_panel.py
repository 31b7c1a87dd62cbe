"""The desk's orders panel (issue #23 item 9): the live paper orders, `v` to show them, `c` to
cancel the selected one (asks first, Enter = No). The engine's orders stay live for the pictures:
the seeded simulator with an hour of insert latency."""

from __future__ import annotations

import pytest

from kakashi_tui.frontends.desk.screens import ConfirmScreen
from kakashi_tui.frontends.desk.widgets.orders import OrdersPanel
from kakashi_tui.trading.config import FillsSection, KakashiConfig
from tests.conftest import make_engine
from tests.desk.conftest import desk_app, tick
from tests.desk.test_pilot import wait_for

LIVE = KakashiConfig(fills=FillsSection(insert_latency_ms=3_600_000, cancel_latency_ms=500))


def live_engine(db):
    e = make_engine(db, cfg=LIVE)
    for _ in range(40):
        tick(e)
    e.last_latency_ms = 1.5  # pinned for pictures, as desk_engine does
    return e


@pytest.fixture
def live(tmp_path):
    e = live_engine(tmp_path / "orders.db")
    yield e
    e.store.close()


async def test_c_asks_first_enter_keeps_the_order_y_cancels_it(live, tmp_path):
    app = desk_app(live, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("v", "v", "v", "v")  # positions, bankroll, risk, log, orders
        panel = app.query_one(OrdersPanel)
        assert panel.display and panel.row_count == 3 and panel.selected == "1"
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")  # No
        assert app.service.apply_pending() == 0 and live.orders["1"].cancel_requested_ts is None
        panel.move_cursor(row=1)
        await pilot.press("c", "y")
        assert app.service.apply_pending() == 1
        assert live.orders["2"].cancel_requested_ts is not None and live.orders["1"].cancel_requested_ts is None
        assert await wait_for(pilot, lambda: any(n.startswith("cancel asked for order 2") for n in app.notes))
        app.refresh_view()
        assert await wait_for(pilot, lambda: panel.get_row("2")[-1] == "cancelling")


@pytest.fixture
def live_app(tmp_path):
    made = []

    def make():
        e = live_engine(tmp_path / "snap.db")
        made.append(e)
        return desk_app(e, tmp_path)

    yield make
    for e in made:
        e.store.close()


def test_orders_panel_80x24(snap_compare, live_app):
    assert snap_compare(live_app(), terminal_size=(80, 24), press=["v", "v", "v", "v"])


def test_orders_panel_120x40(snap_compare, live_app):
    assert snap_compare(live_app(), terminal_size=(120, 40), press=["v", "v"])


@pytest.mark.parametrize("size", [(120, 40), (160, 50)])
async def test_v_shows_the_orders_in_the_logs_place_where_every_panel_fits(live, tmp_path, size):
    """100-129 columns: risk caps, bankroll, then the orders in the log's row; wider: v swaps them."""
    app = desk_app(live, tmp_path)
    async with app.run_test(size=size) as pilot:
        orders, log = app.query_one(OrdersPanel), app.query_one("#log-panel")
        assert not orders.display and log.display
        await pilot.press(*(["v", "v"] if size[0] < 130 else ["v"]))
        assert orders.display and not log.display and orders.size.height > 3
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape", "v")
        assert not orders.display and log.display


async def test_a_post_cancelled_to_re_price_is_a_cancelled_line_in_the_decision_log(tmp_path):
    """A resting post's end that is not a fill (issue #23 item 2) reaches the desk's decision log
    as the engine's report says it: the re-price scenario of test_post_orders, its tick's report
    handed to the desk as the service hands it."""
    from kakashi_tui.adapters.source import FetchBatch
    from kakashi_tui.frontends.desk.widgets.decision_log import DecisionLog
    from tests.integration.test_engine import fake_engine, row
    from tests.integration.test_post_orders import at, cfg, run

    rows = [row(ts=at(0)), row(ts=at(1)), row(ts=at(2), bid="0.42", ask="0.46"), row(ts=at(3), bid="0.43", ask="0.44")]
    e = fake_engine(tmp_path / "post.db", [FetchBatch(rows=[r]) for r in rows], p={"T": 0.60}, cfg=cfg())
    report = [run(e, k) for k in range(4)][-1]
    assert report.order_notes  # the cancel took effect this tick
    app = desk_app(e, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app._note_order_fills(report)
        log = app.query_one(DecisionLog)

        def said() -> list[tuple[str, str, str]]:
            return [(x.who, x.what, x.text) for x in log.entries() if x.what == "CANCELLED"]

        assert await wait_for(pilot, lambda: bool(said()))
        assert said() == [
            ("T", "CANCELLED", "order 1 YES @0.4100 gtc, post-only: cancelled (re-price: post YES @0.4300 now)")
        ]
    e.store.close()
