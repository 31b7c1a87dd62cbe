"""Pictures of the desk (pytest-textual-snapshot). Deterministic: seeded simulator on a fixed
simulated clock, pinned latency, explicit theme, no animation, no cursor blink."""

from __future__ import annotations

import pytest

from kakashi_tui.engine import utc_day
from tests.tui.conftest import desk_app, desk_engine

WIDE = (120, 40)
NARROW = (80, 24)


@pytest.fixture
def app_factory(tmp_path):
    engines = []

    def make(setup=None, **kw):
        e = desk_engine(tmp_path / f"snap{len(engines)}.db")
        engines.append(e)
        if setup:
            setup(e)
        return desk_app(e, tmp_path, **kw)

    yield make
    for e in engines:
        e.store.close()


def test_dashboard_wide(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=WIDE)


def test_dashboard_narrow(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=NARROW)


def test_narrow_bankroll_panel(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=NARROW, press=["v"])


def test_paused(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=WIDE, press=["p"])


def test_killed(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=WIDE, press=["k"])


def test_daily_cap_hit(snap_compare, app_factory):
    def hit(e):
        e.store.set_control("daily_stop_day", utc_day(e.source.now_ms()))

    assert snap_compare(app_factory(hit), terminal_size=WIDE)


def test_help_screen(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=WIDE, press=["question_mark"])


def test_p_hat_entry(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=WIDE, press=["b", "ctrl+u", "0", ".", "6", "2"])


def test_feed_error(snap_compare, app_factory):
    def fail(e):
        e.last_errors = ("HTTP 503 on GET /markets; gave up after 5 attempts",)

    assert snap_compare(app_factory(fail), terminal_size=WIDE)


def test_flatten_confirmation(snap_compare, app_factory):
    assert snap_compare(app_factory(), terminal_size=WIDE, press=["f"])
