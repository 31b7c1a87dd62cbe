"""Every change to the database's shape, declared once and in order.

A file records its schema version in ``control.schema_version``. Opening it for writing runs,
inside the open's one transaction, each step whose version is above the file's, lowest first;
then creates any table the models have and the file lacks, and records ``SCHEMA_VERSION``. A
failure rolls the whole open back, leaving the file as it was. A fresh file gets the models'
tables at once: no step runs on it. ``SCHEMA_VERSION`` is the last step's version, so a new
schema change is one new ``Step`` at the end of ``STEPS`` (one version number at a time) and
nothing else; ``check_steps`` refuses a list with a gap or a repeat, and
tests/integration/test_migration.py checks that every step taken from the oldest file gives
the same tables, columns and indexes as a fresh file.

Versions 1 to 3 predate this framework: their differences (a column added, indexes dropped) are
found by looking at the file, so the one step to 4 takes any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import peewee as pw

from kakashi_tui.adapters.store.chain import CHAINED, GENESIS, link
from kakashi_tui.adapters.store.controls import Control
from kakashi_tui.adapters.store.rows import corrupt
from kakashi_tui.adapters.store.schema import (
    MODELS,
    DecisionRow,
    FillRow,
    LedgerRow,
    OutcomeRow,
    RejectedRow,
    SnapshotRow,
    TickRow,
)


@dataclass(frozen=True)
class Step:
    version: int  # the schema version this step produces
    what: str  # one line: what changed and why
    apply: Callable[[pw.SqliteDatabase], None]


def columns(db: pw.SqliteDatabase, table: str) -> set[str]:
    return {r[1] for r in db.execute_sql(f"PRAGMA table_info({table})")}


# -- to version 4 (from 1, 2 or 3) ----------------------------------------------------

_P = "CAST(ROUND({0} * 10000) AS INTEGER)"  # a REAL price -> centicents (old prices were on the cent grid)

#: Market columns added in v4 (the table keeps its rows; only ``status`` words change).
_V4_MARKET_COLUMNS = [
    ("subtitle", "TEXT NOT NULL DEFAULT ''"),
    ("market_type", "TEXT NOT NULL DEFAULT 'binary'"),
    ("settlement_value", "TEXT"),
    ("fee_type", "TEXT"),
    ("fee_multiplier", "TEXT"),
    ("fee_waiver_until_ts", "INTEGER"),
    ("exchange_updated_ts", "INTEGER"),
]

#: Stored pre-v4 status words -> Kalshi's lifecycle words (models.LEGACY_STATUS).
_V4_STATUS = (
    "CASE status WHEN 'open' THEN 'active' WHEN 'unopened' THEN 'initialized' WHEN 'settled' THEN"
    " 'finalized' ELSE status END"
)

#: Each table still in its old form is rebuilt in the new one with every row converted:
#: (model, a column only the new form has, new columns, SELECT over the old rows).
#: The ``*_cents`` names below are an old schema's own columns, and a different unit: whole
#: cents (x 100 gives centicents). They are the only ``_cents`` spellings left (one spelling per
#: unit: ``_cc`` and ``_hundredths`` everywhere else), kept because those databases say them.
_V4_REBUILDS = [
    (
        SnapshotRow,
        "yes_bid_cc",
        "id, ticker, ts, fetched_ts, yes_bid_cc, yes_ask_cc, last_cc, volume_hundredths, book, source",
        f"id, ticker, ts, fetched_ts, {_P.format('yes_bid')}, {_P.format('yes_ask')}, {_P.format('last')},"
        " volume * 100, book, source",
    ),
    (
        DecisionRow,
        "worst_case_cc",
        "id, ts, tick, ticker, side, contracts_hundredths, limit_price_cc, best_ask_cc, p_hat, ev, worst_case_cc,"
        " equity_cc, accepted, reason",
        f"id, ts, tick, ticker, side, contracts * 100, {_P.format('limit_price')}, {_P.format('best_ask')}, p_hat,"
        " ev, worst_case_cents * 100, equity_cents * 100, accepted, reason",
    ),
    (
        FillRow,
        "value_cc",
        "id, decision_id, ts, ticker, side, action, requested_hundredths, contracts_hundredths, value_cc, fee_cc,"
        " levels",
        "id, decision_id, ts, ticker, side, action, requested * 100, contracts * 100, cost_cents * 100,"
        " fee_cents * 100, levels",
    ),
    (
        LedgerRow,
        "amount_cc",
        "id, ts, kind, ticker, side, contracts_hundredths, amount_cc, key",
        "id, ts, kind, ticker, side, contracts * 100, amount_cents * 100, key",
    ),
    (
        OutcomeRow,
        "status",
        "ticker, status, result, settlement_value, ts, updated_ts",
        "ticker, 'finalized', result, NULL, ts, ts",
    ),
    (
        RejectedRow,
        "count",
        "source, ticker, reason, count, first_seen, last_seen, payload",
        # one record per (source, ticker, reason), the latest payload kept
        # (SQLite's bare column beside MAX(): the payload of the row with the highest id)
        "source, tk, reason, n, first, last, payload FROM (SELECT o.source, o.tk, o.reason, COUNT(*) AS n,"
        " MIN(o.ts) AS first, MAX(o.ts) AS last, o.payload AS payload, MAX(o.id) AS newest FROM (SELECT id, ts,"
        " source, reason, payload, COALESCE(CASE WHEN json_valid(payload) THEN CAST(COALESCE(json_extract(payload,"
        " '$.ticker'), json_extract(payload, '$.sim')) AS TEXT) END, '') AS tk FROM _old_rejected_rows) o"
        " GROUP BY o.source, o.tk, o.reason)",
    ),
    (
        TickRow,
        "cash_cc",
        "id, tick, ts, wall_ms, saved, rejected, decisions, fills, settled, errors, latency_ms, cash_cc, equity_cc",
        "id, tick, ts, wall_ms, saved, rejected, decisions, fills, settled, errors, latency_ms, cash_cents * 100,"
        " equity_cents * 100",
    ),
]


def _to_v4(db: pw.SqliteDatabase) -> None:
    """Fixed point: REAL prices -> centicents, cents -> centicents (x100), whole counts ->
    hundredths (x100), Kalshi's lifecycle words, one rejected-row record per (source, ticker,
    reason). A table is rebuilt only while it is in its old form; every row is kept."""
    have = columns(db, "decisions")  # v2 added the tick's equity to each decision
    if have and "worst_case_cents" in have and "equity_cents" not in have:
        db.execute_sql("ALTER TABLE decisions ADD COLUMN equity_cents INTEGER NOT NULL DEFAULT 0")
    have = columns(db, "markets")
    if have:
        for column, decl in _V4_MARKET_COLUMNS:
            if column not in have:
                db.execute_sql(f"ALTER TABLE markets ADD COLUMN {column} {decl}")
        db.execute_sql(f"UPDATE markets SET status = {_V4_STATUS} WHERE status IN ('open', 'unopened', 'settled')")
    for model, new_column, cols, select in _V4_REBUILDS:
        table = model._meta.table_name
        have = columns(db, table)
        if not have or new_column in have:
            continue
        old = f"_old_{table}"
        db.execute_sql(f"ALTER TABLE {table} RENAME TO {old}")
        for (name,) in db.execute_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (old,)
        ).fetchall():
            db.execute_sql(f'DROP INDEX "{name}"')
        model.create_table(safe=False)
        db.execute_sql(
            f"INSERT INTO {table} ({cols}) SELECT {select}" + ("" if model is RejectedRow else f" FROM {old}")
        )
        db.execute_sql(f"DROP TABLE {old}")
        if model is LedgerRow:  # the day's starting equity was kept in cents too
            db.execute_sql(
                "UPDATE control SET value = CAST(CAST(value AS INTEGER) * 100 AS TEXT)"
                " WHERE key = 'day_start_equity' AND value GLOB '[0-9]*'"
                " AND value NOT GLOB '*[^0-9]*'"
            )


# -- to version 5 -----------------------------------------------------------------------

#: The key of the note a migrated ledger gets where its chain begins.
CHAIN_NOTE_KEY = "note:chain-begins-v5"


def _to_v5(db: pw.SqliteDatabase) -> None:
    """The ledger's hash chain (store/chain.py): every existing entry is linked once, in id
    order, and a note entry is appended to say so. The chain then proves that nothing before
    the note changed after this migration; it cannot prove what happened to them before it."""
    if "chain" not in columns(db, "ledger"):  # (step 4's rebuild of an older file made today's table)
        db.execute_sql("ALTER TABLE ledger ADD COLUMN chain TEXT NOT NULL DEFAULT ''")
    elif db.execute_sql("SELECT 1 FROM ledger WHERE chain != '' LIMIT 1").fetchone():
        # a chained ledger whose schema_version was set back by hand: linking it again would
        # make an edited entry's link hold (the transaction rolls back: nothing is written)
        raise corrupt("control", "'schema_version'", "says before 5, but the ledger is already chained")
    prev, last_ts, last_id = GENESIS, 0, 0
    rows = db.execute_sql(f"SELECT {CHAINED} FROM ledger ORDER BY id").fetchall()
    for row in rows:
        prev = link(prev, *row)
        db.execute_sql("UPDATE ledger SET chain = ? WHERE id = ?", (prev, row[0]))
        last_id, last_ts = row[0], row[1] if type(row[1]) is int else last_ts
    if rows:
        note = (last_id + 1, last_ts, "note", "", None, 0, 0, CHAIN_NOTE_KEY)
        db.execute_sql(
            f"INSERT INTO ledger ({CHAINED}, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*note, link(prev, *note))
        )


# -- to version 6 ----------------------------------------------------------------------

#: Market columns of spec 3.31-3.34 (#22): settlement floors, the price grid, the exchange shard.
#: Rows written before read as a default market with no grid of its own on shard 0.
_V6_MARKET_COLUMNS = [
    ("settlement_bounds_type", "TEXT NOT NULL DEFAULT 'default'"),
    ("settlement_floor", "TEXT"),
    ("price_ranges", "TEXT"),
    ("exchange_index", "INTEGER"),
]


def _to_v6(db: pw.SqliteDatabase) -> None:
    have = columns(db, "markets")
    for column, decl in _V6_MARKET_COLUMNS:
        if column not in have:
            db.execute_sql(f"ALTER TABLE markets ADD COLUMN {column} {decl}")


#: The steps, in order. Add a schema change here and only here.
# -- to version 7 -----------------------------------------------------------------------
def _to_v7(db: pw.SqliteDatabase) -> None:
    """Nothing to rewrite: version 7 adds two control keys (``peak_equity``, ``drawdown_stop``),
    written by the first tick. A Kakashi before them refuses a key it does not know as corrupt;
    the version tells it instead that the file is newer than it."""


# -- to version 8 -----------------------------------------------------------------------
def _to_v8(db: pw.SqliteDatabase) -> None:
    """Nothing to rewrite: the ``plans`` table is created with the models' tables (``upgrade``),
    and the ``pause_reason`` control key is written when a plan's kill condition pauses trading."""


