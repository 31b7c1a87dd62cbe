"""Reads of a Kakashi database from outside the engine: ``kakashi status``, the report, the
replay of an earlier run. Each opens its own read-only connection (WAL: it never blocks the
engine and the engine never blocks it) and never writes. The writer's own reads live on
``Store``; the schema lives in ``store``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kakashi_tui.adapters.closing import Candles, closing_line, closing_quote
from kakashi_tui.adapters.store.chain import read_head
from kakashi_tui.adapters.store.controls import Control, RunRecord, check_control_rows, control_value, read_run
from kakashi_tui.adapters.store.migrations import SCHEMA_VERSION
from kakashi_tui.adapters.store.rows import (
    account_of,
    checked_tick_ts,
    corrupt,
    read_fee_terms,
    read_latest_snapshot,
    read_ledger,
    refuse_special_file,
    tick_from_row,
    typed,
    verify_ledger,
)
from kakashi_tui.adapters.store.schema import foreign_object
from kakashi_tui.core.errors import StoreError
from kakashi_tui.core.fees import FeeSchedule
from kakashi_tui.core.ledger import Account, equity_cc
from kakashi_tui.core.markout import market_stop
from kakashi_tui.core.models import Position
from kakashi_tui.core.plan import Plan, PlanError, PlanTrade, Sample, conditions_of

__all__ = [
    "connect_readonly",
    "read_ledger",
    "verify_ledger",
    "read_latest_snapshot",
    "Status",
    "read_status",
    "last_tick_ts",
    "daily_stop_day",
    "daily_stop_hit",
    "writer_lock_held",
    "RunRecord",
    "read_run",
    "DiskUse",
    "disk_use",
    "first_ledger_ts",
    "engine_clock",
    "tick_rows",
    "fill_rows",
    "control_events",
    "outcome_rows",
    "p_hat_at",
    "quote_at",
    "entry_rows",
    "first_decisions",
    "closing_quote",
    "markout_fill_rows",
    "band_orders",
    "band_fills",
    "band_outcomes",
    "quote_as_of",
    "refused_decisions",
    "snapshot_history",
    "estimates_since",
    "rejected_row_records",
    "blotter_rows",
    "recent_decision_rows",
    "recent_events",
    "initial_deposit",
    "market_rows",
    "market_data_rows",
    "traded_tickers",
    "ruin_trade_rows",
    "plans",
    "latest_plan",
    "plan_tickers",
    "plan_settled_count",
    "plan_trades",
    "plan_ticks",
    "plan_start_ts",
]


def connect_readonly(db: str | Path) -> sqlite3.Connection:
    """A read-only connection to an existing Kakashi database (one clear error otherwise)."""
    path = Path(db)
    if not path.exists():
        raise StoreError(f"no database at {path}", 2)
    refuse_special_file(path)  # a pipe would hang SQLite's open
    try:
        con = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=5)
        con.execute("SELECT count(*) FROM ledger").fetchone()
        con.execute("SELECT count(*) FROM control").fetchone()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"database {path} is unreadable or not a Kakashi database ({e})", 2) from None
    if (planted := foreign_object(con)) is not None:  # (a view named ledger would stand in for it)
        con.close()
        raise StoreError(f"{path} holds {planted}, which Kakashi never creates; left untouched", 2)
    row = con.execute("SELECT value FROM control WHERE key = ?", (Control.SCHEMA_VERSION.value,)).fetchone()
    version = row[0] if row else None
    if version is not None and str(version).isdigit() and int(version) < SCHEMA_VERSION:
        con.close()  # a reader never migrates: the writer does, on open (data_schema.md)
        raise StoreError(
            f"database {path} has schema version {version}, older than this Kakashi's "
            f"{SCHEMA_VERSION}; open it once with `kakashi run --db {path}` to migrate it",
            2,
        )
    if version is not None and str(version).isdigit() and int(version) > SCHEMA_VERSION:
        con.close()  # its rows may mean what this code cannot know: refused, as the writer does
        raise StoreError(
            f"{path} has schema version {version}, newer than this Kakashi ({SCHEMA_VERSION}); "
            "upgrade Kakashi. Left untouched",
            2,
        )
    try:
        check_control_rows(con)  # a hand-edited control row: "corrupt database", exit 1
    except StoreError:
        con.close()
        raise
    return con


@dataclass(frozen=True)
class Status:
    account: Account
    equity_cc: int
    positions: tuple[Position, ...]
    kill_switch: bool
    kill_reason: str
    paused: bool
    pending_requests: int
    ledger_entries: int
    ledger_head: bool  # a head file beside the database (so a deleted tail would be seen)


def marked_equity_cc(
    con: sqlite3.Connection, acct: Account, fees: FeeSchedule | None = None, now_ms: int | None = None
) -> int:
    """``acct``'s equity now, each open position marked (ledger.mark_cc) at its market's latest
    stored quote (none: worth zero) and at the fee terms the engine charges there (its stored
    market row through the config's ``fees``, at ``now_ms``: the engine's clock at its last
    tick when not given): ``kakashi status``'s and the report's, read the one way, equal to the
    engine's own equity."""
    fees = fees or FeeSchedule()
    open_ = acct.open_positions()
    marks = {p.ticker: s for p in open_ if (s := read_latest_snapshot(con, p.ticker)) is not None}
    terms = {p.ticker: read_fee_terms(con, p.ticker, fees) for p in open_}
    if now_ms is None:
        now_ms = last_tick_ts(con) or 0
    return equity_cc(acct, marks, terms.__getitem__, now_ms)


