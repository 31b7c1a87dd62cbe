"""The desk with a plan in force (issue #24, 9): its row in the risk panel, and a kill condition
that pauses the engine shows in the status line, the panel and an alert."""

from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.plan import parse_condition, parse_sample
from kakashi_tui.frontends.desk.widgets.status_bar import StatusBar
from tests.conftest import SIM_START_MS, make_engine
from tests.desk.conftest import desk_app
from tests.desk.test_layout import risk_text

SIZE = (120, 40)


async def test_a_kill_condition_pauses_the_desk_and_the_plan_row_says_so(tmp_path):
    db = tmp_path / "desk.db"
    s = Store(db)
    s.add_plan(
        created_ms=SIM_START_MS,
        hypothesis="the oracle beats the market",
        settings="{}",
        beliefs="sim-oracle",
        sample=parse_sample("100 trades"),
        kill=(parse_condition("drawdown > 0.5%"),),
        success=(parse_condition("pnl > 0"),),
    )
    s.close()
    engine = make_engine(db)
    app = desk_app(engine, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            app.service.step()
            app.refresh_view()
            await pilot.pause()
            row = next(r for r in app.view.risk if r.name == "Plan 1")
            assert (row.used, row.limit, row.level) == ("0/100 trades", "on track", "ok")
            assert "Plan 1 0/100 trades Daily cap" in risk_text(app)
            for _ in range(80):
                app.service.step()
                if engine.paused:
                    break
            app.refresh_view()
            await pilot.pause()
            assert engine.paused and app.view.state.startswith("PAUSED (plan 1 kill: drawdown > 0.5% (drawdown ")
            assert app.query_one(StatusBar).has_class("-paused")
            row = next(r for r in app.view.risk if r.name == "Plan 1")
            assert (row.used, row.limit, row.level) == ("FAILED", "drawdown > 0.5%", "error")
            assert "Plan 1 FAILED: drawdown >" in risk_text(app)
            assert app.service.step().decisions == ()  # paused: data flows, no decisions
    finally:
        engine.store.close()