# -- to version 9 -----------------------------------------------------------------------
def _to_v9(db: pw.SqliteDatabase) -> None:
    """``markets.event_exclusive`` (#24 item 5): NULL, not known, for every row written before
    (the event cap counts an event not known to be exclusive as not exclusive)."""
    if "event_exclusive" not in columns(db, "markets"):
        db.execute_sql("ALTER TABLE markets ADD COLUMN event_exclusive INTEGER")


# -- to version 10 ----------------------------------------------------------------------
def _to_v10(db: pw.SqliteDatabase) -> None:
    """Paper orders (issue #23): ``orders`` and ``order_events`` are new tables (made by
    ``upgrade``); a fill names its order, its role and what triggered it, and one decision's
    order may fill many times, so ``fills.decision_id``'s index is no longer unique. Rows before
    read NULL there (they were taker fills at the decision, which their decision_id names)."""
    have = columns(db, "fills")
    if not have:
        return
    for column, decl in (("order_id", "INTEGER"), ("role", "VARCHAR(255)"), ("trigger", "VARCHAR(255)")):
        if column not in have:
            db.execute_sql(f"ALTER TABLE fills ADD COLUMN {column} {decl}")
    db.execute_sql("DROP INDEX IF EXISTS fills_decision_id")
    db.execute_sql("CREATE INDEX fills_decision_id ON fills (decision_id)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS fills_order_id ON fills (order_id)")


