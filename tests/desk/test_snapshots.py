"""Pictures of the desk (pytest-textual-snapshot). Deterministic: seeded simulator (or a fixed
Kalshi-shaped feed) on a fixed engine clock, pinned latency, explicit theme, no animation, no
cursor blink, UTC. Every dashboard is taken at 80x24, 100x30, 120x40 and 160x50."""

from __future__ import annotations

import pytest

from kakashi_tui.trading.engine import utc_day
from tests.desk.conftest import desk_app, desk_engine, kalshi_engine, tick

SIZES = {"80x24": (80, 24), "100x30": (100, 30), "120x40": (120, 40), "160x50": (160, 50)}
WIDE = (120, 40)
NARROW = (80, 24)


@pytest.fixture
def app_factory(tmp_path):
    engines = []

    def make(setup=None, kalshi=False, **kw):
        db = tmp_path / f"snap{len(engines)}.db"
        e = kalshi_engine(db) if kalshi else desk_engine(db)
        engines.append(e)
        if setup:
            setup(e)
        return desk_app(e, tmp_path, **kw)

    yield make
    for e in engines:
        e.store.close()


@pytest.mark.parametrize("size", SIZES)
def test_dashboard(snap_compare, app_factory, size):
    assert snap_compare(app_factory(), terminal_size=SIZES[size])


@pytest.mark.parametrize("size", SIZES)
def test_kalshi_tickers_whole(snap_compare, app_factory, size):
    """Kalshi's long tickers, whole, at every width; the columns that do not fit are dropped."""
    assert snap_compare(app_factory(kalshi=True), terminal_size=SIZES[size])


def test_narrow_bankroll_panel(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=NARROW, press=["v"])


def test_narrow_risk_panel(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=NARROW, press=["v", "v"])


def test_narrow_log_panel(snap_compare, app_factory):
    assert snap_compare(app_factory(kalshi=True), terminal_size=NARROW, press=["v", "v", "v"])


def test_paused(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=WIDE, press=["p"])


def test_killed(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=WIDE, press=["k"])


def test_daily_cap_hit(snap_compare, app_factory):
    def hit(e):
        e.store.set_control("daily_stop_day", utc_day(e.source.now_ms()))

    assert snap_compare(app_factory(hit), terminal_size=WIDE)


def test_daily_cap_hit_narrow(snap_compare, app_factory):
    """#19 item 8: the daily stop's sentence whole in the risk panel at 80x24 (it was cut after "HIT")."""

    def hit(e):
        e.store.set_control("daily_stop_day", utc_day(e.source.now_ms()))

    assert snap_compare(app_factory(hit), terminal_size=NARROW, press=["v", "v"])


def test_help_screen(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=WIDE, press=["question_mark"])


def test_help_screen_narrow_scrolled(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=NARROW, press=["question_mark", "pagedown", "pagedown"])


def test_p_hat_entry(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=WIDE, press=["b", "ctrl+u", "0", ".", "6", "2"])


def test_p_hat_nan_refused_in_place(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=NARROW, press=["b", "ctrl+u", "n", "a", "n", "enter"])


def test_feed_down(snap_compare, app_factory):
    def die(e):
        e.source.down = True
        tick(e)
        e.last_latency_ms = 12.0

    assert snap_compare(app_factory(die, kalshi=True), terminal_size=WIDE)


def test_feed_error_narrow(snap_compare, app_factory):
    def fail(e):
        e.last_errors = ("HTTP 503 on GET /markets; gave up after 5 attempts",)

    assert snap_compare(app_factory(fail), terminal_size=NARROW)


def test_flatten_confirmation(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=WIDE, press=["f"])


def test_filter_markets(snap_compare, app_factory):
    assert snap_compare(app_factory(kalshi=True), terminal_size=WIDE, press=["slash", *"highny"])


def test_sorted_by_edge(snap_compare, app_factory):
    assert snap_compare(app_factory(kalshi=True), terminal_size=WIDE, press=["s"])


def test_log_rejections_only(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=WIDE, press=["l", "o"])


def test_rejected_rows_screen(snap_compare, app_factory):
    async def open_it(pilot):
        await pilot.press("x")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(app_factory(kalshi=True), terminal_size=WIDE, run_before=open_it)


@pytest.mark.parametrize("size", SIZES)
def test_market_detail_screen(snap_compare, app_factory, size):
    async def open_it(pilot):
        await pilot.press("down", "down", "down", "enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(app_factory(kalshi=True), terminal_size=SIZES[size], run_before=open_it)


def test_key_refused(snap_compare, app_factory):
    """#19 item 10: a refused key is on the status line, with Kalshi's reason where there is room."""

    def refuse(e):
        e.key_refused = "Kalshi refused the request (HTTP 401 on GET /markets/orderbooks): API key revoked"

    assert snap_compare(app_factory(refuse, kalshi=True), terminal_size=WIDE)


@pytest.mark.parametrize("size", SIZES)
def test_performance_summary(snap_compare, app_factory, size):
    """#19: today, this week, since start (realised, unrealised, total, fees, win rate), with `m`."""
    assert snap_compare(app_factory(), terminal_size=SIZES[size], press=["m"])


def test_bankroll_at_100x30(snap_compare, app_factory):
    """#19 item 8: at 100-129 columns `v` puts the bankroll in the risk caps' place."""
    assert snap_compare(app_factory(), terminal_size=SIZES["100x30"], press=["v"])


@pytest.mark.parametrize("size", SIZES)
def test_fills_blotter(snap_compare, app_factory, size):
    """#19: every fill with `t`, newest first; Kalshi's tickers whole (at 80 columns the value gives way)."""

    async def open_it(pilot):
        await pilot.press("t")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(app_factory(kalshi=True), terminal_size=SIZES[size], run_before=open_it)
