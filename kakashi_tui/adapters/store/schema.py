"""The database's tables (peewee models) at the current schema version. How an older file
reaches them, one version at a time, is declared in ``migrations``; the version number lives there.
"""

from __future__ import annotations

import sqlite3

import peewee as pw


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
    settlement_bounds_type = pw.CharField(default="default")  # v6: `floor` markets are never traded
    settlement_floor = pw.TextField(null=True)  # v6: exact dollar text (up to 6 decimals)
    price_ranges = pw.TextField(null=True)  # v6: the market's grid, core/grid.py grid_text
    exchange_index = pw.IntegerField(null=True)  # v6: the exchange shard
    event_exclusive = pw.BooleanField(null=True)  # v8: its event's mutually_exclusive (NULL: not known)

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
    # v8 (#23): an order can fill many times, so a decision many times: not unique any more
    decision_id = pw.IntegerField(null=True, index=True)
    ts = pw.BigIntegerField(index=True)
    ticker = pw.CharField(index=True)
    side = pw.CharField()
    action = pw.CharField()  # buy | sell
    requested_hundredths = pw.BigIntegerField()
    contracts_hundredths = pw.BigIntegerField()
    value_cc = pw.BigIntegerField()  # cost of a buy, proceeds of a sell
    fee_cc = pw.BigIntegerField()
    levels = pw.TextField()
    order_id = pw.IntegerField(null=True, index=True)  # v8: the paper order filled (NULL: a flatten sale)
    role = pw.CharField(null=True)  # v8: maker | taker (NULL: before v8, a flatten sale)
    trigger = pw.CharField(null=True)  # v8: taker | through | at_price_queue | cross (core/orders.py)
    # v11: the fill's fee before rounding, exact dollars as text (what the order's fee accumulator
    # added; NULL: a flatten sale, before v11): a restart resumes the accumulator from these
    fee_exact = pw.TextField(null=True)

    class Meta:
        table_name = "fills"


class OrderRow(_Base):
    """One paper order (issue #23), as decided: never changed (its life is ``order_events``)."""

    ts = pw.BigIntegerField()  # decided_ts: when the strategy decided (the order's submitted event)
    ticker = pw.CharField()
    side = pw.CharField()
    limit_cc = pw.IntegerField()  # the price of its own side (a NO bid at 0.58: side no, 5800)
    quantity_hundredths = pw.BigIntegerField()
    tif = pw.CharField()  # ioc | gtc | gtd
    post_only = pw.BooleanField(default=False)
    expires_ts = pw.BigIntegerField(null=True)  # gtd only
    insert_latency_ms = pw.IntegerField()  # used, and so replayed: active at ts + this
    cancel_latency_ms = pw.IntegerField()
    mode = pw.CharField()  # take | post: what the strategy meant it to do
    queue_model = pw.CharField()  # the fill model it was filled by (core/queue.py)
    decision_id = pw.IntegerField(null=True)

    class Meta:
        table_name = "orders"


class OrderEventRow(_Base):
    """An order's events, append-only: ``submitted``, ``active``, ``partially_filled``, ``filled``,
    ``cancelled``, ``expired``, ``rejected`` (core/orders.py's states, with their reason), and
    ``cancel_requested`` (a cancel asked for: effective ``cancel_latency_ms`` later)."""

    order_id = pw.IntegerField(index=True)
    ts = pw.BigIntegerField()
    state = pw.CharField()
    reason = pw.TextField(default="")
    fill_id = pw.IntegerField(null=True)  # a fill event's row in ``fills``

    class Meta:
        table_name = "order_events"


class OrderQueueRow(_Base):
    """v11 (#23, restart): a live resting order's place in its market's queue model as of the last
    committed tick (core/queue.py ``QueuePlace``), rewritten in each tick's transaction; gone
    with the order."""

    order_id = pw.IntegerField(primary_key=True)
    ticker = pw.CharField()
    ahead_hundredths = pw.BigIntegerField(null=True)  # NULL: not yet known (no book in force yet)
    level_hundredths = pw.BigIntegerField()  # the displayed size at its price when last seen
    traded_hundredths = pw.BigIntegerField()  # prints at its price since then

    class Meta:
        table_name = "order_queues"


class MarketFillsRow(_Base):
    """v11 (#23, restart): what a market's fill models know beyond its orders' places, as of the
    last committed tick (core/queue.py ``FillsState``): only markets with live orders and
    something to keep."""

    ticker = pw.CharField(primary_key=True)
    gap = pw.BooleanField(default=False)  # in a feed gap: nothing fills until the next full snapshot
    consumed = pw.TextField(default="[]")  # JSON [[side, price_cc, size_hundredths, used_hundredths], ...]

    class Meta:
        table_name = "market_fills"


