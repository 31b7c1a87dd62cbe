"""Issue #19, "A week, sized": the health verdict from what a run recorded (trading/health.py)."""

from __future__ import annotations

import pytest

from kakashi_tui.adapters.store.controls import RunRecord
from kakashi_tui.trading import health as h

T0 = 1_767_600_000_000  # 2026-01-05 08:00:00 UTC


def run(started=T0, interval=500, pid=42, done=None, quit=None, last=None) -> RunRecord:
    return RunRecord(
        started_ms=started, interval_ms=interval, pid=pid, done_ms=done, quit_ms=quit, last_tick_wall_ms=last
    )


@pytest.mark.parametrize(
    "record, held, now, flags, code, start",
    [
        (run(started=None), False, T0, {}, h.HEALTHY, "not running (no run recorded on this database)"),
        (run(quit=T0 + 9_000, last=T0 + 8_000), False, T0 + 60_000, {}, h.HEALTHY, "not running (last run quit"),
        # a clean quit whose kill switch is still thrown: stopped on purpose, the state said
        (run(quit=T0 + 1, last=T0), False, T0, {"killed": True}, h.HEALTHY, "not running (last run quit"),
        (run(last=T0 + 5_000), False, T0 + 6_000, {}, h.DEAD, "DEAD: the run (started 2026-01-05 08:00:00 UTC"),
        # a quit marker older than the start is the run before's: this one died
        (run(quit=T0 - 1, last=T0 + 5_000), False, T0 + 6_000, {}, h.DEAD, "DEAD:"),
        (run(last=T0 + 5_000), True, T0 + 5_100, {}, h.HEALTHY, "healthy: RUNNING, last tick 0.1s ago"),
        (run(last=T0 + 5_000), True, T0 + 5_100, {"paused": True}, h.HEALTHY, "healthy: PAUSED"),
        # three intervals (never under 3 s) after the next tick was due: liveness.assess's rule
        (run(last=T0 + 5_000), True, T0 + 5_000 + 500 + 2_999, {}, h.HEALTHY, "healthy:"),
        (run(last=T0 + 5_000), True, T0 + 5_000 + 500 + 3_000, {}, h.STALLED, "STALLED since 2026-01-05 08:00:05"),
        (run(interval=5_000, last=T0), True, T0 + 5_000 + 14_999, {}, h.HEALTHY, "healthy:"),
        (run(interval=5_000, last=T0), True, T0 + 5_000 + 15_000, {}, h.STALLED, "STALLED since"),
        # started, no tick of its own yet: the start is the last sign of life
        (run(last=T0 - 99_000), True, T0 + 3_499, {}, h.HEALTHY, "healthy: RUNNING, no tick yet"),
        (run(last=None), True, T0 + 3_500, {}, h.STALLED, "STALLED since"),
        (run(last=T0 + 1), True, T0 + 2, {"killed": True, "kill_reason": "cron"}, h.HALTED, "HALTED: kill switch"),
        (run(last=T0 + 1), True, T0 + 2, {"daily_stopped": True}, h.HALTED, "HALTED: daily loss cap hit"),
        # stalled outranks halted: a halted engine still ticks, and this one does not
        (run(last=T0), True, T0 + 60_000, {"killed": True}, h.STALLED, "STALLED"),
        # it ran its --ticks: nothing is due, it waits for q
        (run(done=T0 + 9, last=T0 + 9), True, T0 + 3_600_000, {}, h.HEALTHY, "healthy: RUNNING, ran its last tick"),
        # held by another process (a recorder), the last run having quit cleanly
        (run(quit=T0 + 9), True, T0 + 60_000, {}, h.HEALTHY, "not running (last run quit cleanly"),
    ],
)
def test_health_is_judged_from_the_run_record_and_the_lock(record, held, now, flags, code, start):
    got = h.judge(record, held=held, now_ms=now, **flags)
    assert (got.code, got.line[: len(start)]) == (code, start), got.line
    assert "\n" not in got.line


def test_the_kill_reason_and_the_clean_quit_are_named():
    got = h.judge(run(last=T0), held=True, now_ms=T0 + 10, killed=True, kill_reason="cron stop")
    assert got.line.startswith("HALTED: kill switch thrown (cron stop); the engine ticks, last tick 0.01s ago")
    got = h.judge(run(quit=T0 + 60_000, last=T0), held=False, now_ms=T0, killed=True, kill_reason="x")
    assert got.line == "not running (last run quit cleanly at 2026-01-05 08:01:00 UTC); HALTED (kill switch: x)"


def test_the_previous_run_line_names_its_start_and_last_tick():
    assert h.previous_run_line(run(quit=T0 + 5)) is None
    assert h.previous_run_line(run(started=None)) is None
    assert h.previous_run_line(run(last=T0 + 61_000)) == (
        "the previous run (started 2026-01-05 08:00:00 UTC, pid 42) stopped without a clean quit;"
        " last tick 2026-01-05 08:01:01 UTC"
    )
    assert h.previous_run_line(run(last=T0 - 1_000, pid=None)) == (
        "the previous run (started 2026-01-05 08:00:00 UTC) stopped without a clean quit;"
        " last tick none in that run (the one before it: 2026-01-05 07:59:59 UTC)"
    )
