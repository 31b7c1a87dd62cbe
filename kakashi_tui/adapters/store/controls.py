"""The control rows (kill switch, pause, the day, the simulator's checkpoint...): one typed value
each, stored as text, read back by type, and refused as corrupt when a hand edit broke one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from kakashi_tui.adapters.store.rows import _INT64, corrupt
from kakashi_tui.core.rowrules import MAX_TS_MS


class Control(StrEnum):
    """The keys of the control table; ``CONTROL_TYPES`` says what each value is."""

    SCHEMA_VERSION = "schema_version"
    KILL_SWITCH = "kill_switch"
    KILL_REASON = "kill_reason"
    PAUSED = "paused"
    # Why trading is paused when the engine paused it itself (a plan's kill condition); "" or
    # absent: the operator's pause, or none. A resume clears it.
    PAUSE_REASON = "pause_reason"
    DAY = "day"
    DAY_START_EQUITY = "day_start_equity"
    DAILY_STOP_DAY = "daily_stop_day"
    # The drawdown stop (risk_limits.md): the marked-equity peak it measures from, and why it
    # halted trading ("" or absent: it has not), kept until the operator re-arms.
    PEAK_EQUITY = "peak_equity"
    DRAWDOWN_STOP = "drawdown_stop"
    TICK_COUNT = "tick_count"
    SIM_SEED = "sim_seed"
    SIM_START_MS = "sim_start_ms"
    SIM_MARKETS = "sim_markets"
    SIM_STEP_MS = "sim_step_ms"
    SIM_TICK = "sim_tick"
    SIM_BRACKET_EVENTS = "sim_bracket_events"  # (v8)
    # The run on this database, for another process (``kakashi status --health``): when it began
    # (wall ms), its tick interval, its process, when it reached its last tick (``--ticks``), and
    # when it quit cleanly (absent while it runs, and after a run that died or was kill -9'd).
    RUN_STARTED_MS = "run_started_ms"
    RUN_INTERVAL_MS = "run_interval_ms"
    RUN_PID = "run_pid"
    RUN_DONE_MS = "run_done_ms"
    RUN_QUIT_MS = "run_quit_ms"


ControlValue = bool | int | str


CONTROL_TYPES: dict[Control, type] = {
    Control.SCHEMA_VERSION: int,
    Control.KILL_SWITCH: bool,
    Control.KILL_REASON: str,
    Control.PAUSED: bool,
    Control.PAUSE_REASON: str,
    Control.DAY: str,
    Control.DAY_START_EQUITY: int,
    Control.DAILY_STOP_DAY: str,
    Control.PEAK_EQUITY: int,
    Control.DRAWDOWN_STOP: str,
    Control.TICK_COUNT: int,
    Control.SIM_SEED: int,
    Control.SIM_START_MS: int,
    Control.SIM_MARKETS: int,
    Control.SIM_STEP_MS: int,
    Control.SIM_TICK: int,
    Control.SIM_BRACKET_EVENTS: int,
    Control.RUN_STARTED_MS: int,
    Control.RUN_INTERVAL_MS: int,
    Control.RUN_PID: int,
    Control.RUN_DONE_MS: int,
    Control.RUN_QUIT_MS: int,
}


def control_text(key: Control, value: ControlValue) -> str:
    """A typed control value as stored (bools as 1/0); refuses a value of the wrong type."""
    want = CONTROL_TYPES[key]
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise TypeError(f"control {key.value} takes {want.__name__}, not {type(value).__name__}")
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def control_value(key: Control, text: str | None) -> ControlValue | None:
    """A stored control value back as its type (None when unset or blank)."""
    if text is None or text == "":
        return None
    want = CONTROL_TYPES[key]
    if want is bool:
        return text == "1"
    if want is int:
        try:
            return int(text)
        except ValueError:  # edited since the open-time check (check_control_rows)
            raise corrupt("control", repr(key.value), f"value {text[:40]!r} is not a whole number") from None
    return text


_CONTROL_BY_NAME: dict[str, type] = {k.value: t for k, t in CONTROL_TYPES.items()}

#: The whole numbers Kakashi can have stored (the simulator's as its config allows: 1..5,000
#: markets, a step of up to a day); a value outside is a hand edit that would crash or stall the
#: next start (a simulator of 0 or 10^9 markets, a clock past year 9999, 2^63 ticks to replay).
CONTROL_RANGES: dict[str, range] = {
    Control.TICK_COUNT.value: range(0, 2**53),
    Control.SIM_TICK.value: range(0, 2**53),
    Control.SIM_MARKETS.value: range(1, 5_001),
    Control.SIM_STEP_MS.value: range(1, 86_400_000 + 1),
    Control.SIM_BRACKET_EVENTS.value: range(0, 1_001),
    Control.SIM_START_MS.value: range(1, MAX_TS_MS + 1),
}


def check_control_rows(con: sqlite3.Connection) -> None:
    """Every control row is one Kakashi writes: a known key holding a value of its type
    (StoreError "corrupt database" otherwise), so later reads can trust them."""
    for key, value in con.execute("SELECT key, value FROM control"):
        want = _CONTROL_BY_NAME.get(key) if isinstance(key, str) else None
        if want is None:
            raise corrupt("control", repr(key)[:40], "unknown key")
        if not isinstance(value, str):
            raise corrupt("control", repr(key), f"value {str(value)[:40]!r} is not text")
        if want is bool and value not in ("", "0", "1"):
            raise corrupt("control", repr(key), f"value {value[:40]!r} is not 0 or 1")
        if want is int and value != "":
            try:
                n = int(value)
            except ValueError:
                n = None
            if n is None or n not in _INT64:
                raise corrupt("control", repr(key), f"value {value[:40]!r} is not a whole number")
            if (ok := CONTROL_RANGES.get(key)) is not None and n not in ok:
                raise corrupt("control", repr(key), f"value {value[:40]} is outside {ok.start}..{ok.stop - 1}")
    sim = dict(
        con.execute(
            "SELECT key, CAST(value AS INTEGER) FROM control WHERE key IN (?, ?, ?) AND value != ''",
            (Control.SIM_START_MS.value, Control.SIM_STEP_MS.value, Control.SIM_TICK.value),
        ).fetchall()
    )
    if len(sim) == 3 and sim["sim_start_ms"] + sim["sim_tick"] * sim["sim_step_ms"] > MAX_TS_MS:
        raise corrupt("control", "'sim_tick'", f"the simulator's clock at tick {sim['sim_tick']} is past year 9999")
    if len(sim) == 3 and (last := last_sim_pass(con, sim["sim_start_ms"], sim["sim_step_ms"])) is not None:
        if sim["sim_tick"] > last + SIM_TICK_SLACK:
            raise corrupt(
                "control",
                "'sim_tick'",
                f"tick {sim['sim_tick']} is ahead of the simulator's last recorded pass (tick {last}): "
                f"a restart would replay {sim['sim_tick'] - last} steps",
            )


#: How far the simulator's stored tick may run ahead of the newest record its passes left (a
#: tick row, a quote, a market change). A pass records at least one of them unless every market
#: it shows is in a quiet spell (at most ``sim.QUIET_MAX_STEPS`` steps), so 16 is generous.
#: Restarting replays every step up to the stored tick (the random walk has no shortcut), so a
#: hand-edited 10^8 would stall start-up for hours: it is refused instead.
SIM_TICK_SLACK = 16


def last_sim_pass(con: sqlite3.Connection, start_ms: int, step_ms: int) -> int | None:
    """The simulator's tick at the newest time its passes recorded (the ticks, the quotes and the
    markets tables, each read by its newest row), or None before the tables exist. 0 when nothing
    is recorded yet. Each read is one index lookup or a scan of the markets table (small)."""
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"ticks", "snapshots", "markets"} <= tables:
        return None
    newest = [
        con.execute("SELECT MAX(ts) FROM ticks").fetchone()[0],
        con.execute("SELECT MAX(ts) FROM snapshots").fetchone()[0],
        con.execute("SELECT MAX(updated_ts) FROM markets").fetchone()[0],
    ]
    times = [t for t in newest if isinstance(t, int)]
    if not times or max(times) <= start_ms:
        return 0
    return (max(times) - start_ms) // step_ms


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What the last run started on a database left in it (wall ms throughout; None: not recorded)."""

    started_ms: int | None
    interval_ms: int | None
    pid: int | None
    done_ms: int | None  # it reached its last tick (``--ticks``) and ticks no more
    quit_ms: int | None  # it quit cleanly (desk quit, headless finish, SIGTERM)
    last_tick_wall_ms: int | None  # the wall time of the last tick written (any run's)

    @property
    def quit_cleanly(self) -> bool:
        return self.quit_ms is not None and self.started_ms is not None and self.quit_ms >= self.started_ms

    @property
    def done(self) -> bool:
        return self.done_ms is not None and self.started_ms is not None and self.done_ms >= self.started_ms


