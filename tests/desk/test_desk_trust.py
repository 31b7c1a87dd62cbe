"""Issue #12, driven by keys: confirmations default to No, p̂ validated in place, whole tickers,
find and inspect, honest feed state, alerts, the log file, restarts, crashes."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kakashi_tui.adapters import alerts as al
from kakashi_tui.core.money import fmt_cc
from kakashi_tui.frontends.desk.screens import (
    ConfirmScreen,
    EstimateScreen,
    HelpScreen,
    MarketScreen,
    RejectedScreen,
    parse_p_hat,
)
from kakashi_tui.frontends.desk.widgets.decision_log import DecisionLog, LogEntry
from kakashi_tui.frontends.desk.widgets.markets_table import (
    MARKET_COLUMNS,
    TICKER_MAX,
    MarketsTable,
    ev_cell,
    layout_columns,
)
from kakashi_tui.frontends.desk.widgets.status_bar import StatusBar
from kakashi_tui.frontends.fmt import fmt_clock, fmt_signed
from kakashi_tui.frontends.logfile import OperatorLog
from kakashi_tui.trading.engine import utc_day
from kakashi_tui.trading.service import send_request
from tests.desk.conftest import KALSHI_MARKETS, desk_app, kalshi_engine, tick
from tests.desk.test_pilot import wait_for

SIZE = (120, 40)
NARROW = (80, 24)


@pytest.fixture
def kengine(tmp_path):
    e = kalshi_engine(tmp_path / "k.db")
    yield e
    e.store.close()


def screen_text(app) -> str:
    return "\n".join("".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips())


# -- 3. confirmations default to No ----------------------------------------------------------
async def test_enter_cancels_flatten_rearm_and_quit(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        assert isinstance(app.screen, ConfirmScreen) and app.screen.focused.id == "no"
        await pilot.press("enter")
        assert not isinstance(app.screen, ConfirmScreen) and engine.account.open_positions()
        await pilot.press("k")
        await pilot.press("r", "enter")
        assert engine.killed  # Enter said No
        await pilot.press("r", "y")
        app.service.apply_pending()  # the re-arm is applied by the service, in order
        assert not engine.killed
        await pilot.press("q")  # five open positions: asks first
        assert isinstance(app.screen, ConfirmScreen) and "open paper position" in app.screen.question
        await pilot.press("enter")
        assert app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
    assert app.return_code == 0


# -- 1. nothing typed crashes the desk ---------------------------------------------------------
@pytest.mark.parametrize(
    "text, error",
    [
        ("nan", "finite"),
        ("NaN", "finite"),
        ("sNaN", "finite"),
        ("inf", "finite"),
        ("-Infinity", "finite"),
        ("1.7", "strictly between 0 and 1"),
        ("0", "strictly between"),
        ("1", "strictly between"),
        ("-0.2", "strictly between"),
        ("abc", "not a number"),
        ("0.5.5", "not a number"),
        ("", "type a probability"),
        ("0.123456", "4 decimal places"),
        ("9" * 40, "too long"),
    ],
)
def test_p_hat_parser_refuses_with_a_reason(text, error):
    out = parse_p_hat(text)
    assert isinstance(out, str) and error in out


@given(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.9999"), places=4))
def test_p_hat_parser_takes_every_probability(p):
    assert parse_p_hat(f" {p} ") == p


async def test_p_hat_nan_shows_the_error_in_the_dialog(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=NARROW) as pilot:
        ticker = app.selected_ticker()
        before = engine.estimates[ticker].p_hat
        await pilot.press("b", "ctrl+u", *"nan", "enter")
        assert isinstance(app.screen, EstimateScreen) and "finite" in app.screen.error
        assert app.screen.query_one("#estimate-input").has_class("-invalid")
        await pilot.press("ctrl+u", *"0.4")  # fixing it clears the error as you type
        assert app.screen.error == ""
        await pilot.press("enter")
        assert not isinstance(app.screen, EstimateScreen)
        app.service.apply_pending()
        assert engine.estimates[ticker].p_hat == Decimal("0.4") != before
        assert app.is_running


# -- 2. readable at every width ------------------------------------------------------------------
NUMERIC = {c.key: c.width for c in MARKET_COLUMNS if c.key not in ("ticker", "title")}


@given(width=st.integers(40, 220), ticker=st.integers(6, 40), sub_cent=st.booleans(), fine_ev=st.booleans())
def test_columns_drop_by_priority_and_never_cut_a_number(width, ticker, sub_cent, fine_ev):
    cols = layout_columns(width, ticker, sub_cent, fine_ev)
    keys = [c.key for c, _w in cols]
    for c, w in cols:
        if c.key in NUMERIC:  # a number's column is full width or absent ("0.4230" needs 7)
            want = 7 if sub_cent and c.key in ("bid", "ask", "last", "p_hat") else NUMERIC[c.key]
            assert w == (8 if fine_ev and c.key in ("ev_yes", "ev_no") else want)
        if c.key == "ticker":
            assert w >= min(ticker + 1, TICKER_MAX)
    for must in ("ticker", "bid", "ask", "ev_yes", "ev_no", "signal"):
        assert must in keys
    # priority: last goes first, then src, then the title, then p̂, then the age
    if "src" not in keys:
        assert "last" not in keys
    if "title" not in keys:
        assert "last" not in keys and "src" not in keys
    if "p_hat" not in keys:
        assert "title" not in keys
    if "age" not in keys:
        assert "p_hat" not in keys
    if sum(w for _c, w in cols) <= width:
        assert "title" not in keys or dict((c.key, w) for c, w in cols)["title"] >= 8
    # #19 item 8: whatever must stay fits, and then so does every column shown: none is cut at the edge
    if sum(w for c, w in cols if not c.drop) <= width:
        assert sum(w for _c, w in cols) <= width


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40), (160, 50), (200, 50)])
async def test_kalshi_tickers_whole_at_every_width(kengine, tmp_path, size):
    app = desk_app(kengine, tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = screen_text(app)
        table = app.query_one(MarketsTable)
        for t in table.ordered_keys[: table.size.height - 1]:  # the rows on screen
            assert t in text, (size, t)
        assert "…-" not in text and "KXHIGHNY-26NO " not in text
        table = app.query_one(MarketsTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width  # no sideways scroll
        header = table.header_text()
        for label in ("Bid", "Ask", "p̂", "EV Y", "EV N", "Signal", "Age"):
            assert label in header


async def test_v_only_where_it_does_something(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:  # every lower panel in sight
        assert app.check_action("cycle_panel", ()) is False
        assert "v Panel" not in screen_text(app).splitlines()[-1]
        await pilot.resize_terminal(*SIZE)  # the risk caps or the bankroll (#19 item 8)
        await pilot.pause()
        assert app.check_action("cycle_panel", ()) is True
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert app.check_action("cycle_panel", ()) is True
        footer = screen_text(app).splitlines()[-1]
        assert "s Sort" in footer and "v Panel" in footer and "q Quit" in footer  # fits 80 columns


async def test_one_keys_entry_in_the_palette(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert titles.count("Keys") == 1


async def test_help_scrolls_and_fits_80x24(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        box = app.screen.query_one("#help-box").region
        assert box.right <= 80 and box.bottom <= 24
        scroll = app.screen.query_one("#help-scroll")
        assert scroll.max_scroll_y > 0
        await pilot.press("end")
        await pilot.pause()
        assert scroll.scroll_y == scroll.max_scroll_y
        assert "flatten" in screen_text(app).lower() or "on_daily_stop" in screen_text(app)


def test_ev_that_rounds_to_zero_is_never_red_minus_zero():
    class P:
        up, down, dim = "green", "red", "dim"

    assert ev_cell(Decimal("-0.004"), P()) == ("0.00", "dim")
    assert ev_cell(Decimal("-0.006"), P()) == ("-0.01", "red")
    assert ev_cell(Decimal("0.03"), P()) == ("+0.03", "green")
    assert ev_cell(None, P()) == ("—", "dim")


# -- 7. find and inspect -------------------------------------------------------------------------
async def test_slash_filters_by_ticker_or_title_and_esc_clears(kengine, tmp_path):
    app = desk_app(kengine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(MarketsTable)
        await pilot.press("slash", *"highny")
        assert table.ordered_keys == sorted(t for t, *_ in KALSHI_MARKETS if "HIGHNY" in t)
        assert f"filter 'highny': 3/{len(KALSHI_MARKETS)}" in table.border_title
        await pilot.press("ctrl+u", *"lakers")  # a title matches too
        assert table.ordered_keys == ["KXNBAGAME-26NOV27LALBOS-LAL"]
        await pilot.press("enter")  # keeps the filter, back to the table
        assert table.has_focus and table.row_count == 1
        await pilot.press("slash", "escape")
        assert table.row_count == len(KALSHI_MARKETS) and table.has_focus


async def test_sort_column_shows_its_direction(kengine, tmp_path):
    app = desk_app(kengine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(MarketsTable)
        assert "Ticker▲" in table.header_text()
        await pilot.press("s")
        assert "EV Y▼" in table.header_text() and "EV N▼" in table.header_text()
        assert "Ticker▲" not in table.header_text()
        await pilot.press("s")
        assert "Age▲" in table.header_text()


async def test_log_scrolls_and_filters_to_rejections(engine, tmp_path):
    for _ in range(60):
        tick(engine)
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        log = app.query_one(DecisionLog)
        await pilot.press("l")
        assert log.has_focus
        await pilot.pause()
        assert log.max_scroll_y > 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert log.scroll_y > 0
        await pilot.press("o")
        entries = log.entries()
        assert entries and all(e.rejection or e.level == "error" for e in entries)
        assert log.border_subtitle.startswith("rejections only")
        await pilot.press("o")
        assert any(not e.rejection for e in log.entries())


@pytest.mark.parametrize("size, presses", [(SIZE, ()), (NARROW, ("v", "v", "v"))])
async def test_log_shows_fractional_counts_whole(engine, tmp_path, size, presses):
    for _ in range(40):
        tick(engine)
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.press(*presses)  # at 80 columns the log is the fourth lower panel
        await pilot.pause()
        log = app.query_one(DecisionLog)
        shown = [e.what for e in log.entries() if e.who not in ("desk", "event")]
        assert any(len(w) > 9 for w in shown)  # e.g. "YES x40.98": wider than the column's minimum
        text = screen_text(app)
        assert re.search(r"x\d+\.?\d*…", text) is None  # no count cut short
        assert shown[0] in text


async def test_log_rows_take_the_lines_they_render(engine, tmp_path):
    """The log measures rows without rendering them: a long note and a row with a line break
    take the lines rich's table gives them, and the scroll range counts every line. (A note the
    desk takes is one line: a line break in its text is shown as an escape, core/text.py.)"""
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.press("v", "v", "v")
        log = app.query_one(DecisionLog)
        app.note("feed says: " + "word " * 40)
        log.add(LogEntry(0, "desk", "", "two lines:\nthe second", "note"))
        app.note("one line:\nnot two")
        await pilot.pause()
        assert app.notes[-1] == "one line:\\nnot two"
        geometry = log._geometry
        assert geometry is not None
        rows = list(dict.fromkeys(row for row, _k in log._where))
        assert all(log._row_height(r, geometry) == len(log._row_lines(r, geometry)) for r in rows)
        assert log.virtual_size.height == sum(len(log._row_lines(r, geometry)) for r in rows)
        heights = {r.text[:9]: log._row_height(r, geometry) for r in rows if isinstance(r, LogEntry)}
        assert heights["two lines"] == 2 and heights["feed says"] > 2 and heights["one line:"] == 1


async def test_rejected_rows_screen_shows_time_ticker_reason_payload(kengine, tmp_path):
    app = desk_app(kengine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        assert await wait_for(pilot, lambda: isinstance(app.screen, RejectedScreen))
        s = app.screen
        assert s.total == 12 and len(s.rows) == 1  # the same bad row each tick: one record, counted
        row = s.rows[0]
        assert row.ticker == "KXHIGHNY-26NOV27-T55" and "outside [0, 1]" in row.reason and row.count == 12
        assert '"yes_bid_dollars": "1.7000"' in row.payload
        await pilot.pause()
        assert "1.7000" in screen_text(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, RejectedScreen)


async def test_market_detail_shows_close_volume_fee_and_chart(kengine, tmp_path):
    app = desk_app(kengine, tmp_path)
    async with app.run_test(size=NARROW) as pilot:  # at 80x24 the side detail is hidden: a key opens it
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: isinstance(app.screen, MarketScreen))
        info = app.screen.info
        i, (_t, _title, _b, _a, p_hat) = next((i, m) for i, m in enumerate(KALSHI_MARKETS) if m[0] == info.ticker)
        assert info.ticker == app.selected_ticker() and info.fee_multiplier == Decimal("0.07")
        assert info.volume == 1000 * (i + 1) and info.close_ts is not None and len(info.quotes) == 12
        assert info.p_hats and info.p_hats[-1][1] == Decimal(p_hat)
        await pilot.pause()
        text = screen_text(app)
        assert "fee multiplier" in text and f"{1000 * (i + 1):,}" in text and "┃" in text and "─" in text


# -- 4. honest state -------------------------------------------------------------------------------
async def test_feed_down_shows_since_and_alerts_then_recovers(kengine, tmp_path):
    app = desk_app(kengine, tmp_path, bell=True)
    bells = []
    app.bell = lambda: bells.append(1)
    app.alert.bell = app.bell
    async with app.run_test(size=SIZE) as pilot:
        kengine.source.down = True
        tick(kengine)
        app.refresh_view()
        await pilot.pause()
        bar = app.query_one(StatusBar)
        assert bar.has_class("-feed-down") and "FEED DOWN since 00:13:00" in str(bar.render())
        assert [a.kind for a in app.alert.raised] == [al.FEED_DOWN] and bells == [1]
        assert "connection refused (127.0.0.1:8931); gave up after 5" in screen_text(app)  # whole, in the log
        tick(kengine)  # still down: no second alert
        app.refresh_view()
        await pilot.pause()
        assert len(app.alert.raised) == 1
        kengine.source.down = False
        tick(kengine)
        app.refresh_view()
        await pilot.pause()
        assert not bar.has_class("-feed-down") and "FEED DOWN" not in str(bar.render())
        assert [a.kind for a in app.alert.raised] == [al.FEED_DOWN, al.FEED_UP]


async def test_stale_quotes_count_as_feed_down(kengine, tmp_path):
    app = desk_app(kengine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        kengine.source.t += 45_000  # the clock moves on, the quotes do not
        app.refresh_view()
        await pilot.pause()
        assert "FEED DOWN" in str(app.query_one(StatusBar).render())
        assert "45s old (limit 30s)" in app.feed.reason


def test_clock_is_labelled_sim_or_wall_and_zoned():
    assert fmt_clock(1_767_571_200_000, "sim") == "sim 00:00:00 UTC"
    assert fmt_clock(1_767_571_200_000, "kalshi") == "wall 00:00:00 UTC"
    assert fmt_clock(1_767_571_200_000, "replay:x.jsonl").startswith("replay ")


def test_clock_in_the_operators_zone_says_which(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        assert fmt_clock(1_767_571_200_000, "sim", "local") == "sim 01:00:00 CET"
        assert fmt_clock(1_767_571_200_000, "kalshi", "utc") == "wall 00:00:00 UTC"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


async def test_risk_panel_shows_threshold_limits_and_what_the_daily_cap_does(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "Buys when EV" in text and "≥ +0.03" in text
        assert "≤ 30s, ≤ 0.05" in text and "stops new trades" in text
        engine.store.set_control("daily_stop_day", utc_day(engine.source.now_ms()))
        app.refresh_view()
        await pilot.pause()
        text = screen_text(app)
        assert "HIT: no new trades" in text and "until 00:00 UTC; positions held" in text
        assert [a.kind for a in app.alert.raised] == [al.DAILY_STOP]


# -- 5. feedback and alerts ------------------------------------------------------------------------
async def test_kill_from_another_terminal_alerts_but_a_local_kill_does_not(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k")
        await pilot.pause()
        assert app.alert.raised == []
        await pilot.press("r", "y")
        app.service.apply_pending()
        app.refresh_view()
        await pilot.pause()
        send_request(str(engine.store.path), "kill", "operator (cli)")  # `kakashi kill` from another terminal
        app.service.step()
        app.refresh_view()
        await pilot.pause()
        assert [a.kind for a in app.alert.raised] == [al.KILL_EXTERNAL]


async def test_restart_says_how_it_resumed_and_loads_history(engine, tmp_path):
    engine.set_paused(True)
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        log = app.query_one(DecisionLog)
        texts = [e.text for e in log.entries()]
        said = [t for t in texts if t.startswith("resumed: ")]
        assert len(said) == 1  # once, in plain words: state and since when, positions, today, last tick
        v = app.service.view
        assert said[0] == (
            "resumed: PAUSED since 2026-01-05 00:40:00 UTC (by operator); p resumes | "
            f"{len(v.positions)} open positions | today {fmt_signed(v.today_pnl_cc)} "
            f"(daily cap {fmt_cc(v.daily_cap_cc)}) | last tick 2026-01-05 00:40:00 UTC (#40)"
        )
        stored = engine.store.db.execute_sql("SELECT COUNT(*) FROM decisions").fetchone()[0]
        assert stored and sum(1 for e in log.entries() if e.who not in ("desk", "event")) == min(stored, 60)


# -- 6. the log file ---------------------------------------------------------------------------------
async def test_log_file_gets_ticks_decisions_commands_and_alerts(engine, tmp_path):
    log = OperatorLog(tmp_path / "kakashi.log")
    app = desk_app(engine, tmp_path, log=log, autostart=True, interval=0, ticks=30)
    start = engine.tick_count
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.view and app.view.tick == start + 30)
        await pilot.press("p")
    log.close()
    lines = [re.sub(r" run=\w{8} ", " ", ln) for ln in (tmp_path / "kakashi.log").read_text().splitlines()]
    cats = {line.split()[1] for line in lines}
    assert {"TICK", "DECISION", "COMMAND"} <= cats
    assert sum(1 for line in lines if line.split()[1] == "TICK") == 30
    assert any("COMMAND  paused: no new decisions" in line for line in lines)
    assert all(line[23] == "Z" for line in lines)


# -- 1. an unforeseen error: crash log, exit 70 ----------------------------------------------------
async def test_an_unforeseen_error_leaves_a_crash_log_and_exits_70(engine, tmp_path):
    log = OperatorLog(tmp_path / "kakashi.log")
    app = desk_app(engine, tmp_path, log=log)

    def boom():
        raise ZeroDivisionError("a bug in the desk")

    app.action_sort = boom
    with pytest.raises(ZeroDivisionError):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("s")
            await pilot.pause()
    log.close()
    assert app.return_code == 70
    assert app.crash_path is not None and "ZeroDivisionError: a bug in the desk" in app.crash_path.read_text()
    assert re.search(r"ERROR    run=\w{8} desk crashed: ZeroDivisionError", (tmp_path / "kakashi.log").read_text())
    assert app._exit_renderables == []  # no traceback for the operator
    assert app.crash_message.startswith("kakashi: internal error: ZeroDivisionError: a bug in the desk; details in ")
    assert "\n" not in app.crash_message and app.crash_message.endswith("(what was stored is intact)")
    app.crash_path.unlink()


# -- 11. scheduled post-mortems in the desk ----------------------------------------------------------
async def test_the_desk_writes_the_daily_summary_at_the_utc_day_roll(tmp_path):
    from kakashi_tui.trading.config import KakashiConfig, SimSection
    from tests.conftest import make_engine

    e = make_engine(tmp_path / "d.db", cfg=KakashiConfig(sim=SimSection(step_seconds=3600)))
    for _ in range(20):
        tick(e)
    app = desk_app(e, tmp_path, postmortem="weekly")
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(6):  # past midnight UTC on the engine's clock
            tick(e)
        app.refresh_view()
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        day = tmp_path / "reports" / "daily" / "2026-01-05.md"
        assert day.exists() and day.read_text().startswith("2026-01-05 (UTC): equity")
        assert any("summary post-mortem written to" in e.text for e in app.query_one(DecisionLog).entries())
    e.store.close()


# -- 4. the Signal column is the gate's verdict ---------------------------------------------------
async def test_signal_says_what_the_gate_would_do_now(kengine, tmp_path):
    app = desk_app(kengine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        sig = lambda: {m.ticker: m.signal for m in app.view.markets}  # noqa: E731
        assert sig()["KXCPI-26DEC-T0.3"] == "spread"  # an edge the gate refuses: the spread is 0.10
        assert sig()["KXHIGHNY-26NOV27-T45"] == "HELD"
        held = {m.ticker for m in app.view.markets if m.signal == "HELD"}
        assert len(held) == 3 and sig()["KXFEDDECISION-26DEC-H0"] == ""  # no edge: nothing proposed
        # an edge the gate would take: lower the ask of a market with p̂ 0.37 by giving it p̂ 0.60
        await pilot.press("slash", *"lakers", "enter", "b", "ctrl+u", *"0.6", "enter")
        app.service.apply_pending()
        app.refresh_view()
        await pilot.pause()
        assert sig()["KXNBAGAME-26NOV27LALBOS-LAL"] == "BUY YES"
        await pilot.press("p")
        app.refresh_view()
        await pilot.pause()
        assert sig()["KXNBAGAME-26NOV27LALBOS-LAL"] == "paused"
        await pilot.press("p", "k")
        app.service.apply_pending()
        app.refresh_view()
        await pilot.pause()
        assert sig()["KXNBAGAME-26NOV27LALBOS-LAL"] == "halted"
        assert "Buys when EV" in screen_text(app) and "≥ +0.03" in screen_text(app)  # the threshold, on screen


def test_gate_labels_cover_every_refusal():
    from kakashi_tui.core import risk
    from kakashi_tui.trading.view import GATE_LABELS

    reasons = {
        v for k, v in vars(risk).items() if k.isupper() and isinstance(v, str) and not k.startswith(("HARD", "ROUND"))
    }
    assert reasons <= set(GATE_LABELS), reasons - set(GATE_LABELS)


async def test_a_loss_past_the_daily_cap_is_explained(engine, tmp_path):
    engine.store.set_control("daily_stop_day", utc_day(engine.source.now_ms()))
    engine.store.set_control("day_start_equity", engine.equity() + 500_000)  # $50 down on a $30 cap
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        assert app.view.daily_cap_cc < -app.view.today_pnl_cc
        assert "loss past the cap: marks moved after" in screen_text(app)
