"""The drawdown stop (risk_limits.md 2a): measured from the marked-equity peak, it halts trading
like the kill switch until the operator re-arms, and the peak restarts there."""

import itertools
from decimal import ROUND_FLOOR
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kakashi_tui.adapters.source import FetchBatch
from kakashi_tui.adapters.store.controls import Control
from kakashi_tui.core import risk
from kakashi_tui.core.risk import RiskLimits
from kakashi_tui.trading.engine import EngineConfig
from kakashi_tui.trading.requests import rearm_offline
from tests.integration.test_engine import fake_engine, row

# Small positions (0.2% worst case each), a 0.5% drawdown stop: three of them marked down
# together can take equity past it while each trade alone clears its headroom.
LIMITS = RiskLimits(max_loss_per_trade_pct=D("0.2"), max_drawdown_pct=D("0.5"))
CFG = EngineConfig(bankroll_cc=1_000_000, limits=LIMITS)
HELD = ("A", "B", "C")
BELIEFS = {t: 0.60 for t in (*HELD, "U")}


def cap_of(peak: int) -> int:  # the test's own rule: floor(peak x 0.5%)
    return int((D(peak) * D("0.5") / 100).to_integral_value(rounding=ROUND_FLOOR))


def marks(bid: str, ask: str, *extra):
    return FetchBatch(rows=[*(row(t, bid=bid, ask=ask, depth=500) for t in HELD), *extra])


def test_a_hand_made_equity_path_trips_at_the_right_tick_and_not_before(db_path):
    path = [
        marks("0.40", "0.45"),  # 1: buys A, B, C
        marks("0.55", "0.57"),  # 2: marked up: a new peak
        marks("0.50", "0.52"),  # 3: down from the peak, inside the cap
        marks("0.47", "0.49"),  # 4: further down, still inside
        marks("0.05", "0.07", row("U")),  # 5: past the cap: halted, U refused
        marks("0.60", "0.62", row("U")),  # 6: recovered, yet still halted until a re-arm
    ]
    e = fake_engine(db_path, path, p=BELIEFS, cfg=CFG)
    reports = [e.tick() for _ in path]
    assert reports[0].fills == 3
    peak, tripped = 0, None
    for i, rep in enumerate(reports[:5], start=1):  # the oracle: the tick equities' running peak
        peak = max(peak, rep.equity_cc)
        if tripped is None and peak - rep.equity_cc >= cap_of(peak):
            tripped = i
    assert tripped == 5
    assert [bool(r.state.startswith("HALTED (drawdown stop")) for r in reports] == [False] * 4 + [True] * 2
    eq5 = reports[4].equity_cc
    peak_before = max(r.equity_cc for r in reports[:4])
    assert e.peak_cc == peak_before
    assert e.drawdown_reason == risk.drawdown_text(peak_before, eq5)
    assert e.drawdown_reason.startswith(f"drawdown stop: equity ${eq5 // 10_000:,}.")
    assert "% below its peak $" in e.drawdown_reason
    assert reports[4].decisions[0].reason == risk.DRAWDOWN_STOP and reports[4].fills == 0
    assert reports[5].decisions[0].reason == risk.DRAWDOWN_STOP and reports[5].fills == 0
    assert not e.daily_stopped()  # it sits beside the daily stop: that one was not hit
    assert e.store.last_event(("drawdown_stop",))[1] == e.drawdown_reason


def test_rearm_restarts_the_peak_and_the_stop_survives_a_restart(db_path):
    e = fake_engine(db_path, [marks("0.40", "0.45"), marks("0.05", "0.07")], p=BELIEFS, cfg=CFG)
    e.tick()
    e.tick()
    reason, peak = e.drawdown_reason, e.peak_cc
    assert reason and peak
    e.store.close()  # (as a kill -9 would leave it: the tick's transaction committed)
    e2 = fake_engine(db_path, [FetchBatch(rows=[row("U")])], p=BELIEFS, cfg=CFG)
    assert (e2.peak_cc, e2.drawdown_reason) == (peak, reason)
    rep = e2.tick()
    assert rep.fills == 0 and rep.decisions[0].reason == risk.DRAWDOWN_STOP
    assert e2.state_label().startswith("HALTED (drawdown stop: equity")
    e2.rearm()
    eq = e2.equity()
    assert (e2.peak_cc, e2.drawdown_reason) == (eq, "")
    assert e2.store.control(Control.PEAK_EQUITY) == eq and e2.store.control(Control.DRAWDOWN_STOP) is None
    e2.source.batches = [FetchBatch(rows=[row("U")])]
    assert e2.tick().fills == 1  # trading again, measured from the new peak
    assert not e2.drawdown_reason