# -- to version 11 ----------------------------------------------------------------------
def _to_v11(db: pw.SqliteDatabase) -> None:
    """A restart resumes live orders exactly (#23): each fill keeps its fee before rounding
    (``fills.fee_exact``; NULL in older rows), from which an order's fee accumulator resumes;
    ``order_queues`` and ``market_fills`` are new tables (made by ``upgrade``), written by each
    tick from then on (a file of version 10 holds no resting order: its orders were all ``ioc``)."""
    have = columns(db, "fills")
    if have and "fee_exact" not in have:
        db.execute_sql("ALTER TABLE fills ADD COLUMN fee_exact TEXT")


# -- to version 12 ----------------------------------------------------------------------
def _to_v12(db: pw.SqliteDatabase) -> None:
    """Nothing to rewrite: the band's ``shadow_events`` and ``shadow_fills`` tables (issue #23
    item 7) are created with the models' tables (``upgrade``). A file before it has no resting orders' copies, and its
    taker orders fill the same under every queue model: the band reads their fills from ``fills``."""


STEPS: tuple[Step, ...] = (
    Step(4, "fixed point: integer centicents and hundredths; Kalshi's lifecycle words", _to_v4),
    Step(5, "the ledger's hash chain: each entry carries the hash of its content and of the one before", _to_v5),
    Step(6, "markets: settlement floor, price grid (price_ranges) and exchange shard (Kalshi 3.34)", _to_v6),
    Step(7, "control: the drawdown stop's peak_equity and drawdown_stop keys (#24)", _to_v7),
    Step(8, "plans: a study registered before the evidence; control: pause_reason (#24)", _to_v8),
    Step(9, "markets: event_exclusive, the event's mutually_exclusive (Kalshi 3.34), for the event cap", _to_v9),
    Step(10, "paper orders: orders and order_events; fills name their order, role and trigger (#23)", _to_v10),
    Step(11, "restart of resting orders: fills.fee_exact; order_queues and market_fills (#23)", _to_v11),
    Step(12, "shadow_events, shadow_fills: the orders under the other queue models (#23 band)", _to_v12),
)