def read_status(con: sqlite3.Connection, db: str | Path, fees: FeeSchedule | None = None) -> Status:
    """Bankroll, positions and control state, as ``kakashi status`` shows them, from a ledger
    verified first (its chain and head, reconciled with fills, results and the first deposit);
    positions marked at the config's ``fees`` (``marked_equity_cc``)."""
    entries = verify_ledger(con, db)
    acct = account_of(entries)
    ctl = dict(
        con.execute(
            "SELECT key, value FROM control WHERE key IN (?, ?, ?)",
            (Control.KILL_SWITCH.value, Control.KILL_REASON.value, Control.PAUSED.value),
        )
    )
    try:
        pending = con.execute("SELECT COUNT(*) FROM requests WHERE applied_tick IS NULL").fetchone()[0]
    except sqlite3.OperationalError:  # a database from before requests existed
        pending = 0
    return Status(
        account=acct,
        equity_cc=marked_equity_cc(con, acct, fees),
        positions=tuple(acct.open_positions()),
        kill_switch=bool(control_value(Control.KILL_SWITCH, ctl.get(Control.KILL_SWITCH.value))),
        kill_reason=str(ctl.get(Control.KILL_REASON.value) or ""),
        paused=bool(control_value(Control.PAUSED, ctl.get(Control.PAUSED.value))),
        pending_requests=pending,
        ledger_entries=len(entries),
        ledger_head=read_head(db) is not None,
    )


def last_tick_ts(con: sqlite3.Connection) -> int | None:
    """The engine-clock time of the last tick written (None before the first); a time a hand
    edit broke is a corrupt database."""
    return checked_tick_ts("(latest)", con.execute("SELECT MAX(ts) FROM ticks").fetchone()[0])


def daily_stop_day(con: sqlite3.Connection) -> Any:
    """The stored UTC day the daily loss cap was last hit (None when never)."""
    row = con.execute("SELECT value FROM control WHERE key = ?", (Control.DAILY_STOP_DAY.value,)).fetchone()
    return row[0] if row else None


def daily_stop_hit(con: sqlite3.Connection) -> bool:
    """The daily loss cap was hit on the engine's current day (the UTC day of its last tick)."""
    from datetime import UTC, datetime

    last = last_tick_ts(con)
    if last is None:
        return False
    return daily_stop_day(con) == datetime.fromtimestamp(last / 1000, tz=UTC).strftime("%Y-%m-%d")


def drawdown_stop(con: sqlite3.Connection) -> tuple[int, str]:
    """(the marked-equity peak the drawdown stop measures from, 0 before the first tick; why it
    halted trading, "" when it has not): the engine's stored controls."""
    keys = (Control.PEAK_EQUITY, Control.DRAWDOWN_STOP)
    got = dict(con.execute("SELECT key, value FROM control WHERE key IN (?, ?)", [k.value for k in keys]))
    peak = control_value(Control.PEAK_EQUITY, got.get(Control.PEAK_EQUITY.value))
    reason = control_value(Control.DRAWDOWN_STOP, got.get(Control.DRAWDOWN_STOP.value))
    return (peak if isinstance(peak, int) and not isinstance(peak, bool) else 0), str(reason or "")


