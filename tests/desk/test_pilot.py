"""The desk driven by its keys, with the engine ticked by hand (no sleeping)."""

from __future__ import annotations

import dataclasses
import threading
import time
from decimal import Decimal

from kakashi_tui.adapters.store.schema import FillRow
from kakashi_tui.core import risk
from kakashi_tui.frontends.desk.screens import ConfirmScreen, EstimateScreen, HelpScreen, ReportScreen
from kakashi_tui.frontends.desk.widgets.bankroll import BankrollPanel
from kakashi_tui.frontends.desk.widgets.decision_log import DecisionLog
from kakashi_tui.frontends.desk.widgets.market_detail import MarketDetail
from kakashi_tui.frontends.desk.widgets.markets_table import MarketsTable
from kakashi_tui.frontends.desk.widgets.positions import PositionsPanel
from kakashi_tui.frontends.desk.widgets.risk_panel import RiskPanel
from kakashi_tui.frontends.desk.widgets.status_bar import StatusBar
from tests.desk.conftest import desk_app, tick

SIZE = (120, 40)


async def wait_for(pilot, predicate, tries: int = 200, seconds: float = 20.0):
    """Poll ``predicate`` between short pauses until it holds: at least ``tries`` pauses and at
    least ``seconds`` on the clock (a loaded machine, where the desk paints a frame in seconds,
    failed a fast-typing test on 200 pauses). ``seconds=0`` where not holding is an answer."""
    end = time.monotonic() + seconds
    n = 0
    while n < tries or time.monotonic() < end:
        if predicate():
            return True
        await pilot.pause(0.02)
        n += 1
    return predicate()