def test_kakashi_rearm_lifts_the_drawdown_stop_and_the_next_tick_sets_the_peak(db_path):
    e = fake_engine(db_path, [marks("0.40", "0.45"), marks("0.05", "0.07")], p=BELIEFS, cfg=CFG)
    e.tick()
    e.tick()
    asked = []
    e.store.close()
    assert rearm_offline(db_path, lambda why: asked.append(why) or True) == "drawdown stop re-armed"
    assert asked[0].startswith("drawdown stop: equity")
    e2 = fake_engine(db_path, [FetchBatch(rows=[row("U")])], p=BELIEFS, cfg=CFG)
    assert (e2.peak_cc, e2.drawdown_reason) == (0, "")
    rep = e2.tick()
    assert rep.fills == 1 and e2.peak_cc > 0


_N = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.lists(
        st.tuples(st.integers(2, 97), st.booleans()),  # (every market's bid in cents, a new market listed)
        min_size=1,
        max_size=10,
    )
)
def test_no_sequence_of_fills_and_marks_leaves_trading_open_past_the_cap(tmp_path, path):
    db = str(tmp_path / f"dd{next(_N)}.db")
    batches = [marks("0.40", "0.45")]
    for i, (bid_pennies, listed) in enumerate(path):
        bid, ask = D(bid_pennies) / 100, D(bid_pennies + 2) / 100
        extra = (row(f"N{i}", bid=str(bid), ask=str(ask), depth=500),) if listed else ()
        batches.append(marks(str(bid), str(ask), *extra))
    e = fake_engine(db, batches, p={**BELIEFS, **{f"N{i}": 0.9 for i in range(len(path))}}, cfg=CFG)
    peak, halted_at = 0, None
    try:
        for tick in range(len(batches)):
            rep = e.tick()
            if halted_at is not None:
                assert rep.fills == 0 and e.drawdown_reason, "traded after the drawdown stop"
            peak = max(peak, rep.equity_cc)
            if peak - rep.equity_cc >= cap_of(peak):  # past the cap on the test's own peak
                assert e.drawdown_reason, f"tick {tick}: equity {rep.equity_cc} past the cap of peak {peak}"
            if e.drawdown_reason and halted_at is None:
                halted_at = tick
    finally:
        e.store.close()
    if halted_at is not None:
        assert all(d.reason == risk.DRAWDOWN_STOP or not d.accepted for d in rep.decisions)


def test_kakashi_status_and_health_say_the_drawdown_stop_halted_trading(capfd, db_path):
    from tests.clirun import in_process

    e = fake_engine(db_path, [marks("0.40", "0.45"), marks("0.05", "0.07")], p=BELIEFS, cfg=CFG)
    e.tick()
    p = in_process(capfd, "--db", str(db_path), "status")
    assert p.returncode == 0, p.stderr
    assert "| drawdown $0.1062 below the peak $100.00" in p.stdout  # (peak: the equity before the fills)
    e.tick()
    reason = e.drawdown_reason
    e.store.close()
    p = in_process(capfd, "--db", str(db_path), "status")
    assert p.returncode == 0, p.stderr
    assert f"| HALTED by the {reason} (until `kakashi rearm`)" in p.stdout
    from kakashi_tui.adapters.store.controls import RunRecord
    from kakashi_tui.trading.health import HALTED, judge

    run = RunRecord(started_ms=1, interval_ms=1000, pid=None, done_ms=None, quit_ms=None, last_tick_wall_ms=2)
    h = judge(run, held=True, now_ms=3, drawdown=reason)
    assert h.code == HALTED and f"HALTED: {reason} (until re-armed)" in h.line
