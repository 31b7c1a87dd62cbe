"""#19: alerts for each fill and each UTC day's summary on the desk. They come from the service's
reports (a fill) and its day roll (a summary), through the desk's Alerter: notification, log file
and a real webhook on loopback; never the bell. The expected messages are read back from the
database (tests/integration/test_notices.py)."""

from __future__ import annotations

from kakashi_tui.adapters import alerts as al
from kakashi_tui.trading.config import KakashiConfig, SimSection
from tests.conftest import make_engine
from tests.desk.conftest import desk_app
from tests.desk.test_pilot import wait_for
from tests.integration.test_alerts_log import _Hook, hook_server  # noqa: F401 - a fixture
from tests.integration.test_notices import expected_fill_alerts, expected_summary


class _Desk:
    """The desk with its bell counted (the alerter holds the bound method: replaced on both)."""

    @staticmethod
    def make(engine, tmp_path, **kw):
        app = desk_app(engine, tmp_path, bell=True, **kw)
        app.bells = []  # type: ignore[attr-defined]
        app.alert.bell = lambda: app.bells.append(1)  # type: ignore[attr-defined]
        return app


async def test_each_fill_and_the_day_summary_are_alerts_with_the_webhook_and_no_bell(tmp_path, hook_server):  # noqa: F811
    """An hour a tick: the first day ends at tick 24. Each fill is one alert (desk notification, log,
    webhook) and the day's summary one more, with the ledger's figures; none rings the bell."""
    db = tmp_path / "d.db"
    e = make_engine(db, cfg=KakashiConfig(sim=SimSection(step_seconds=3600)))
    app = _Desk.make(e, tmp_path, webhook=hook_server)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(30):
                app.service.step()
            fills = expected_fill_alerts(db)
            assert fills
            assert await wait_for(pilot, lambda: len(app.alert.raised) >= len(fills) + 1)
            app.alert.webhook.flush()
            raised = [(a.kind, a.message, a.severity) for a in app.alert.raised]
            day = expected_summary(db, "2026-01-05")
            assert [r for r in raised if r[0] == al.FILL] == [(al.FILL, m, "information") for m in fills]
            assert [r for r in raised if r[0] == al.DAILY_SUMMARY] == [(al.DAILY_SUMMARY, day, "information")]
            assert app.bells == []  # type: ignore[attr-defined]
            titles = {n.title for n in app._notifications}
            assert {"Fill", "Daily summary"} <= titles
            sent = [(b["kind"], b["message"], b["severity"]) for _t, b in _Hook.received]
            assert sent == raised
            # the decision log has each paper order's fill under its decision: decided and filled prices
            from kakashi_tui.frontends.desk.widgets.decision_log import DecisionLog

            logged = [e for e in app.query_one(DecisionLog).entries() if e.what.startswith("FILL x")]
            assert len(logged) == len(fills) and all(" decided @<=" in e.text and " filled @" in e.text for e in logged)
    finally:
        app.service.stop()
        e.store.close()


async def test_fill_alerts_can_be_turned_off(tmp_path, hook_server):  # noqa: F811
    db = tmp_path / "d.db"
    e = make_engine(db, cfg=KakashiConfig(sim=SimSection(step_seconds=3600)))
    app = _Desk.make(e, tmp_path, webhook=hook_server, fill_alerts=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(30):
                app.service.step()
            assert expected_fill_alerts(db)  # there were fills ...
            assert await wait_for(pilot, lambda: len(app.alert.raised) >= 1)
            await pilot.pause()
            app.alert.webhook.flush()
            assert [a.kind for a in app.alert.raised] == [al.DAILY_SUMMARY]  # ... and only the summary
            assert [b["kind"] for _t, b in _Hook.received] == [al.DAILY_SUMMARY]
    finally:
        app.service.stop()
        e.store.close()
