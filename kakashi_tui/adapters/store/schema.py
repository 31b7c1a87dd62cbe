"""The database's tables (peewee models) at schema version ``SCHEMA_VERSION``, and what older
files need to reach it: the columns added after version 1, the indexes since dropped, and the v4
rebuild's SQL (fixed point: every REAL price and count converted to integer units).
"""

from __future__ import annotations

import peewee as pw

SCHEMA_VERSION = 4


#: Columns added after version 1: (table, column, SQL type and default). Applied on open, to a
#: table still in its pre-v4 form (v4 rebuilds the tables it converts, see _to_v4).
MIGRATIONS = [("decisions", "equity_cents", "INTEGER NOT NULL DEFAULT 0")]


#: Indexes dropped since version 1 (v3: snapshots by ticker, see SnapshotRow; and, with no new
#: version as nothing reads differently, decisions by time and by ticker, see DecisionRow).
DROPPED_INDEXES = ("snapshots_ticker", "snapshots_ticker_ts", "decisions_ts", "decisions_ticker")


class _Base(pw.Model):
    class Meta:
        legacy_table_names = False


# Units (data_schema.md): prices and money in integer centicents ($0.0001, ``*_cc``), counts in
# integer hundredths of a contract (``*_hundredths``), time in UTC epoch ms.
class MarketRow(_Base):
    ticker = pw.CharField(primary_key=True)
    title = pw.TextField(default="")
    subtitle = pw.TextField(default="")
    series = pw.CharField(default="")
    event_ticker = pw.CharField(default="")
    status = pw.CharField()
    market_type = pw.CharField(default="binary")
    open_ts = pw.BigIntegerField(null=True)
    close_ts = pw.BigIntegerField(null=True)
    result = pw.CharField(null=True)
    settlement_value = pw.TextField(null=True)  # exact dollar text: the spec allows 6 decimals
    fee_type = pw.CharField(null=True)
    fee_multiplier = pw.TextField(null=True)  # exact decimal text, as the exchange gave it
    fee_waiver_until_ts = pw.BigIntegerField(null=True)
    exchange_updated_ts = pw.BigIntegerField(null=True)
    updated_ts = pw.BigIntegerField()

    class Meta:
        table_name = "markets"


class SnapshotRow(_Base):
    ticker = pw.CharField()
    # The one index: time. Each tick appends at its right edge (a page or two per commit,
    # however many markets); a market's latest quote is found walking it back from the newest
    # row. A (ticker, ...) index would dirty one leaf per market per tick and slow every
    # commit as the table grows (see data_schema.md).
    ts = pw.BigIntegerField(index=True)
    fetched_ts = pw.BigIntegerField()
    yes_bid_cc = pw.IntegerField(null=True)
    yes_ask_cc = pw.IntegerField(null=True)
    last_cc = pw.IntegerField(null=True)
    volume_hundredths = pw.BigIntegerField(default=0)
    book = pw.TextField(default="")
    source = pw.CharField(default="")

    class Meta:
        table_name = "snapshots"


class EstimateRow(_Base):
    ticker = pw.CharField(index=True)
    ts = pw.BigIntegerField(index=True)
    p_hat = pw.FloatField()
    source = pw.CharField()

    class Meta:
        table_name = "estimates"


class DecisionRow(_Base):
    # No index but the id: nothing reads decisions by time or market (reports scan them, the
    # desk's log reads the newest ids), and a market's decisions come every tick at a thousand
    # markets, so an index by ticker dirtied leaves all over the file at each commit
    # (benchmarks/README.md: replay).
    ts = pw.BigIntegerField()
    tick = pw.BigIntegerField(default=0)
    ticker = pw.CharField()
    side = pw.CharField()
    contracts_hundredths = pw.BigIntegerField()
    limit_price_cc = pw.IntegerField()
    best_ask_cc = pw.IntegerField()
    p_hat = pw.FloatField()
    ev = pw.FloatField()
    worst_case_cc = pw.BigIntegerField()
    equity_cc = pw.BigIntegerField(default=0)
    accepted = pw.BooleanField()
    reason = pw.TextField()

    class Meta:
        table_name = "decisions"