def writer_lock_held(db: str | Path) -> bool:
    """Whether a process holds the database's writer lock (an engine, a recorder: ``Store``
    flocks the file for as long as it writes). Takes nothing: a shared lock tried and let go."""
    import fcntl
    import os

    fd = os.open(db, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


#: ``disk_use`` reads the cadence from this many latest ticks.
RECENT_TICKS = 1000


@dataclass(frozen=True)
class DiskUse:
    file_bytes: int  # the database file
    wal_bytes: int  # its write-ahead log (checkpointed back into the file as it goes)
    used_bytes: int  # the file's pages that hold data (a pruned file keeps its free pages for reuse)
    ticks: int  # the last tick's number: every tick the database has taken
    tick_gap_ms: float | None  # the median wall time between the latest ticks (None: fewer than two)

    @property
    def bytes_per_tick(self) -> float | None:
        return self.used_bytes / self.ticks if self.ticks else None

    @property
    def bytes_per_day(self) -> float | None:
        """What a day at the latest ticks' pace adds: bytes per tick (the file's own average, every
        table and index in its real share) x ticks a day (the median gap between the latest ticks,
        so stops between runs and a restart's pause do not count as time)."""
        if self.bytes_per_tick is None or not self.tick_gap_ms:
            return None
        return self.bytes_per_tick * 86_400_000 / self.tick_gap_ms


def disk_use(con: sqlite3.Connection, db: str | Path) -> DiskUse:
    import statistics

    path = Path(db)
    wal = Path(f"{path}-wal")
    page = con.execute("PRAGMA page_size").fetchone()[0]
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    free = con.execute("PRAGMA freelist_count").fetchone()[0]
    last = con.execute("SELECT MAX(tick) FROM ticks").fetchone()[0]
    walls = [
        w
        for (w,) in con.execute("SELECT wall_ms FROM ticks ORDER BY tick DESC LIMIT ?", (RECENT_TICKS,))
        if isinstance(w, int)
    ]
    gaps = [a - b for a, b in zip(walls, walls[1:])]
    gap: float | None = None
    if gaps:
        gap = float(statistics.median(gaps))
        if gap <= 0:  # ticks faster than the clock's millisecond: the span's mean instead
            gap = (walls[0] - walls[-1]) / len(gaps) or None
    return DiskUse(
        file_bytes=path.stat().st_size,
        wal_bytes=wal.stat().st_size if wal.exists() else 0,
        used_bytes=(pages - free) * page,
        ticks=last if isinstance(last, int) else 0,
        tick_gap_ms=gap,
    )


# -- the report's reads (kakashi report, the scheduled post-mortems) -------------------------
# Each returns the stored rows as they are: the caller checks every value it trusts (a row
# edited by hand becomes a breach or a rejected record, never a crash).

#: The control events the report lists and draws its kill-switch and daily-stop windows from:
#: every stop of trading (the drawdown stop and a plan's kill condition too, issue #24) and what
#: ended or followed it.
REPORT_EVENT_KINDS = (
    "kill_switch",
    "rearm",
    "daily_stop",
    "flatten",
    "daily_flatten",
    "drawdown_stop",
    "drawdown_rearm",
    "plan_kill",
)


def first_ledger_ts(con: sqlite3.Connection) -> int | None:
    """When the database's first ledger entry was written (None when the ledger is empty)."""
    row = con.execute("SELECT MIN(ts) FROM ledger").fetchone()
    return row[0] if row else None


#: What the engine's clock was for a database's run (``engine_clock``).
CLOCK_SIMULATED = "simulated"  # the simulator's own clock
CLOCK_REPLAYED = "replayed"  # the recorded data's times (a replay)
CLOCK_WALL = "wall"  # the wall clock: a live run on Kalshi's data

#: A live tick's engine time is read a fetch away from its wall time: within this, it is the wall clock.
WALL_CLOCK_SLACK_MS = 300_000


def engine_clock(con: sqlite3.Connection) -> str:
    """Whose time the run's engine kept: a simulator's (its seed is stored), the wall clock (every
    tick written within minutes of its engine time) or a replay's recorded times."""
    if con.execute("SELECT 1 FROM control WHERE key = ?", (Control.SIM_SEED.value,)).fetchone():
        return CLOCK_SIMULATED
    off = con.execute("SELECT 1 FROM ticks WHERE ABS(ts - wall_ms) > ? LIMIT 1", (WALL_CLOCK_SLACK_MS,)).fetchone()
    return CLOCK_REPLAYED if off else CLOCK_WALL


def tick_rows(con: sqlite3.Connection) -> list[tuple[int, int, int]]:
    """Every tick as (ts, equity_cc, cash_cc), in tick order, each checked (a corrupt database
    otherwise: the equity curve is a figure the report trusts)."""
    return [tick_from_row(*r) for r in con.execute("SELECT tick, ts, equity_cc, cash_cc FROM ticks ORDER BY tick")]


def fill_rows(con: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every fill with the decision that approved it, in order: (id, ts, ticker, side, action,
    contracts_hundredths, requested_hundredths, value_cc, fee_cc, ev, worst_case_cc, equity_cc)."""
    names = (
        "id, ts, ticker, side, action, contracts_hundredths, requested_hundredths, value_cc, fee_cc, decision ev,"
        " decision worst_case_cc, decision equity_cc"
    )
    return [
        typed("fills", r, "itsssiiiiFII", names)
        for r in con.execute(
            "SELECT f.id, f.ts, f.ticker, f.side, f.action, f.contracts_hundredths, f.requested_hundredths,"
            " f.value_cc, f.fee_cc, d.ev, d.worst_case_cc, d.equity_cc FROM fills f LEFT JOIN decisions d"
            " ON d.id = f.decision_id ORDER BY f.id"
        )
    ]


def control_events(con: sqlite3.Connection) -> list[tuple[Any, Any, Any]]:
    """The kill switch, re-arm, daily stop, flatten, drawdown stop and re-arm and plan kill events
    (``REPORT_EVENT_KINDS``) as (ts, kind, detail), in order."""
    marks = ", ".join("?" * len(REPORT_EVENT_KINDS))
    return [
        typed("events", r, "itss", "id, ts, kind, detail")[1:]
        for r in con.execute(
            f"SELECT id, ts, kind, detail FROM events WHERE kind IN ({marks}) ORDER BY id", REPORT_EVENT_KINDS
        )
    ]


def outcome_rows(con: sqlite3.Connection) -> list[tuple[Any, Any, Any]]:
    """Every booked outcome as (ticker, result, ts), in time order."""
    return [
        typed("outcomes", r, "sst", "ticker, result, ts")
        for r in con.execute("SELECT ticker, result, ts FROM outcomes ORDER BY ts")
    ]


def p_hat_at(con: sqlite3.Connection, ticker: str, ts: int) -> Any:
    """The latest stored p̂ for a market at or before ``ts`` (None when there was none)."""
    row = con.execute(
        "SELECT id, p_hat FROM estimates WHERE ticker = ? AND ts <= ? ORDER BY ts DESC, id DESC LIMIT 1", (ticker, ts)
    ).fetchone()
    return None if row is None else typed("estimates", row, "if", "id, p_hat")[1]


def quote_at(con: sqlite3.Connection, ticker: str, ts: int) -> tuple[Any, Any, Any] | None:
    """A market's latest (bid, ask, last) at or before ``ts`` as probabilities (None when none)."""
    row = con.execute(
        "SELECT id, yes_bid_cc, yes_ask_cc, last_cc FROM snapshots"
        " WHERE ticker = ? AND ts <= ? ORDER BY ts DESC, id DESC LIMIT 1",
        (ticker, ts),
    ).fetchone()
    if row is None:
        return None
    _id, *prices = typed("snapshots", row, "iIII", "id, yes_bid_cc, yes_ask_cc, last_cc")
    return tuple(None if p is None else p / 10000.0 for p in prices)  # type: ignore[return-value]


def entry_rows(con: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every buy fill with what its decision believed and where its market stands, in order:
    (fill id, ts, ticker, side, contracts_hundredths, value_cc, fee_cc, decision p_hat, decision ts,
    event_ticker, close_ts); the last four None where the decision or the market row is missing."""
    names = "id, ts, ticker, side, contracts_hundredths, value_cc, fee_cc, p_hat, decision ts, event_ticker, close_ts"
    return [
        typed("fills", r, "itssiiiFTST", names)
        for r in con.execute(
            "SELECT f.id, f.ts, f.ticker, f.side, f.contracts_hundredths, f.value_cc, f.fee_cc, d.p_hat, d.ts,"
            " m.event_ticker, m.close_ts FROM fills f LEFT JOIN decisions d ON d.id = f.decision_id"
            " LEFT JOIN markets m ON m.ticker = f.ticker WHERE f.action = 'buy' ORDER BY f.id"
        )
    ]


def first_decisions(con: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Each market's first decision (accepted or refused: the first time its p̂ cleared the edge
    threshold) as (id, ticker, ts, p_hat), in id order. One scan of ``decisions`` (it has no index)."""
    return [
        typed("decisions", r, "istf", "id, ticker, ts, p_hat")
        for r in con.execute(
            "SELECT id, ticker, ts, p_hat FROM decisions WHERE id IN (SELECT MIN(id) FROM decisions GROUP BY ticker)"
            " ORDER BY id"
        )
    ]


def markout_fill_rows(con: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every fill with what its markouts need, in order: (id, ts, ticker, side, action,
    contracts_hundredths, value_cc, fee_cc, role, event_ticker, close_ts, settled_ts). ``role`` is
    the fill's ``maker``/``taker`` where the fills table records it (issue #23's resting orders),
    else ``taker`` (every fill before them was); the last three None where the market has no row
    or no outcome."""
    cols = {r[1] for r in con.execute("PRAGMA table_info(fills)")}
    role = "COALESCE(f.role, 'taker')" if "role" in cols else "'taker'"
    names = (
        "id, ts, ticker, side, action, contracts_hundredths, value_cc, fee_cc, role, event_ticker, close_ts, outcome ts"
    )
    return [
        typed("fills", r, "itsssiiisSTT", names)
        for r in con.execute(
            "SELECT f.id, f.ts, f.ticker, f.side, f.action, f.contracts_hundredths, f.value_cc, f.fee_cc,"
            f" {role}, m.event_ticker, m.close_ts, o.ts FROM fills f LEFT JOIN markets m ON m.ticker = f.ticker"
            " LEFT JOIN outcomes o ON o.ticker = f.ticker ORDER BY f.id"
        )
    ]


# -- the band (issue #23 item 7): the orders under the three queue models ---------------------
def band_orders(con: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every paper order, in order: (id, ts, ticker, side, tif, quantity_hundredths, queue_model
    (the model the run traded it by), event_ticker (None where the market has no row))."""
    names = "id, ts, ticker, side, tif, quantity_hundredths, queue_model, event_ticker"
    return [
        typed("orders", r, "itsssisS", names)
        for r in con.execute(
            "SELECT o.id, o.ts, o.ticker, o.side, o.tif, o.quantity_hundredths, o.queue_model, m.event_ticker"
            " FROM orders o LEFT JOIN markets m ON m.ticker = o.ticker ORDER BY o.id"
        )
    ]


def band_fills(con: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], set[tuple[int, str]]]:
    """The orders' fills under each queue model, and which orders each shadow model holds (core/
    shadows.py). Fills as (order_id, model, contracts_hundredths, value_cc, fee_cc): the run's own
    from ``fills`` (model: its order's ``queue_model``), the shadows' from ``shadow_events``; the
    shadowed as (order_id, model), every order with a shadow event under that model."""
    real = [
        typed("fills", r, "iisiii", "id, order_id, model, contracts_hundredths, value_cc, fee_cc")[1:]
        for r in con.execute(
            "SELECT f.id, f.order_id, o.queue_model, f.contracts_hundredths, f.value_cc, f.fee_cc FROM fills f"
            " JOIN orders o ON o.id = f.order_id WHERE f.action = 'buy' ORDER BY f.id"
        )
    ]
    shadow = [
        typed("shadow_events", r, "iisiii", "id, order_id, model, contracts_hundredths, value_cc, fee_cc")[1:]
        for r in con.execute(
            "SELECT id, order_id, model, contracts_hundredths, value_cc, fee_cc FROM shadow_events"
            " WHERE contracts_hundredths IS NOT NULL ORDER BY id"
        )
    ]
    shadowed = {
        typed("shadow_events", r, "is", "order_id, model")
        for r in con.execute("SELECT DISTINCT order_id, model FROM shadow_events")
    }
    return real + shadow, shadowed


def band_outcomes(con: sqlite3.Connection) -> dict[str, tuple[Any, Any]]:
    """Each booked outcome as ticker -> (result, settlement_value: a scalar's exact dollar text)."""
    return {
        r[0]: (r[1], r[2])
        for r in (
            typed("outcomes", row, "ssS", "ticker, result, settlement_value")
            for row in con.execute("SELECT ticker, result, settlement_value FROM outcomes")
        )
    }


#: The as-of read of one market's quote (``quote_as_of``): the last row at or before a time.
#: Planned as a walk back along ``snapshots_ts`` from that time (``SEARCH ... USING INDEX
#: snapshots_ts (ts<?)``, no sort: the index ends in the rowid), stopping at the market's first
#: row; ``tests/integration/test_report_markouts.py`` holds the plan.
QUOTE_AS_OF_SQL = (
    "SELECT id, ts, yes_bid_cc, yes_ask_cc FROM snapshots WHERE ticker = ? AND ts <= ? ORDER BY ts DESC, id DESC"
    " LIMIT 1"
)


def quote_as_of(con: sqlite3.Connection, ticker: str, ts: int) -> tuple[int, Any, Any] | None:
    """A market's quote as of ``ts``: its last stored row at or before it, as (ts, yes_bid_cc,
    yes_ask_cc) in centicents (a side None when nothing rested there; None: no quote at all).
    Exact where the store wrote every new quote (a live run): a quote is stored when it changes."""
    row = con.execute(QUOTE_AS_OF_SQL, (ticker, ts)).fetchone()
    if row is None:
        return None
    _id, at, bid, ask = typed("snapshots", row, "itII", "id, ts, yes_bid_cc, yes_ask_cc")
    return at, bid, ask


def refused_decisions(con: sqlite3.Connection) -> list[tuple[Any, Any]]:
    """Every decision the gate refused, as (reason, ts)."""
    return [
        typed("decisions", r, "ist", "id, reason, ts")[1:]
        for r in con.execute("SELECT id, reason, ts FROM decisions WHERE accepted = 0")
    ]


# -- the desk's screens (market history, rejected rows, a restarted desk's log) ------------
def snapshot_history(con: sqlite3.Connection, ticker: str, limit: int) -> list[tuple[Any, Any, Any, Any]]:
    """A market's latest ``limit`` quotes, oldest first, as (ts, yes_bid_cc, yes_ask_cc, volume_hundredths)."""
    return con.execute(
        "SELECT ts, yes_bid_cc, yes_ask_cc, volume_hundredths FROM snapshots WHERE ticker = ? "
        "ORDER BY ts DESC, id DESC LIMIT ?",
        (ticker, limit),
    ).fetchall()[::-1]


def estimates_since(
    con: sqlite3.Connection, ticker: str, since: int
) -> tuple[list[tuple[Any, Any]], tuple[Any, Any] | None]:
    """A market's p̂ changes from ``since`` on as (ts, p_hat), oldest first, and the one in force before it."""
    est = con.execute(
        "SELECT ts, p_hat FROM estimates WHERE ticker = ? AND ts >= ? ORDER BY ts, id", (ticker, since)
    ).fetchall()
    before = con.execute(
        "SELECT ts, p_hat FROM estimates WHERE ticker = ? AND ts < ? ORDER BY ts DESC, id DESC LIMIT 1", (ticker, since)
    ).fetchone()
    return est, before


def rejected_row_records(con: sqlite3.Connection, limit: int) -> tuple[list[tuple[Any, ...]], int]:
    """The latest ``limit`` rejected-row records as (last_seen, ticker, source, reason, payload, count),
    latest first, and how many rows were rejected in all."""
    total = con.execute("SELECT COALESCE(SUM(count), 0) FROM rejected_rows").fetchone()[0]
    rows = con.execute(
        "SELECT last_seen, ticker, source, reason, payload, count FROM rejected_rows "
        "ORDER BY last_seen DESC, id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return rows, total


def blotter_rows(con: sqlite3.Connection, limit: int) -> tuple[list[tuple[Any, ...]], int]:
    """The latest ``limit`` fills, newest first, as (id, ts, ticker, side, action, contracts_hundredths,
    value_cc, fee_cc, role), each checked (a row another tool wrote is a corrupt database), and how
    many fills there are in all. ``role``: maker, taker, or None (a sale, or a row before v10)."""
    names = "id, ts, ticker, side, action, contracts_hundredths, value_cc, fee_cc, role"
    rows = [
        typed("fills", r, "iisssiiiS", names)
        for r in con.execute(f"SELECT {names} FROM fills ORDER BY ts DESC, id DESC LIMIT ?", (limit,))
    ]
    return rows, con.execute("SELECT COUNT(*) FROM fills").fetchone()[0]


def recent_decision_rows(con: sqlite3.Connection, limit: int) -> list[tuple[Any, ...]]:
    """The latest ``limit`` decisions, oldest first: (ts, ticker, side, contracts_hundredths,
    limit_price_cc, ev, accepted, reason)."""
    return con.execute(
        "SELECT ts, ticker, side, contracts_hundredths, limit_price_cc, ev, accepted, reason "
        "FROM decisions ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()[::-1]


def recent_events(con: sqlite3.Connection, limit: int) -> list[tuple[Any, Any, Any]]:
    """The latest ``limit`` events but deposits, oldest first, as (ts, kind, detail)."""
    return con.execute(
        "SELECT ts, kind, detail FROM events WHERE kind NOT IN ('deposit') ORDER BY id DESC LIMIT ?", (limit,)
    ).fetchall()[::-1]


# -- replay of an earlier run (kakashi replay --from-db, catalog import) ---------------------
def initial_deposit(con: sqlite3.Connection) -> tuple[Any] | None:
    """When the run began: the initial deposit's row as (ts,) (None when there is none)."""
    row: tuple[Any] | None = con.execute("SELECT ts FROM ledger WHERE key = 'deposit:initial'").fetchone()
    return row


def traded_tickers(con: sqlite3.Connection) -> list[str]:
    """Every market a paper position was ever held in (a fill or a ledger entry naming it), sorted."""
    rows = con.execute(
        "SELECT ticker FROM fills WHERE ticker IS NOT NULL UNION SELECT ticker FROM ledger WHERE ticker IS NOT NULL "
        "AND ticker != '' ORDER BY 1"
    ).fetchall()
    return [t for (t,) in rows if isinstance(t, str) and t]


def market_rows(con: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every stored market as (ticker, title, series, event_ticker, open_ts, close_ts, event_exclusive)."""
    return con.execute(
        "SELECT ticker, title, series, event_ticker, open_ts, close_ts, event_exclusive FROM markets"
    ).fetchall()


def market_data_rows(con: sqlite3.Connection) -> Iterator[tuple[Any, ...]]:
    """Snapshots, estimates and outcomes merged in time order (a cursor: read as it streams), each as
    (ts, kind, id, ticker, a, b, last, volume, extra, source) with kind 0 a snapshot (a, b = bid, ask
    in cc; extra = book JSON), 1 an estimate (a = p_hat) and 2 an outcome (a = settlement value,
    extra = result, source = status)."""
    return iter(
        con.execute(
            "SELECT ts, 0 AS k, id, ticker, yes_bid_cc, yes_ask_cc, last_cc, volume_hundredths, book, NULL"
            " FROM snapshots UNION ALL SELECT ts, 1, id, ticker, p_hat, NULL, NULL, NULL, NULL, source FROM estimates "
            "UNION ALL SELECT ts, 2, 0, ticker, settlement_value, NULL, NULL, NULL, result, status FROM outcomes "
            "ORDER BY 1, 2, 3"
        )
    )


# -- the odds of ruin (kakashi risk, the report) ---------------------------------------------
def ruin_trade_rows(con: sqlite3.Connection, limit: int) -> list[tuple[Any, ...]]:
    """The latest ``limit`` filled buys, oldest first, each with the decision that approved it and
    its market's event: (ts, ticker, side, p_hat, equity_cc, contracts_hundredths, value_cc, fee_cc,
    event_ticker, event_exclusive), each checked (a row another tool wrote is a corrupt database)."""
    names = "ts, ticker, side, p_hat, equity_cc, contracts_hundredths, value_cc, fee_cc, event_ticker, event_exclusive"
    return [
        typed("fills", r, "tssfIiiisI", names)
        for r in con.execute(
            "SELECT f.ts, f.ticker, f.side, d.p_hat, d.equity_cc, f.contracts_hundredths, f.value_cc, f.fee_cc,"
            " COALESCE(m.event_ticker, ''), m.event_exclusive FROM fills f JOIN decisions d ON d.id = f.decision_id"
            " LEFT JOIN markets m ON m.ticker = f.ticker WHERE f.action = 'buy' ORDER BY f.id DESC LIMIT ?",
            (limit,),
        )
    ][::-1]


# -- plans (core/plan.py): the engine's checks, `kakashi plan`, `status` and the report -----------
_PLAN_COLUMNS = (
    "id, created_ms, hypothesis, settings, beliefs, sample_n, sample_unit, kill, success, after_decision_id,"
    " after_fill_id, after_tick, killed_ts, killed_by, killed_detail, judged_ts, verdict, verdict_detail"
)


def plans(con: sqlite3.Connection) -> list[Plan]:
    """Every plan, oldest first; each but the latest knows the plan that took over after it
    (``superseded_by``, and ``upto_fill_id``: its trades stop where the next one's begin)."""
    out: list[Plan] = []
    for r in con.execute(f"SELECT {_PLAN_COLUMNS} FROM plans ORDER BY id"):
        typed("plans", r, "itsssisssiiiTSSTSS", _PLAN_COLUMNS)
        try:
            sample = Sample(r[5], r[6])
            if r[6] not in ("trades", "days") or r[5] < 1:
                raise PlanError(f"sample {r[5]} {r[6]!r} is not a plan's sample")
            kill, success = conditions_of(r[7], "kill"), conditions_of(r[8], "success")
        except PlanError as e:
            raise corrupt("plans", r[0], str(e).removeprefix("plan: ")) from None
        out.append(
            Plan(
                id=r[0],
                created_ms=r[1],
                hypothesis=r[2],
                settings=r[3],
                beliefs=r[4],
                sample=sample,
                kill=kill,
                success=success,
                after_decision_id=r[9],
                after_fill_id=r[10],
                after_tick=r[11],
                killed_ts=r[12],
                killed_by=r[13] or "",
                killed_detail=r[14] or "",
                judged_ts=r[15],
                verdict=r[16] or "",
                verdict_detail=r[17] or "",
            )
        )
    for i in range(len(out) - 1):
        out[i] = replace(out[i], upto_fill_id=out[i + 1].after_fill_id, superseded_by=out[i + 1].id)
    return out


def latest_plan(con: sqlite3.Connection) -> Plan | None:
    """The plan in force: the latest registered (None: no plan)."""
    every = plans(con)
    return every[-1] if every else None


def _plan_fills(plan: Plan) -> tuple[str, list[Any]]:
    where, args = "f.action = 'buy' AND f.id > ?", [plan.after_fill_id]
    if plan.upto_fill_id is not None:
        where, args = where + " AND f.id <= ?", [*args, plan.upto_fill_id]
    return where, args


def plan_tickers(con: sqlite3.Connection, plan: Plan, among: Iterable[str] | None = None) -> set[str]:
    """The markets the plan bought in (its trades settle there); only ``among`` these when given
    (by the fills' ticker index: what the engine asks when markets settle)."""
    where, args = _plan_fills(plan)
    if among is not None:
        names = sorted(set(among))
        if not names:
            return set()
        where += f" AND f.ticker IN ({', '.join('?' * len(names))})"
        args = [*args, *names]
    return {str(t) for (t,) in con.execute(f"SELECT DISTINCT f.ticker FROM fills f WHERE {where}", args)}


def plan_settled_count(con: sqlite3.Connection, plan: Plan) -> int:
    """How many of the plan's trades have settled (no statistics: cheap enough for ``status``)."""
    where, args = _plan_fills(plan)
    return int(
        con.execute(
            f"SELECT COUNT(*) FROM fills f JOIN outcomes o ON o.ticker = f.ticker WHERE {where}", args
        ).fetchone()[0]
    )


def _position_pnl_cc(con: sqlite3.Connection, ticker: str, side: str) -> tuple[int, int]:
    """(realised PnL of every position ever held in (ticker, side), contracts bought in
    hundredths): sales and settlements (corrections included) less what the buys cost with fees.
    By the fills' ticker index and the ledger's unique keys (``settle:<ticker>:<side>...``)."""
    cost, bought = con.execute(
        "SELECT COALESCE(SUM(value_cc + fee_cc), 0), COALESCE(SUM(contracts_hundredths), 0) FROM fills"
        " WHERE ticker = ? AND side = ? AND action = 'buy'",
        (ticker, side),
    ).fetchone()
    (sold,) = con.execute(
        "SELECT COALESCE(SUM(value_cc - fee_cc), 0) FROM fills WHERE ticker = ? AND side = ? AND action = 'sell'",
        (ticker, side),
    ).fetchone()
    key = f"settle:{ticker}:{side}"
    (paid,) = con.execute(
        "SELECT COALESCE(SUM(amount_cc), 0) FROM ledger WHERE key >= ? AND key < ?", (key, key + ";")
    ).fetchone()
    return int(sold) + int(paid) - int(cost), int(bought)


def plan_trades(
    con: sqlite3.Connection, plan: Plan, tickers: Iterable[str] | None = None, *, candles: Candles | None
) -> list[PlanTrade]:
    """The plan's settled trades (its buys whose market's settlement is booked), in fill order,
    only in ``tickers`` when given: each with the market's mid at its decision (``quote_at``), its
    closing mid (``closing.closing_line`` at the close or the settlement, whichever came first:
    the report's closing line, the catalog's ``candles`` where the database has no closing quote),
    its outcome, and its realised PnL (its share, by contracts, of its (ticker, side)'s). The
    engine reads them as trades settle, the report when it grades the plan."""
    where, args = _plan_fills(plan)
    if tickers is not None:
        names = sorted(set(tickers))
        if not names:
            return []
        where += f" AND f.ticker IN ({', '.join('?' * len(names))})"
        args = [*args, *names]
    rows = con.execute(
        "SELECT f.id, f.ticker, f.side, f.contracts_hundredths, f.value_cc, f.fee_cc, f.ts, d.p_hat, d.ts,"
        " m.event_ticker, m.close_ts, o.result, o.ts FROM fills f JOIN outcomes o ON o.ticker = f.ticker"
        " LEFT JOIN decisions d ON d.id = f.decision_id LEFT JOIN markets m ON m.ticker = f.ticker"
        f" WHERE {where} ORDER BY f.id",
        args,
    ).fetchall()
    names_ = "id, ticker, side, contracts_hundredths, value_cc, fee_cc, ts, p_hat, decision ts, event, close_ts"
    pnl_of: dict[tuple[str, str], tuple[int, int]] = {}
    out = []
    for r in rows:
        fid, t, side, n_hundredths, value_cc, fee_cc, ts, p_hat, d_ts, event, close_ts, result, settled = typed(
            "fills", r, "issiiitFTSTst", names_ + ", result, settled ts"
        )
        if n_hundredths <= 0:
            continue
        n = n_hundredths / 100
        q = quote_at(con, t, d_ts if d_ts is not None else ts)
        market = (q[0] + q[1]) / 2 if q is not None and q[0] is not None and q[1] is not None else None
        stop = market_stop(close_ts, settled, settled)  # (settled: the market stopped by then at the latest)
        cl = None if stop is None else closing_line(con, t, stop, candles)
        if (t, side) not in pnl_of:
            pnl_of[(t, side)] = _position_pnl_cc(con, t, side)
        pnl_cc, bought = pnl_of[(t, side)]
        out.append(
            PlanTrade(
                fill_id=fid,
                settled_ts=settled,
                ticker=t,
                event=event or t,
                side=side,
                contracts=n,
                price=value_cc / 10_000 / n,
                fee=fee_cc / 10_000 / n,
                p_hat=p_hat,
                market=market,
                outcome={"yes": 1, "no": 0}.get(result),
                close=None if cl is None else cl[0] / 20_000,  # the YES mid, a probability
                pnl=pnl_cc / 10_000 * n_hundredths / bought if bought > 0 else 0.0,
            )
        )
    return out


def plan_ticks(con: sqlite3.Connection, plan: Plan) -> tuple[int | None, list[int]]:
    """(the engine's clock at the plan's first tick, None before it; the tick equities since, in
    order): what its ``days`` and ``drawdown`` are measured from."""
    rows = con.execute("SELECT tick, ts, equity_cc FROM ticks WHERE tick > ? ORDER BY tick", (plan.after_tick,))
    equities: list[int] = []
    first: int | None = None
    for r in rows:
        tick_no, ts, eq = typed("ticks", r, "iti", "tick, ts, equity_cc")
        first = ts if first is None else first
        equities.append(eq)
    return first, equities


def plan_start_ts(con: sqlite3.Connection, plan: Plan) -> int | None:
    """The engine's clock at the plan's first tick (None before it): one index look-up."""
    row = con.execute("SELECT tick, ts FROM ticks WHERE tick > ? ORDER BY tick LIMIT 1", (plan.after_tick,)).fetchone()
    return None if row is None else int(typed("ticks", row, "it", "tick, ts")[1])
