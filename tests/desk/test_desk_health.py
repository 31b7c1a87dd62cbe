"""Issue #19, "A week, sized": the desk records a clean quit, and alerts when the run before it
stopped without one (the same line as a headless run: frontends/journal.py)."""

from __future__ import annotations

from kakashi_tui.adapters import alerts as al
from kakashi_tui.frontends.desk.widgets.decision_log import DecisionLog
from kakashi_tui.trading.service import TradingService
from tests.desk.conftest import desk_app
from tests.desk.test_pilot import wait_for

SIZE = (120, 40)


async def test_the_desk_alerts_on_an_unclean_previous_run_and_quits_cleanly(engine, tmp_path):
    crashed = TradingService(engine, interval=0.05, max_ticks=2)
    crashed.start()  # a run that ends without a clean quit (as run_desk's stop after a crash)
    assert crashed.finished.wait(30)
    crashed.stop()
    assert not engine.store.run_record().quit_cleanly
    app = desk_app(engine, tmp_path, autostart=True, interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.view is not None)
        raised = [a for a in app.alert.raised if a.kind == al.UNCLEAN_STOP]
        assert len(raised) == 1 and raised[0].severity == "error"
        assert raised[0].message.startswith("the previous run (started ")
        assert "stopped without a clean quit; last tick " in raised[0].message
        assert any(e.text == raised[0].message for e in app.query_one(DecisionLog).entries())
        await app._stop_and_exit()
    record = engine.store.run_record()
    assert record.quit_cleanly and record.quit_ms is not None and record.started_ms is not None


async def test_no_alert_after_a_clean_quit(engine, tmp_path):
    first = TradingService(engine, interval=0.05, max_ticks=1)
    first.start()
    assert first.finished.wait(30)
    first.stop(clean=True)
    app = desk_app(engine, tmp_path, autostart=True, interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.view is not None)
        assert not [a for a in app.alert.raised if a.kind == al.UNCLEAN_STOP]
        await app._stop_and_exit()