class FillRow(_Base):
    decision_id = pw.IntegerField(null=True, unique=True)
    ts = pw.BigIntegerField(index=True)
    ticker = pw.CharField(index=True)
    side = pw.CharField()
    action = pw.CharField()  # buy | sell
    requested_hundredths = pw.BigIntegerField()
    contracts_hundredths = pw.BigIntegerField()
    value_cc = pw.BigIntegerField()  # cost of a buy, proceeds of a sell
    fee_cc = pw.BigIntegerField()
    levels = pw.TextField()

    class Meta:
        table_name = "fills"


class LedgerRow(_Base):
    ts = pw.BigIntegerField(index=True)
    kind = pw.CharField()
    ticker = pw.CharField(default="")
    side = pw.CharField(null=True)
    contracts_hundredths = pw.BigIntegerField(default=0)
    amount_cc = pw.BigIntegerField()
    key = pw.CharField(unique=True)

    class Meta:
        table_name = "ledger"


class OutcomeRow(_Base):
    ticker = pw.CharField(primary_key=True)
    status = pw.CharField(default="finalized")
    result = pw.CharField()
    settlement_value = pw.TextField(null=True)  # exact dollar text: the spec allows 6 decimals
    ts = pw.BigIntegerField()  # when Kakashi first saw it settled (and paid it)
    updated_ts = pw.BigIntegerField(default=0)  # when its status or result last changed

    class Meta:
        table_name = "outcomes"


class RejectedRow(_Base):
    """One record per (source, ticker, reason): a bad market repeating every tick counts up."""

    source = pw.CharField()
    ticker = pw.CharField(default="")
    reason = pw.TextField()
    count = pw.BigIntegerField(default=1)
    first_seen = pw.BigIntegerField()
    last_seen = pw.BigIntegerField(index=True)
    payload = pw.TextField()  # the last one seen

    class Meta:
        table_name = "rejected_rows"
        indexes = ((("source", "ticker", "reason"), True),)


class ControlRow(_Base):
    key = pw.CharField(primary_key=True)
    value = pw.TextField()

    class Meta:
        table_name = "control"


class RequestRow(_Base):
    """A command from another process (``kakashi kill/pause/resume``): the running engine
    adopts it on its next tick and stamps ``applied_tick``; with no engine running, the
    command line applies it itself. Either way, once, in id order."""

    ts = pw.BigIntegerField()
    kind = pw.CharField()  # kill | pause | resume
    arg = pw.TextField(default="")
    applied_tick = pw.BigIntegerField(null=True)

    class Meta:
        table_name = "requests"


class EventRow(_Base):
    ts = pw.BigIntegerField(index=True)
    kind = pw.CharField()
    detail = pw.TextField(default="")

    class Meta:
        table_name = "events"


class TickRow(_Base):
    tick = pw.BigIntegerField(unique=True)
    ts = pw.BigIntegerField(index=True)
    wall_ms = pw.BigIntegerField()
    saved = pw.IntegerField()
    rejected = pw.IntegerField()
    decisions = pw.IntegerField()
    fills = pw.IntegerField()
    settled = pw.IntegerField()
    errors = pw.IntegerField()
    latency_ms = pw.FloatField()
    cash_cc = pw.BigIntegerField()
    equity_cc = pw.BigIntegerField()

    class Meta:
        table_name = "ticks"


MODELS = [
    MarketRow,
    SnapshotRow,
    EstimateRow,
    DecisionRow,
    FillRow,
    LedgerRow,
    OutcomeRow,
    RejectedRow,
    ControlRow,
    EventRow,
    TickRow,
    RequestRow,
]


#: Tables whose presence marks a file as Kakashi's (a file with other tables and not these is foreign).
KAKASHI_MARKERS = frozenset({"control", "ledger"})
_P = "CAST(ROUND({0} * 10000) AS INTEGER)"  # a REAL price -> centicents (old prices were on the cent grid)


#: Schema v4 (fixed point): each table still in its old form is rebuilt in the new one with every
#: row converted: (model, a column only the new form has, new columns, SELECT over the old rows).
_V4 = [
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