async def test_pause_and_resume(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        assert engine.paused and app.view.state == "PAUSED"
        assert app.query_one(StatusBar).has_class("-paused")
        assert tick(engine).decisions == ()  # paused: data flows, no decisions
        await pilot.press("p")
        assert not engine.paused and app.view.state == "RUNNING"


async def test_kill_is_immediate_persisted_and_refuses_orders(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k")
        assert engine.killed and not isinstance(app.screen, ConfirmScreen)  # no confirmation, in force now
        assert engine.store.get_control("kill_switch") is None  # stored by the service's next tick
        assert app.service.step() is not None and engine.store.get_control("kill_switch") == "1"
        await pilot.pause()
        assert app.query_one(StatusBar).has_class("-halted")
        assert "HALTED" in app.view.state
        for _ in range(20):
            for d in tick(engine).decisions:
                assert not d.accepted and d.reason == risk.KILL_SWITCH


async def test_rearm_needs_confirmation(engine, tmp_path):
    engine.kill("operator")
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert engine.killed
        await pilot.press("r")
        await pilot.press("y")
        assert engine.killed  # a re-arm is applied by the service, in order, not by the key
        assert app.service.apply_pending() == 1
        assert not engine.killed and engine.store.get_control("kill_switch") == "0"
        app.refresh_view()
        assert await wait_for(pilot, lambda: app.view.state == "RUNNING" and "kill switch re-armed" in app.notes)


async def test_flatten_sells_everything_after_confirmation(engine, tmp_path):
    assert engine.account.open_positions()
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert engine.account.open_positions()
        await pilot.press("f", "y")
        assert app.service.apply_pending() == 2  # pause, then flatten, in that order
        assert engine.account.open_positions() == []
        assert FillRow.select().where(FillRow.action == "sell").count() > 0
        assert engine.paused and tick(engine).decisions == ()  # flat, and it stays flat
        app.refresh_view()
        assert app.view.positions == ()
        assert await wait_for(pilot, lambda: any(n.startswith("flattened:") for n in app.notes))


async def test_export_writes_the_postmortem(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.last_export is not None and app.last_export.exists()
        text = app.last_export.read_text()
        assert app.last_export.parent.parent == tmp_path / "reports"
        for section in ("## Bankroll", "## Trades", "## Verdict", "## Rejected decisions by reason"):
            assert section in text
        assert isinstance(app.screen, ReportScreen)  # the desk shows what it just wrote
        assert (app.last_export.parent / "bankroll.png").exists()
        await pilot.press("escape")
        assert not isinstance(app.screen, ReportScreen)


async def test_set_p_hat_for_the_selected_market(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        ticker = app.selected_ticker()
        await pilot.press("b")
        assert isinstance(app.screen, EstimateScreen)
        await pilot.press("ctrl+u", *"1.7", "enter")
        assert isinstance(app.screen, EstimateScreen)  # refused: outside [0, 1]
        await pilot.press("ctrl+u", *"0.91", "enter")
        assert not isinstance(app.screen, EstimateScreen)
        app.service.apply_pending()
        est = engine.estimates[ticker]
        assert est.p_hat == Decimal("0.91") and est.source == "operator"
        tick(engine)  # the oracle does not overwrite the operator
        assert engine.estimates[ticker].p_hat == Decimal("0.91")
        app.refresh_view()
        line = next(m for m in app.view.markets if m.ticker == ticker)
        assert line.p_hat == Decimal("0.91")


async def test_help_and_command_palette_list_the_keys(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Kill switch", "Pause / resume trading", "Flatten all positions", "Export post-mortem"} <= titles


async def test_sort_cycles_modes(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(MarketsTable)
        assert table.sort_mode == "ticker"
        await pilot.press("s")
        assert table.sort_mode == "edge"
        edges = [
            max(e for e in (m.ev_yes, m.ev_no) if e is not None)
            for m in sorted(app.view.markets, key=lambda m: table.ordered_keys.index(m.ticker))
        ]
        assert edges == sorted(edges, reverse=True)


async def test_markets_table_diffs_rows_without_clearing(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(MarketsTable)
        table.move_cursor(row=3)
        chosen = app.selected_ticker()
        for _ in range(3):
            app.service.step()
            app.refresh_view()
            await pilot.pause()
        live = {m.ticker for m in app.view.markets}
        assert set(table.ordered_keys) == live and table.row_count == len(live)
        if chosen in live:
            assert app.selected_ticker() == chosen  # the operator keeps the selection


async def test_narrow_terminal_collapses_and_cycles_panels(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.has_class("-narrow")
        assert app.query_one("#positions-panel").has_class("-current")
        await pilot.press("v")
        assert app.query_one("#bankroll-panel").has_class("-current")
        assert not app.query_one("#detail").display or app.query_one("#detail").size.width == 0


async def test_engine_worker_ticks_and_posts_views(engine, tmp_path):
    start = engine.tick_count
    app = desk_app(engine, tmp_path, autostart=True, interval=0, ticks=5)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.view and app.view.tick == start + 5)
        assert app.service.stop() and app.service.stats.ticks == 5


async def test_keys_respond_while_a_fetch_is_in_flight(engine, tmp_path):
    release = threading.Event()
    entered = threading.Event()
    real_fetch = engine.source.fetch

    def slow_fetch():
        entered.set()
        release.wait(10)
        return real_fetch()

    engine.source.fetch = slow_fetch
    app = desk_app(engine, tmp_path, autostart=True, interval=0, ticks=1)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, entered.is_set)
        await pilot.press("k")  # the fetch is still blocked: the key must act now
        assert engine.killed and "HALTED" in app.view.state
        release.set()
        assert await wait_for(pilot, app.service.finished.is_set)
        assert app.service.stop()
        assert all(not d.accepted for d in app.service.windows.decisions if d.ts >= engine.source.now_ms())


async def test_failed_ticks_are_noted_then_halt_trading_visibly(engine, tmp_path):
    def broken(*_a, **_k):
        raise RuntimeError("disk I/O error")

    engine.apply_batch = broken
    app = desk_app(engine, tmp_path, autostart=True, interval=0)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: engine.killed and app.view.killed)
        assert app.service.stats.consecutive_failures >= 5  # the policy: five in a row, then the kill switch
        assert "disk I/O error" in app.view.state and "5 failed ticks in a row" in app.view.state
        assert any("tick failed: RuntimeError: disk I/O error" in n for n in app.notes)
        assert await wait_for(pilot, lambda: app.query_one(StatusBar).has_class("-halted"))
        assert engine.store.get_control("kill_switch") == "1"  # persisted with its reason
        assert app.is_running
        alert = app.alert.raised[0]  # and it is an alert: notification, bell, webhook if configured
        assert alert.kind == "engine_failed" and "disk I/O error" in alert.message
        app.service.stop()


async def test_markets_table_keys_scroll_and_drive_the_detail(tmp_path):
    from kakashi_tui.frontends.desk.widgets.market_detail import MarketDetail
    from kakashi_tui.trading.config import KakashiConfig, SimSection
    from kakashi_tui.trading.runtime import Options, build_engine

    e = build_engine(
        Options(source="sim", db=str(tmp_path / "k.db"), seed=5, sim_start_ms=1_767_571_200_000),
        KakashiConfig(sim=SimSection(markets=80, bracket_events=0)),
    )
    tick(e)
    app = desk_app(e, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(MarketsTable)
        assert table.row_count == 80 and app.selected_ticker() == table.ordered_keys[0]
        await pilot.press("down", "down")
        assert app.selected_ticker() == table.ordered_keys[2]
        assert app.query_one(MarketDetail).ticker == table.ordered_keys[2]
        await pilot.press("end")
        assert app.selected_ticker() == table.ordered_keys[-1]
        assert table.scroll_y > 0  # the last row was scrolled into view
        await pilot.pause()
        assert set(app.view.books) == {app.selected_ticker()}  # views carry only the focused market's quotes
        await pilot.press("home", "pagedown")
        assert table.cursor_row == table.size.height - 1
    e.store.close()


async def test_panels_take_a_view_a_frame_each_and_catch_up_to_the_newest(engine, tmp_path):
    # While the service ticks, a view's panels are painted one a frame (a key waits behind one
    # panel's paint, not the whole desk's); the status line, which carries the state, is at once.
    app = desk_app(engine, tmp_path, autostart=True, interval=0, ticks=1)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.service.finished.is_set() and app.view is not None)
        await pilot.pause()
        assert app.service.running
        base = app.view
        v1 = dataclasses.replace(base, clock_ms=base.clock_ms + 1)
        v2 = dataclasses.replace(base, clock_ms=base.clock_ms + 2)
        app.view = v1
        assert app.query_one(StatusBar).view is v1
        assert app.query_one(DecisionLog).view is not v1  # still due: painted in later frames
        app.view = v2  # a newer view before the panels caught up: they go straight to it
        panels = [app.query_one(c) for c in (MarketDetail, PositionsPanel, BankrollPanel, RiskPanel, DecisionLog)]
        assert await wait_for(pilot, lambda: all(p.view is v2 for p in panels))
        assert app.query_one(StatusBar).view is v2
        app.service.stop()


class _JumpyClock:
    """Textual's timer clock, as a loaded machine's scheduler makes it look: now and then the
    process is descheduled between two readings for longer than a frame (here: every 2nd
    reading is 50 ms later than the one before)."""

    def __init__(self) -> None:
        import time as _t

        self._t = _t
        self.calls = 0
        self.offset = 0.0

    def get_time(self) -> float:
        self.calls += 1
        if self.calls % 2 == 0:
            self.offset += 0.05
        return self._t.monotonic() + self.offset


async def test_the_panels_frame_clock_survives_a_descheduled_process(engine, tmp_path, monkeypatch):
    """Textual drops a one-shot timer whose first deadline passed before it started (its skip):
    with the panels scheduled by a one-shot timer a frame, one such drop left every panel due
    and nothing scheduled, frozen for good while views kept coming (the freeze test, load 10)."""
    import textual.timer

    app = desk_app(engine, tmp_path, autostart=True, interval=0.02)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.view is not None and app.view.tick > 3)
        monkeypatch.setattr(textual.timer, "_time", _JumpyClock())
        for _ in range(6):  # views keep coming; every panel must keep catching up
            target = app.view.tick
            ok = await wait_for(
                pilot,
                lambda t=target: all(app.query_one(c).view.tick >= t for c in (RiskPanel, DecisionLog, PositionsPanel)),
                tries=500,
            )
            assert ok, (target, app.view.tick, sorted(app._panels_due))
        monkeypatch.undo()
        app.service.stop()


async def test_no_panel_starves_when_views_come_faster_than_a_round(engine, tmp_path, monkeypatch):
    """A new view every frame (a loaded machine: frames come late, views on time): every panel
    is still painted within one round of frames. The round used to restart at the markets on
    each view, so the risk panel and the decision log froze for good (seen in 1 run of the
    freeze test at load 10) while the status line kept ticking."""
    from kakashi_tui.frontends.desk import app as app_module

    monkeypatch.setattr(app_module, "PANEL_FRAME_S", 3600)  # frames are stepped by hand below
    app = desk_app(engine, tmp_path, autostart=True, interval=0, ticks=1)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.service.finished.is_set() and app.view is not None)
        await pilot.pause()
        assert app.service.running
        base = app.view
        rounds = 7  # markets, detail, positions, bankroll, equity chart, risk, decision log
        first = dataclasses.replace(base, clock_ms=base.clock_ms + 1)
        app.view = first
        for k in range(2, rounds + 2):  # one frame's panel, then a newer view, a round long
            app._show_next_panel()
            app.view = dataclasses.replace(base, clock_ms=base.clock_ms + k)
        panels = [app.query_one(c) for c in (RiskPanel, DecisionLog)]
        assert all(p.view is not None and p.view.clock_ms >= first.clock_ms for p in panels), [
            p.view.clock_ms if p.view else None for p in panels
        ]
        app.service.stop()


async def test_unchanged_market_lines_reach_the_table_as_the_objects_it_shows(engine, tmp_path, monkeypatch):
    """Issue #19: the service builds every market line anew for each view; the desk matches the
    unchanged ones where the view is published (off its loop), so the table's diff is an
    identity test and compares only the lines that moved (at 5,000 markets, comparing all of
    them held a key for 30-100 ms)."""
    from kakashi_tui.trading.view import MarketLine

    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(MarketsTable)
        v = app.view
        shown = dict(table._lines)
        assert len(v.markets) >= 3
        moved = v.markets[1]
        rebuilt = [dataclasses.replace(m) for m in v.markets]  # equal, but new objects: as the service makes them
        rebuilt[1] = dataclasses.replace(moved, bid=Decimal("0.0100") if moved.bid != Decimal("0.0100") else None)
        compared: list[str] = []
        eq = MarketLine.__eq__

        def counted(a, b):
            compared.append(a.ticker)
            return eq(a, b)

        app._publish(dataclasses.replace(v, markets=tuple(rebuilt)))  # as the service publishes it
        monkeypatch.setattr(MarketLine, "__eq__", counted)  # from here on: what the table compares
        await pilot.pause()
        monkeypatch.setattr(MarketLine, "__eq__", eq)
        assert app.view.markets[1] is rebuilt[1] and table._lines[moved.ticker] is rebuilt[1]
        kept = [m for i, m in enumerate(app.view.markets) if i != 1]
        assert all(m is shown[m.ticker] for m in kept)  # the objects already shown
        assert set(compared) == {moved.ticker}  # the moved line alone was compared (table, reactives)