class ShadowEventRow(_Base):
    """The band (issue #23 item 7, core/shadows.py): a paper order's events under a queue model
    the run did not trade by, append-only, as ``order_events`` are under the one it did; a fill's
    count, value and fee inline (never in ``fills``, never in the ledger). ``state`` is an
    order state or ``cancel_requested``; the fill columns are NULL on any other event."""

    order_id = pw.IntegerField(index=True)  # orders.id
    model = pw.CharField()  # risk_averse | prob | front (core/queue.py QUEUE_MODELS)
    ts = pw.BigIntegerField()
    state = pw.CharField()
    reason = pw.TextField(default="")
    role = pw.CharField(null=True)  # a fill's: maker | taker
    trigger = pw.CharField(null=True)  # a fill's: taker | through | at_price_queue | cross
    contracts_hundredths = pw.BigIntegerField(null=True)
    value_cc = pw.BigIntegerField(null=True)  # what the contracts cost (rounded up per level)
    fee_cc = pw.BigIntegerField(null=True)  # through the copy's own fee accumulator
    levels = pw.TextField(null=True)  # a fill's levels, as ``fills.levels``
    fee_exact = pw.TextField(null=True)  # a fill's fee before rounding, as ``fills.fee_exact``

    class Meta:
        table_name = "shadow_events"


class ShadowFillsRow(_Base):
    """The band's shadow models' state as of the last committed tick (a restart's, as
    ``order_queues`` and ``market_fills`` are the real models'): one row per market and model
    with anything to keep, JSON (core/shadows.py ``ShadowState``)."""

    ticker = pw.CharField()
    model = pw.CharField()
    state = pw.TextField()  # {"places": [[order_id, ahead, level, traded]], "gap", "consumed", "seed", "drawn"}

    class Meta:
        table_name = "shadow_fills"
        primary_key = pw.CompositeKey("ticker", "model")


class LedgerRow(_Base):
    ts = pw.BigIntegerField(index=True)
    kind = pw.CharField()
    ticker = pw.CharField(default="")
    side = pw.CharField(null=True)
    contracts_hundredths = pw.BigIntegerField(default=0)
    amount_cc = pw.BigIntegerField()
    key = pw.CharField(unique=True)
    # (a default only so that step 4's rebuild, which creates today's table, can copy old rows)
    chain = pw.TextField(
        constraints=[pw.SQL("DEFAULT ''")]
    )  # SHA-256 hex of the previous entry's chain and this entry (store/chain.py)

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


class PlanRow(_Base):
    """A plan registered before the evidence (``kakashi plan``; core/plan.py). Its study (the
    columns up to ``after_tick``) is fixed once trading starts on it (``Store.update_plan``
    refuses: a new plan is a new row); the engine writes its outcome once (a kill, or the
    verdict at the sample). Conditions are JSON lists of their texts (the grammar's canonical form)."""

    created_ms = pw.BigIntegerField()  # wall clock
    hypothesis = pw.TextField()
    settings = pw.TextField()  # JSON: the configuration in force at registration
    beliefs = pw.TextField()  # where p_hat comes from
    sample_n = pw.BigIntegerField()
    sample_unit = pw.CharField()  # trades | days
    kill = pw.TextField()
    success = pw.TextField()
    # trading on the plan is what comes after these (ids, not times: the simulator's clock is not the wall's)
    after_decision_id = pw.BigIntegerField()
    after_fill_id = pw.BigIntegerField()
    after_tick = pw.BigIntegerField()
    killed_ts = pw.BigIntegerField(null=True)  # the engine's clock
    killed_tick = pw.BigIntegerField(null=True)
    killed_by = pw.TextField(null=True)  # the kill condition's text
    killed_detail = pw.TextField(null=True)  # the numbers it read
    judged_ts = pw.BigIntegerField(null=True)
    judged_tick = pw.BigIntegerField(null=True)
    verdict = pw.CharField(null=True)  # passed | not passed
    verdict_detail = pw.TextField(null=True)

    class Meta:
        table_name = "plans"


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
    PlanRow,
    OrderRow,
    OrderEventRow,
    OrderQueueRow,
    MarketFillsRow,
    ShadowEventRow,
    ShadowFillsRow,
]


#: Tables whose presence marks a file as Kakashi's (a file with other tables and not these is foreign).
KAKASHI_MARKERS = frozenset({"control", "ledger"})


def foreign_object(con: sqlite3.Connection) -> str | None:
    """A trigger or view in the file, in words (``a trigger 't'``); Kakashi creates neither, and
    a planted trigger acts inside Kakashi's own transactions (deleting ledger entries as a tick
    writes). None when there is none."""
    row = con.execute("SELECT type, name FROM sqlite_master WHERE type IN ('trigger', 'view') LIMIT 1").fetchone()
    return None if row is None else f"a {row[0]} {str(row[1])[:40]!r}"