_RUN_KEYS = (Control.RUN_STARTED_MS, Control.RUN_INTERVAL_MS, Control.RUN_PID, Control.RUN_DONE_MS, Control.RUN_QUIT_MS)


def read_run(con: sqlite3.Connection) -> RunRecord:
    """The run record from any connection (the writer's, or a read-only one)."""
    marks = ", ".join("?" * len(_RUN_KEYS))
    got = dict(con.execute(f"SELECT key, value FROM control WHERE key IN ({marks})", [k.value for k in _RUN_KEYS]))
    v = {k: control_value(k, got.get(k.value)) for k in _RUN_KEYS}
    n = {k: x if isinstance(x, int) and not isinstance(x, bool) else None for k, x in v.items()}
    row = con.execute("SELECT wall_ms FROM ticks ORDER BY tick DESC LIMIT 1").fetchone()
    wall = row[0] if row is not None and isinstance(row[0], int) else None
    return RunRecord(
        started_ms=n[Control.RUN_STARTED_MS],
        interval_ms=n[Control.RUN_INTERVAL_MS],
        pid=n[Control.RUN_PID],
        done_ms=n[Control.RUN_DONE_MS],
        quit_ms=n[Control.RUN_QUIT_MS],
        last_tick_wall_ms=wall,
    )
