"""Reads of a Kakashi database from outside the engine: ``kakashi status``, the report, the
replay of an earlier run. Each opens its own read-only connection (WAL: it never blocks the
engine and the engine never blocks it) and never writes. The writer's own reads live on
``Store``; the schema lives in ``store``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from kakashi_tui.adapters.store import (
    SCHEMA_VERSION, Control, account_from_ledger, check_control_rows, control_value, read_latest_snapshot, read_ledger,
)
from kakashi_tui.core.ledger import Account, equity_cc
from kakashi_tui.core.models import Position
from kakashi_tui.errors import StoreError

__all__ = ["connect_readonly", "read_ledger", "read_latest_snapshot", "Status", "read_status"]


def connect_readonly(db: str | Path) -> sqlite3.Connection:
    """A read-only connection to an existing Kakashi database (one clear error otherwise)."""
    path = Path(db)
    if not path.exists():
        raise StoreError(f"no database at {path}", 2)
    try:
        con = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=5)
        con.execute("SELECT count(*) FROM ledger").fetchone()
        con.execute("SELECT count(*) FROM control").fetchone()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"database {path} is unreadable or not a Kakashi database ({e})", 2) from None
    row = con.execute("SELECT value FROM control WHERE key = ?", (Control.SCHEMA_VERSION.value,)).fetchone()
    version = row[0] if row else None
    if version is not None and str(version).isdigit() and int(version) < SCHEMA_VERSION:
        con.close()  # a reader never migrates: the writer does, on open (data_schema.md)
        raise StoreError(f"database {path} has schema version {version}, older than this Kakashi's "
                         f"{SCHEMA_VERSION}; open it once with `kakashi run --db {path}` to migrate it", 2)
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


def read_status(con: sqlite3.Connection) -> Status:
    """Bankroll, positions and control state, as ``kakashi status`` shows them."""
    acct = account_from_ledger(con)
    marks = {p.ticker: s for p in acct.open_positions() if (s := read_latest_snapshot(con, p.ticker)) is not None}
    ctl = dict(con.execute("SELECT key, value FROM control WHERE key IN (?, ?, ?)",
                           (Control.KILL_SWITCH.value, Control.KILL_REASON.value, Control.PAUSED.value)))
    try:
        pending = con.execute("SELECT COUNT(*) FROM requests WHERE applied_tick IS NULL").fetchone()[0]
    except sqlite3.OperationalError:  # a database from before requests existed
        pending = 0
    return Status(
        account=acct, equity_cc=equity_cc(acct, marks), positions=tuple(acct.open_positions()),
        kill_switch=bool(control_value(Control.KILL_SWITCH, ctl.get(Control.KILL_SWITCH.value))),
        kill_reason=str(ctl.get(Control.KILL_REASON.value) or ""),
        paused=bool(control_value(Control.PAUSED, ctl.get(Control.PAUSED.value))), pending_requests=pending)
