"""The control rows (kill switch, pause, the day, the simulator's checkpoint...): one typed value
each, stored as text, read back by type, and refused as corrupt when a hand edit broke one.
"""

from __future__ import annotations

import sqlite3
from enum import StrEnum

from kakashi_tui.adapters.store.rows import _INT64, corrupt
from kakashi_tui.core.models import MAX_TS_MS


class Control(StrEnum):
    """The keys of the control table; ``CONTROL_TYPES`` says what each value is."""

    SCHEMA_VERSION = "schema_version"
    KILL_SWITCH = "kill_switch"
    KILL_REASON = "kill_reason"
    PAUSED = "paused"
    DAY = "day"
    DAY_START_EQUITY = "day_start_equity"
    DAILY_STOP_DAY = "daily_stop_day"
    TICK_COUNT = "tick_count"
    SIM_SEED = "sim_seed"
    SIM_START_MS = "sim_start_ms"
    SIM_MARKETS = "sim_markets"
    SIM_STEP_MS = "sim_step_ms"
    SIM_TICK = "sim_tick"


ControlValue = bool | int | str


CONTROL_TYPES: dict[Control, type] = {
    Control.SCHEMA_VERSION: int,
    Control.KILL_SWITCH: bool,
    Control.KILL_REASON: str,
    Control.PAUSED: bool,
    Control.DAY: str,
    Control.DAY_START_EQUITY: int,
    Control.DAILY_STOP_DAY: str,
    Control.TICK_COUNT: int,
    Control.SIM_SEED: int,
    Control.SIM_START_MS: int,
    Control.SIM_MARKETS: int,
    Control.SIM_STEP_MS: int,
    Control.SIM_TICK: int,
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
