"""Is the engine on a database healthy? What another process (cron, a supervisor) can tell.

``kakashi status --health`` reads facts a run leaves for others (``controls.RunRecord``): when
it started, its tick interval and process, when it reached its last tick, when it quit cleanly;
the wall time of the last tick written; and whether a process holds the database's writer lock.
``judge`` turns them into one line and an exit code:

- ``healthy: ...`` (0): an engine runs and ticks (paused included: a deliberate state);
- ``not running (last run quit cleanly at T)`` (0), or no run recorded at all (0);
- ``HALTED: ...`` (1): it runs and ticks, but the kill switch is thrown or the daily stop hit;
- ``STALLED since T: ...`` (3): it holds the database and no tick came a few intervals after
  one was due: the rule of ``liveness.assess`` (``Heartbeat.few_ms``), judged from outside;
- ``DEAD: ...`` (4): no process runs the engine, and the last run left no clean-quit marker
  (killed with -9, a crash, a power cut). A run whose engine died while its process still holds
  the file is STALLED: no tick comes.

Exit 2 stays what it is everywhere: a usage error, or no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from kakashi_tui.adapters.store.controls import RunRecord
from kakashi_tui.trading.engine import state_label
from kakashi_tui.trading.liveness import STALLED as LV_STALLED
from kakashi_tui.trading.liveness import Heartbeat, assess

HEALTHY = 0
HALTED = 1
STALLED = 3
DEAD = 4


@dataclass(frozen=True, slots=True)
class Health:
    code: int  # the exit code: HEALTHY, HALTED, STALLED or DEAD
    line: str


def utc(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _secs(ms: int) -> str:
    return f"{ms / 1000:.3g}s" if ms < 10_000 else f"{ms // 1000}s"


def unclean_stop(run: RunRecord) -> str | None:
    """What a run that stopped without a clean quit left, in one line (None: it quit cleanly, or
    no run was recorded): ``the run (started T) stopped without a clean quit; last tick T2``."""
    if run.started_ms is None or run.quit_cleanly:
        return None
    last = run.last_tick_wall_ms
    if last is None:
        tick = "none"
    elif last < run.started_ms:
        tick = f"none in that run (the one before it: {utc(last)})"
    else:
        tick = utc(last)
    pid = f", pid {run.pid}" if run.pid is not None else ""
    return f"the run (started {utc(run.started_ms)}{pid}) stopped without a clean quit; last tick {tick}"


def previous_run_line(run: RunRecord) -> str | None:
    """The line a new run says (and alerts) about the one before it, or None if it quit cleanly:
    ``the previous run (started T) stopped without a clean quit; last tick T2``."""
    text = unclean_stop(run)
    return None if text is None else "the previous " + text.removeprefix("the ")


def judge(
    run: RunRecord,
    *,
    held: bool,
    now_ms: int,
    killed: bool = False,
    kill_reason: str = "",
    daily_stopped: bool = False,
    paused: bool = False,
    drawdown: str = "",
    pause_reason: str = "",
) -> Health:
    """The engine's health from what it recorded and whether a process holds the database's
    writer lock (``held``); ``now_ms`` is the wall clock. ``pause_reason``: why the engine paused
    itself (a plan's kill condition)."""
    state = state_label(killed, kill_reason, daily_stopped, paused, drawdown, pause_reason)
    halted = killed or daily_stopped or bool(drawdown)
    if run.started_ms is None:
        who = "; another Kakashi process holds the database (record, snapshot)" if held else ""
        return Health(HEALTHY, f"not running (no run recorded on this database){who}")
    if run.quit_cleanly:
        who = "; another Kakashi process holds the database (record, snapshot)" if held else ""
        note = f"; {state}" if halted else ""
        return Health(HEALTHY, f"not running (last run quit cleanly at {utc(run.quit_ms)}){note}{who}")
    if not held:  # (the lock is the one fact that tells: a process id may be another namespace's)
        return Health(DEAD, f"DEAD: {unclean_stop(run)}")
    ago = "no tick yet"
    if run.last_tick_wall_ms is not None and run.last_tick_wall_ms >= run.started_ms:
        ago = f"last tick {_secs(max(0, now_ms - run.last_tick_wall_ms))} ago"
    if run.done:
        return Health(HEALTHY, f"healthy: {state}, ran its last tick at {utc(run.done_ms)} (--ticks); {ago}")
    interval_ms = max(0, run.interval_ms or 0)
    since = max(run.started_ms, run.last_tick_wall_ms or 0)  # the last tick, or the start before one
    hb = Heartbeat(
        now_ms=now_ms,
        thread="running",
        phase="waiting",  # from outside, a fetch in flight looks like any other wait: no tick came
        phase_since_ms=since,
        due_ms=since + interval_ms,
        last_tick_ms=run.last_tick_wall_ms,
        interval_s=interval_ms / 1000,
        stale_ms=0,  # (judges a fetch in flight only, which cannot be seen from here)
    )
    live = assess(hb)
    every = f"a tick every {_secs(interval_ms)}" if interval_ms else "ticking flat out"
    pid = f", pid {run.pid}" if run.pid is not None else ""
    if live.level == LV_STALLED:
        return Health(
            STALLED,
            f"STALLED since {utc(live.since_ms)}: {ago} ({every}; late after {_secs(hb.few_ms)}); "
            f"run started {utc(run.started_ms)}{pid}",
        )
    if halted:
        why = [f"kill switch thrown ({kill_reason or 'operator'})"] if killed else []
        why += [f"{drawdown} (until re-armed)"] if drawdown else []
        why += ["daily loss cap hit (no new trades until 00:00 UTC)"] if daily_stopped else []
        why += ["also paused"] if paused else []
        return Health(
            HALTED, f"HALTED: {'; '.join(why)}; the engine ticks, {ago}; run started {utc(run.started_ms)}{pid}"
        )
    return Health(HEALTHY, f"healthy: {state}, {ago} ({every}); run started {utc(run.started_ms)}{pid}")