#: Indexes dropped since version 1, dropped on every open (idempotent): v3 dropped the snapshot
#: indexes by ticker (see SnapshotRow); the decision indexes by time and ticker went with no new
#: version, as nothing reads differently (see DecisionRow), so a v4 file may still have them.
DROPPED_INDEXES = ("snapshots_ticker", "snapshots_ticker_ts", "decisions_ts", "decisions_ticker")


def check_steps(steps: Sequence[Step]) -> int:
    """The version the steps reach; a gap, a repeat or a step out of order is refused."""
    for before, after in zip(steps, steps[1:]):
        if after.version != before.version + 1:
            raise ValueError(f"migration steps must go one version at a time: {before.version} then {after.version}")
    return steps[-1].version


SCHEMA_VERSION = check_steps(STEPS)


def file_version(db: pw.SqliteDatabase) -> int | None:
    """The file's recorded schema version; None for a fresh file (no tables). A Kakashi file
    from before versions were recorded counts as 1."""
    if not db.get_tables():
        return None
    if "control" not in db.get_tables():
        return 1
    row = db.execute_sql("SELECT value FROM control WHERE key = ?", (Control.SCHEMA_VERSION.value,)).fetchone()
    return int(row[0]) if row else 1  # the opener refused an unreadable or newer version already


def upgrade(db: pw.SqliteDatabase, steps: Sequence[Step] = STEPS) -> list[Step]:
    """Bring the open file to the last step's version (the caller holds the transaction) and
    return the steps taken."""
    version = file_version(db)
    taken = [] if version is None else [s for s in steps if s.version > version]
    for step in taken:
        step.apply(db)
    for index in DROPPED_INDEXES:
        db.execute_sql(f"DROP INDEX IF EXISTS {index}")
    db.create_tables(MODELS, safe=True)
    db.execute_sql(
        "INSERT INTO control (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (Control.SCHEMA_VERSION.value, str(steps[-1].version)),
    )
    return taken
