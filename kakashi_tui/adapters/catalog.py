"""The market-data catalog: a Parquet dataset of what the feed saw, partitioned by UTC date.

Layout (see data_schema.md, "Market-data catalog")::

    catalog/
      snapshots/date=2026-11-26/part-1795651200000-000001.parquet
      markets/date=2026-11-26/part-...parquet     (metadata and lifecycle changes)
      estimates/date=2026-11-26/part-...parquet   (beliefs, when they change)
      trades/date=...                              (public trade prints, WebSocket)
      book_deltas/date=...                         (order-book snapshots and deltas, WebSocket)
      candles/date=...                             (Kalshi's candlesticks: kakashi catalog backfill)
      exchange_shards/date=...                     (halted exchange shards, when the set changes)
      seen/date=...                                (markets followed and unchanged, one row a tick)
      fill_context/date=...                        (paper orders: the round trip, polled books; #23)
      commands/date=...                            (the operator's commands the engine applied)
      runs/date=...                                (each run's start and the settings it traded with)

Units are exact integers from the start: prices in $0.0001 (``*_cc``: 0.42 -> 4200),
counts in hundredths of a contract (``*_hundredths``: 10 -> 1000), time in UTC epoch ms.

A writer buffers rows in memory and rolls a segment every ``roll_s`` seconds, when a
buffer reaches ``max_rows`` and on close. A segment is written to a hidden temporary name
(``.part-*.tmp``: readers and ``*.parquet`` globs skip it), fsynced, then renamed into
place, so a crash or ``kill -9`` loses at most the rows buffered since the last roll and
never leaves a half-written ``.parquet`` file. One writer per catalog (a lock file).
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kakashi_tui.adapters.beliefs import check_ticker
from kakashi_tui.adapters.source import CommandRecord, Estimator, FetchBatch, RawRow, Source
from kakashi_tui.adapters.userfiles import check_regular
from kakashi_tui.core.errors import ConfigError, KakashiError
from kakashi_tui.core.models import Estimate, Market, Quote, QuoteRules
from kakashi_tui.core.money import cc_to_price, count_to_hundredths, hundredths_to_count, price_to_cc
from kakashi_tui.core.rowrules import COUNT
from kakashi_tui.core.timeguard import AHEAD_MS, MAX_TS, MIN_TS, ahead_problem, ts_problem
from kakashi_tui.core.validate import validate_row

PRICE_SCALE = 10_000  # *_cc columns: integer units of $0.0001
COUNT_SCALE = 100  # *_hundredths columns: integer hundredths of a contract
TABLES = (
    "snapshots",
    "markets",
    "estimates",
    "trades",
    "book_deltas",
    "candles",
    "exchange_shards",
    "seen",
    "fill_context",
    "commands",
    "runs",
)
DEFAULT_ROLL_S = 120.0
DEFAULT_MAX_ROWS = 500_000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")  # a date folder's name after "date="

# -- versions -----------------------------------------------------------------------------------
# The catalog is a stored format: files recorded by an older Kakashi must still replay alike.
# Every file written carries the format's version in its schema metadata (VERSION_KEY); a file
# without it is version 1. A reader reads a file under the names its version wrote
# (``as_written``) and brings it up to this version (``upgrade``): every per-file read goes
# through ``file_version`` and those two, so a day folder may hold files of several versions.
# Adding a version (data_schema.md, "Catalog versions") is one entry in UPGRADES.


@dataclass(frozen=True)
class Upgrade:
    """What one catalog version changed from the version before it, per table."""

    #: table -> {name in the version before: name in this one}; a book level's field (the structs
    #: in ``yes_bids`` / ``no_bids``) as ``"column.field"``
    renames: dict[str, dict[str, str]] = field(default_factory=dict)
    #: table -> {column (its name in this version): its type in the version before}
    retyped: dict[str, dict[str, pa.DataType]] = field(default_factory=dict)
    #: a table read as the version before wrote it (columns already renamed) -> its values and
    #: types as this version holds them (for a change of unit or type; None: renames only)
    convert: Callable[[str, pa.Table], pa.Table] | None = None


#: Version 2 (issue #21): one spelling per unit: prices and money ``_cc`` (was ``_e4``), counts
#: ``_hundredths`` (was ``_e2``). Values and types unchanged.
UPGRADES: dict[int, Upgrade] = {
    2: Upgrade(
        renames={
            "snapshots": {
                "yes_bid_e4": "yes_bid_cc",
                "yes_ask_e4": "yes_ask_cc",
                "last_e4": "last_cc",
                "volume_e2": "volume_hundredths",
                "yes_bids.price_e4": "yes_bids.price_cc",
                "yes_bids.qty_e2": "yes_bids.qty_hundredths",
                "no_bids.price_e4": "no_bids.price_cc",
                "no_bids.qty_e2": "no_bids.qty_hundredths",
            },
            "markets": {"settlement_value_e4": "settlement_value_cc"},
            "trades": {"yes_price_e4": "yes_price_cc", "count_e2": "count_hundredths"},
            "book_deltas": {"price_e4": "price_cc", "delta_e2": "delta_hundredths"},
        }
    ),
    # Version 3 (issue #22, Kalshi 3.34): a settlement value may have 6 decimals, so the markets'
    # ``settlement_value_cc`` ($0.0001) is widened to ``settlement_value_micros`` ($0.000001,
    # x100); new columns read as null from older files: the markets' ``settlement_bounds_type``,
    # ``settlement_floor_micros``, ``price_ranges``, ``exchange_index``, and
    # ``book_deltas.exchange_ts`` (the exchange's time of the frame); the trades'
    # ``taker_book_side``, ``is_block_trade``, ``sending_ts_ms`` (``taker_side`` now holds
    # ``taker_outcome_side`` where Kalshi sends it); the new table ``candles`` (catalog backfill);
    # the new table ``exchange_shards`` (the halted shards, when the set changes: replayed);
    # and the new table ``seen`` (issue #22, item 10): a quote is written when it changes, and the
    # markets a tick still followed unchanged are one row of tickers (a replay decides on each
    # at its last quote, as the live engine did: stale-quote refusals replay without re-sends).
    3: Upgrade(
        renames={"markets": {"settlement_value_cc": "settlement_value_micros"}},
        convert=lambda table, t: _v3_convert(table, t),
    ),
    # Version 4 (issue #24 item 5): the markets' ``event_exclusive``, their event's
    # ``mutually_exclusive`` (the event cap reads it: a replay refuses what the run refused); null
    # in older files, read as not known (not exclusive), as the run that wrote them counted it.
    4: Upgrade(),
    # Version 5 (issue #23): the new table ``fill_context``, what a paper order's fills need of a
    # tick besides the market data: the source's measured request round trip (the "auto" order
    # latency) when it changed, and the held markets whose books that tick were polled (a polled
    # book is known only at its fetch). Older catalogs have none: a replay of one uses 500 ms and
    # reads every book as in force until the next.
    5: Upgrade(),
    # Version 6 (issue #23, item 10): the new table ``commands``, the operator's commands the
    # engine applied (kill, pause, resume, re-arm, flatten, a p̂ set, ...), each with its time
    # and the tick it came before, so a replay applies them where the live run did. Older
    # catalogs have none: they replay as if no command was given.
    6: Upgrade(),
    # Version 7 (issue #23, item 10): the trades' ``recv_ts``, when Kakashi received the print (the
    # tick that handed it to the paper orders' fill models). Null in older files (and for prints
    # never seen live: backfill, import): read as the print's own ``ts``, as before.
    7: Upgrade(),
    # Version 8 (issue #23): the new table ``runs``, one row each time a recording run's engine
    # starts: its clock then (a new database's deposit is dated by it), the source and the settings
    # that change its decisions and fills, as they were. A replay starts its clock there (the
    # deposit and every chain hash match the run's) and says which of its settings differ. Older
    # catalogs have none: a replay of one starts at its first row, as before.
    8: Upgrade(),
}
MICROS_PER_CC = 100  # $0.000001 in a $0.0001


def _v3_convert(table: str, t: pa.Table) -> pa.Table:
    """Version 2 -> 3: a settlement value in centicents becomes micro-dollars (x100, exact)."""
    if table != "markets" or "settlement_value_micros" not in t.column_names:
        return t
    i = t.column_names.index("settlement_value_micros")
    col = pc.multiply(t.column(i).cast(pa.int64()), pa.scalar(MICROS_PER_CC, pa.int64()))
    return t.set_column(i, t.schema.field(i), col)


#: The version this Kakashi writes (and the newest it reads).
CATALOG_VERSION = max(UPGRADES)
VERSION_KEY = "kakashi.catalog_version"
_VERSIONED = {VERSION_KEY: str(CATALOG_VERSION)}


def file_version(schema: pa.Schema, newest: int = CATALOG_VERSION) -> int:
    """The catalog version of a file with this (Arrow) schema: its ``kakashi.catalog_version``,
    1 when it has none (written before versions were kept). A version this Kakashi does not know
    (newer, or no version) raises ``pa.ArrowInvalid``: the readers call the file unreadable."""
    raw = (schema.metadata or {}).get(VERSION_KEY.encode())
    if raw is None:
        return 1
    v = int(raw) if raw.isdigit() and len(raw) < 6 else 0
    if not 1 <= v <= newest:
        text = raw.decode("utf-8", "replace")
        raise pa.ArrowInvalid(f"its catalog version {_shown(text)} is not one this Kakashi reads (1 to {newest})")
    return v


def _with_level_names(t: pa.DataType, column: str, names: dict[str, str]) -> pa.DataType:
    """``t`` (a list of structs, or a struct) with its struct's fields renamed by ``names``
    (``"column.field"`` keys and values); any other type as it is."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = t.value_field.with_type(_with_level_names(t.value_type, column, names))
        return pa.list_(inner) if pa.types.is_list(t) else pa.large_list(inner)
    if pa.types.is_struct(t):
        fields = [t.field(i) for i in range(t.num_fields)]
        out = []
        for f in fields:
            new = names.get(f"{column}.{f.name}")
            out.append(f if new is None else f.with_name(new.split(".", 1)[1]))
        return pa.struct(out)
    return t


def as_written(schema: pa.Schema, table: str, version: int, upgrades: dict[int, Upgrade] = UPGRADES) -> pa.Schema:
    """``schema`` (some of a table's columns, as this version names and types them) as a file of
    ``version`` holds them: what to read such a file with."""
    fields = list(schema)
    for v in range(max(upgrades), version, -1):
        up = upgrades[v]
        back = {new: old for old, new in up.renames.get(table, {}).items()}
        types = up.retyped.get(table, {})
        fields = [
            pa.field(
                back.get(f.name, f.name),
                _with_level_names(types.get(f.name, f.type), f.name, back),
                f.nullable,
                f.metadata,
            )
            for f in fields
        ]
    return pa.schema(fields, metadata=schema.metadata)


def file_columns(table: str, columns: list[str], version: int, upgrades: dict[int, Upgrade] = UPGRADES) -> list[str]:
    """Column names of this version as a file of ``version`` names them."""
    for v in range(max(upgrades), version, -1):
        back = {new: old for old, new in upgrades[v].renames.get(table, {}).items()}
        columns = [back.get(c, c) for c in columns]
    return columns


def upgrade(table: str, t: pa.Table, version: int, upgrades: dict[int, Upgrade] = UPGRADES) -> pa.Table:
    """A table read from a file of ``version`` (under that version's names) as this version has
    it: renamed (a level's struct fields too: the same arrays under the new names) and converted,
    one version at a time."""
    for v in range(version + 1, max(upgrades) + 1):
        up = upgrades[v]
        names = up.renames.get(table)
        if names:
            fields, columns = [], []
            for f, col in zip(t.schema, t.columns):
                typ = _with_level_names(f.type, f.name, names)
                if typ != f.type:  # (a cast across field names is refused; the layout is the same)
                    col = pa.chunked_array([c.view(typ) for c in col.chunks], type=typ)
                fields.append(pa.field(names.get(f.name, f.name), typ, f.nullable, f.metadata))
                columns.append(col)
            t = pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=t.schema.metadata))
        if up.convert is not None:
            t = up.convert(table, t)
    return t


def read_file(path: Path, table: str, columns: list[str] | None = None, schema: pa.Schema | None = None) -> pa.Table:
    """One segment file of ``table`` as this version has it: ``schema`` (default the table's)
    selected to ``columns``, an older file read under its own names and upgraded."""
    schema = SCHEMAS[table] if schema is None else schema
    version = file_version(pq.read_schema(path))
    if version == CATALOG_VERSION:
        return pq.read_table(path, columns=columns, schema=schema)
    old = as_written(schema, table, version)
    names = None if columns is None else file_columns(table, columns, version)
    return upgrade(table, pq.read_table(path, columns=names, schema=old), version)


LEVEL = pa.struct(
    [pa.field("price_cc", pa.int64(), nullable=False), pa.field("qty_hundredths", pa.int64(), nullable=False)]
)

SNAPSHOTS = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("yes_bid_cc", pa.int64()),
        pa.field("yes_ask_cc", pa.int64()),
        pa.field("last_cc", pa.int64()),
        pa.field("volume_hundredths", pa.int64(), nullable=False),
        pa.field("yes_bids", pa.list_(LEVEL)),
        pa.field("no_bids", pa.list_(LEVEL)),
        pa.field("source", pa.string(), nullable=False),
        # when Kakashi fetched the row (the tick it arrived in); ``ts`` is when the exchange says the
        # quote was seen. Null (and absent in files written before it) reads as ``ts``.
        pa.field("recv_ts", pa.int64()),
    ],
    metadata={
        "kakashi.table": "snapshots",
        "kakashi.units": "ts, recv_ts UTC epoch ms; *_cc $0.0001; *_hundredths 1/100 contract",
        **_VERSIONED,
    },
)

MARKETS = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("series", pa.string()),
        pa.field("event_ticker", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("market_type", pa.string()),
        pa.field("open_ts", pa.int64()),
        pa.field("close_ts", pa.int64()),
        pa.field("result", pa.string()),
        pa.field("settlement_value_micros", pa.int64()),
        pa.field("subtitle", pa.string()),
        pa.field("updated_ts", pa.int64()),
        pa.field("fee_multiplier", pa.decimal128(38, 18)),
        pa.field("fee_type", pa.string()),
        pa.field("fee_waiver_until_ts", pa.int64()),
        # version 3 (Kalshi 3.31-3.34): null in older files (a default market, no grid, shard 0)
        pa.field("settlement_bounds_type", pa.string()),
        pa.field("settlement_floor_micros", pa.int64()),
        pa.field("price_ranges", pa.string()),
        pa.field("exchange_index", pa.int64()),
        # version 4 (#24): the event's mutually_exclusive; null: not known (and in older files)
        pa.field("event_exclusive", pa.bool_()),
    ],
    metadata={
        "kakashi.table": "markets",
        "kakashi.units": "ts UTC epoch ms; *_micros $0.000001",
        **_VERSIONED,
    },
)

P_HAT = pa.decimal128(38, 18)
ESTIMATES = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("ticker", pa.string(), nullable=False),
        # p_hat rounded to 18 places, for any reader's arithmetic; p_hat_exact is the belief as it
        # was given (exact decimal text: a belief has no grid, 1e-30 and 0.9999999999999999999999
        # included). Null, and absent in files written before it, reads as p_hat.
        pa.field("p_hat", P_HAT, nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("p_hat_exact", pa.string()),
    ],
    metadata={
        "kakashi.table": "estimates",
        "kakashi.units": "ts UTC epoch ms; p_hat probability of YES (18 places); p_hat_exact its exact decimal text",
        **_VERSIONED,
    },
)

TRADES = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("yes_price_cc", pa.int64(), nullable=False),
        pa.field("count_hundredths", pa.int64(), nullable=False),
        pa.field("taker_side", pa.string()),
        pa.field("trade_id", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        # version 3 (spec 3.34; null in older files and where Kalshi did not say):
        pa.field("taker_book_side", pa.string()),  # bid | ask
        pa.field("is_block_trade", pa.bool_()),  # matched off the book: never book liquidity
        pa.field("sending_ts_ms", pa.int64()),  # when Kalshi sent the WebSocket frame
        # version 7: when Kakashi received it (a replay hands it to the fill models then); null: ``ts``
        pa.field("recv_ts", pa.int64()),
    ],
    metadata={
        "kakashi.table": "trades",
        "kakashi.units": "ts, sending_ts_ms, recv_ts UTC epoch ms; *_cc $0.0001; *_hundredths 1/100 contract",
        **_VERSIONED,
    },
)

BOOK_DELTAS = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("side", pa.string()),
        pa.field("price_cc", pa.int64()),
        pa.field("delta_hundredths", pa.int64()),
        pa.field("seq", pa.int64()),
        pa.field("sid", pa.int64()),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        # the exchange's time of the frame (its ts_ms, else sending_ts_ms, else ts); ``ts`` is when
        # it arrived. Null for a reset, a frame without one, and in files before version 3.
        pa.field("exchange_ts", pa.int64()),
    ],
    metadata={
        "kakashi.table": "book_deltas",
        "kakashi.units": "ts, exchange_ts UTC epoch ms; *_cc $0.0001; *_hundredths 1/100 contract",
        **_VERSIONED,
        "kakashi.rebuild": "a ticker's book: its last 'snapshot' rows (one sid/seq/ts) then its 'delta' rows; "
        "'reset': unknown until the next snapshot",
    },
)

#: Kalshi's own candlesticks (catalog version 3; ``kakashi catalog backfill``): one row per market
#: and period, dated by the period's end. ``close_cc`` is the period's last trade (null: none
#: traded), what a report reads as a closing price.
CANDLES = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),  # the period's end (inclusive), UTC epoch ms
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("period_minutes", pa.int64(), nullable=False),  # 1, 60 or 1440
        pa.field("close_cc", pa.int64()),  # the period's last trade price
        pa.field("open_cc", pa.int64()),
        pa.field("high_cc", pa.int64()),
        pa.field("low_cc", pa.int64()),
        pa.field("yes_bid_close_cc", pa.int64()),  # the best YES bid at the period's end
        pa.field("yes_ask_close_cc", pa.int64()),  # the best YES ask at the period's end
        pa.field("volume_hundredths", pa.int64()),  # contracts traded in the period
        pa.field("open_interest_hundredths", pa.int64()),  # at the period's end
        pa.field("source", pa.string(), nullable=False),
    ],
    metadata={
        "kakashi.table": "candles",
        "kakashi.units": "ts UTC epoch ms (the period's end); *_cc $0.0001; *_hundredths 1/100 contract",
        **_VERSIONED,
    },
)

#: The exchange's shards not trading (catalog version 3; Kalshi ``GET /exchange/status``
#: ``exchange_index_statuses[].trading_active``, spec 3.34): one row each time the set the source
#: reads changes (its first reading included), dated by the tick that read it, so a replay pauses
#: the same markets at the same ticks (risk_limits.md 3a).
EXCHANGE_SHARDS = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),  # the tick that read it (its receive time)
        pa.field("halted", pa.list_(pa.int64()), nullable=False),  # every shard halted then; [] none
        pa.field("source", pa.string(), nullable=False),
    ],
    metadata={
        "kakashi.table": "exchange_shards",
        "kakashi.units": "ts UTC epoch ms; halted exchange_index numbers",
        **_VERSIONED,
    },
)
MAX_SHARD = 1_000_000  # (core/models.py: an exchange_index is 0 <= n < 1,000,000)
#: The markets a tick's source still followed, unchanged since their last row (catalog version 3;
#: ``FetchBatch.same``): one row a tick that had any, in the order the engine decided them, so a
#: replay decides on each market's last recorded quote at that tick, as the live engine did.
SEEN = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),  # the tick (its fetch's time), UTC epoch ms
        pa.field("tickers", pa.list_(pa.string()), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ],
    metadata={"kakashi.table": "seen", "kakashi.units": "ts UTC epoch ms (the tick)", **_VERSIONED},
)

#: What a paper order's fills need of a tick besides the market data (catalog version 5, #23):
#: one row a tick whose source's measured round trip changed (``round_trip_ms``; null: unchanged)
#: or whose held markets' books were polled (``polled``), so a replay uses the same latency and the
#: same book rule (core/queue.py: a polled book is known only at its fetch).
FILL_CONTEXT = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),  # the tick (its fetch's time), UTC epoch ms
        pa.field("round_trip_ms", pa.int64()),  # the source's median request round trip, when it changed
        pa.field("polled", pa.list_(pa.string()), nullable=False),  # held markets whose book was polled
        pa.field("source", pa.string(), nullable=False),
    ],
    metadata={"kakashi.table": "fill_context", "kakashi.units": "ts UTC epoch ms; round_trip_ms ms", **_VERSIONED},
)


#: The operator's commands the engine applied (catalog version 6; ``trading/commands.py``), in the
#: order applied: from the service's queue (the desk, a failure policy's kill) and adopted from
#: other processes' requests (``kakashi kill``, ``pause``, ``resume``). A replay applies each at
#: the top of the first tick after ``after_ts``, at its own ``ts`` (rules.md, "Replay").
COMMANDS = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),  # the engine's time it was applied with
        pa.field("tick", pa.int64(), nullable=False),  # the tick whose decisions it came before
        pa.field("after_ts", pa.int64()),  # the last tick completed before it (null: none)
        pa.field("kind", pa.string(), nullable=False),  # kill, pause, resume, rearm, flatten, ...
        pa.field("text", pa.string()),  # a kill's reason; the others' origin
        pa.field("ticker", pa.string()),  # set_estimate's market
        pa.field("p_hat_exact", pa.string()),  # set_estimate's belief, exact decimal text
        pa.field("source", pa.string(), nullable=False),
    ],
    metadata={
        "kakashi.table": "commands",
        "kakashi.units": "ts, after_ts UTC epoch ms (the engine's clock); p_hat_exact probability of YES",
        **_VERSIONED,
    },
)
#: A recording run's start (catalog version 8): one row each time the engine is made over a
#: recording source (a restart included), so a replay starts its clock where the run's did and
#: knows the settings it traded with (``trading/config.py`` ``recorded_settings``: strategy,
#: fills, risk, fees and bankroll, each as its config key and TOML value text; unset: absent).
SETTING = pa.struct([pa.field("key", pa.string(), nullable=False), pa.field("value", pa.string(), nullable=False)])
RUNS = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),  # the engine's clock at its start (the deposit's ts)
        pa.field("settings", pa.list_(SETTING), nullable=False),  # key ("strategy.mode") and TOML value text
        pa.field("source", pa.string(), nullable=False),  # the source kind: sim, kalshi
    ],
    metadata={"kakashi.table": "runs", "kakashi.units": "ts UTC epoch ms (the engine's clock)", **_VERSIONED},
)
MAX_SETTINGS = 200  # settings a run row keeps (a few dozen today)
MAX_SETTING_TEXT = 2_000  # characters of a setting's key or value text

COMMAND_KINDS = (
    "kill",
    "pause",
    "resume",
    "rearm",
    "flatten",
    "set_estimate",
    "reload_beliefs",
    "quit",
    "cancel_order",
)
MAX_COMMAND_TEXT = 2_000  # characters of a reason kept (it names nothing a replay decides on)

SCHEMAS = {
    "snapshots": SNAPSHOTS,
    "markets": MARKETS,
    "estimates": ESTIMATES,
    "trades": TRADES,
    "book_deltas": BOOK_DELTAS,
    "candles": CANDLES,
    "exchange_shards": EXCHANGE_SHARDS,
    "seen": SEEN,
    "fill_context": FILL_CONTEXT,
    "commands": COMMANDS,
    "runs": RUNS,
}


def utc_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


# The catalog's conversions are core/money.py's rules (one rule, one home), with what the
# catalog adds: None (an absent price) passes through, a value off the grid is refused in the
# catalog's words (a refused market change's reason says them), a whole int count is taken as
# it is, and a count reads back as an int when whole (as a feed hands it over).


def to_cc(p: Decimal | None) -> int | None:
    """An exact price as centicents (``money.price_to_cc``: never rounded); None stays None; a
    price finer than $0.0001 is refused (``price 0.12345 is finer than $0.0001``)."""
    if p is None:
        return None
    try:
        return price_to_cc(p)
    except ValueError:
        raise ValueError(f"price {p} is finer than $0.0001") from None


def to_micros(v: Decimal | None) -> int | None:
    """An exact dollar amount as micro-dollars ($0.000001: Kalshi's finest, spec 3.34
    ``FixedPointDollars``); None stays None; a finer or non-finite one is refused."""
    if v is None:
        return None
    x = v * 1_000_000 if v.is_finite() else None
    if x is None or x != x.to_integral_value() or abs(x) > MAX_INT64:
        raise ValueError(f"value {_shown(v)} is not a dollar amount with at most 6 decimals")
    return int(x)


def from_micros(v: int | None) -> Decimal | None:
    """Micro-dollars back to the exact Decimal: 4 decimals when it has no more (``625000`` ->
    ``Decimal("0.6250")``, as Kalshi writes it), else 6 (``625001`` -> ``Decimal("0.625001")``)."""
    if v is None:
        return None
    d = Decimal(v).scaleb(-6)
    return d.quantize(Decimal("0.0001")) if v % MICROS_PER_CC == 0 else d


def to_hundredths(n: int | Decimal) -> int:
    """An exact count as hundredths of a contract (``money.count_to_hundredths``: never rounded;
    a whole int as it is); a count finer than 1/100 is refused (``... is finer than 1/100 contract``)."""
    if type(n) is int:
        return n * COUNT_SCALE
    try:
        return count_to_hundredths(Decimal(n))
    except ValueError:
        raise ValueError(f"count {n} is finer than 1/100 contract") from None


_PRICE_OF_CC: dict[int, Decimal] = {}  # (the grid's 10,001 prices, as a replay meets them)


def from_cc(v: int | None) -> Decimal | None:
    """Centicents back to the exact Decimal (``money.cc_to_price``: ``4200`` -> ``Decimal("0.4200")``),
    each made once; None stays None."""
    if v is None:
        return None
    d = _PRICE_OF_CC.get(v)
    if d is None:
        d = _PRICE_OF_CC[v] = cc_to_price(v)
    return d


def from_hundredths(v: int | None) -> int | Decimal | None:
    """Hundredths of a contract back to an int when whole, else the exact Decimal
    (``money.hundredths_to_count``, which always gives a Decimal); None stays None."""
    if v is None:
        return None
    return v // COUNT_SCALE if v % COUNT_SCALE == 0 else hundredths_to_count(v)


def _fits_decimal18(d: Decimal) -> bool:
    """Whether ``d`` is held exactly by decimal128(38, 18)."""
    if not d.is_finite():
        return False
    exponent = d.as_tuple().exponent
    return isinstance(exponent, int) and exponent >= -18 and abs(d) < Decimal(10) ** 20


def _p_hat_of(row: dict[str, Any]) -> Decimal | None:
    """A recorded belief's exact value: ``p_hat_exact`` when written, else ``p_hat`` (decimal128,
    or a float from an older or foreign writer: the value it was written as, its shortest form)."""
    text = row.get("p_hat_exact")
    if isinstance(text, str):
        try:
            return Decimal(text)
        except ArithmeticError:
            return None
    v = row.get("p_hat")
    if isinstance(v, Decimal):  # decimal128(38, 18): 18 places, written short (at most 19 digits: exact)
        return v.normalize() if v.is_finite() else v
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, str):
        try:
            return Decimal(v.strip())
        except ArithmeticError:
            return None
    return None


# -- the writer's row checks ------------------------------------------------------------------
# The last guard before a row is kept: every row of every table meets them, whoever hands it
# over (a live feed, an import, another tool through the API). A row that fails is refused
# alone, with its reason; nothing that passes can fail to be written (int64, the date folder).
MAX_INT64 = 2**63 - 1
MAX_COUNT_HUNDREDTHS = COUNT.max_u  # 10^12 contracts (the row check's bound, core/rowrules.py) in hundredths
MAX_ID = 200  # characters in a trade id or an estimate's source
SIDES = ("yes", "no")
BOOK_SIDES = ("bid", "ask")  # a print's taker_book_side (3.34)
BOOK_KINDS = ("snapshot", "delta", "reset")


def _shown(v: Any) -> str:
    """A value as a reason may quote it: escaped, bounded."""
    return ascii(v)[:40]


def _int_problem(name: str, v: Any, lo: int, hi: int) -> str | None:
    if type(v) is not int or not lo <= v <= hi:
        return f"{name} {_shown(v)} is not an integer in {lo}..{hi}"
    return None


def _id_problem(name: str, v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not v or len(v) > MAX_ID or not v.isprintable():
        return f"{name} {_shown(v)} is not printable text of at most {MAX_ID} characters"
    return None


def trade_problem(
    ticker: Any,
    ts: Any,
    recv_ts: int | None,
    yes_price_cc: Any,
    count_hundredths: Any,
    taker_side: Any,
    trade_id: Any,
    taker_book_side: Any = None,
    is_block_trade: Any = None,
    sending_ts_ms: Any = None,
) -> str | None:
    """Why a trade print is refused (None: it may be kept). ``recv_ts``: when it was received
    (its own ``ts`` may not be more than core/timeguard's AHEAD_MS past it). ``taker_side`` is
    the taker's outcome side (3.34 ``taker_outcome_side``, else ``taker_side``)."""
    why = (
        check_ticker(ticker)
        or ts_problem(ts)
        or (ahead_problem(ts, recv_ts) if recv_ts is not None else None)
        or _int_problem("yes price (1/10,000 $)", yes_price_cc, 1, PRICE_SCALE - 1)
        or _int_problem("count (1/100 contract)", count_hundredths, 1, MAX_COUNT_HUNDREDTHS)
        or (f"taker_side {_shown(taker_side)} is not yes or no" if taker_side not in (None, *SIDES) else None)
        or _id_problem("trade_id", trade_id)
        or (
            f"taker_book_side {_shown(taker_book_side)} is not bid or ask"
            if taker_book_side not in (None, *BOOK_SIDES)
            else None
        )
        or (
            f"is_block_trade {_shown(is_block_trade)} is not true or false"
            if not (is_block_trade is None or type(is_block_trade) is bool)
            else None
        )
        or (None if sending_ts_ms is None else ts_problem(sending_ts_ms))
    )
    return None if why is None else f"trade print: {why}"


CANDLE_PERIODS = (1, 60, 1440)  # minutes: the periods Kalshi serves


def candle_problem(
    ts: Any, ticker: Any, period_minutes: Any, prices: dict[str, Any], counts: dict[str, Any]
) -> str | None:
    """Why a candlestick row is refused (None: it may be kept): its time in range, a known period,
    each price a null or an integer $0.0001 in [0, $1] (a bid of 0 or an ask of $1: none resting),
    each count a null or 0..10^12 contracts in hundredths."""
    why = check_ticker(ticker) or ts_problem(ts)
    if why is None and (type(period_minutes) is not int or period_minutes not in CANDLE_PERIODS):
        why = f"period {_shown(period_minutes)} is not one of 1, 60, 1440 minutes"
    for name, v in prices.items():
        why = why or (None if v is None else _int_problem(f"{name} (1/10,000 $)", v, 0, PRICE_SCALE))
    for name, v in counts.items():
        why = why or (None if v is None else _int_problem(f"{name} (1/100 contract)", v, 0, MAX_COUNT_HUNDREDTHS))
    return None if why is None else f"candlestick: {why}"


def book_event_problem(
    ts: Any,
    ticker: Any,
    side: Any,
    price_cc: Any,
    delta_hundredths: Any,
    seq: Any,
    sid: Any,
    kind: Any,
) -> str | None:
    """Why an order-book row (``kalshi.ws.BookEvent``) is refused (None: it may be kept)."""
    why = check_ticker(ticker) or ts_problem(ts)
    if why is None and kind not in BOOK_KINDS:
        why = f"kind {_shown(kind)} is not one of {', '.join(BOOK_KINDS)}"
    if why is None and kind == "reset":
        if (side, price_cc, delta_hundredths, seq, sid) != (None,) * 5:
            why = "a reset carries no side, price, size, seq or sid"
    elif why is None:
        why = _int_problem("seq", seq, 0, MAX_INT64) or _int_problem("sid", sid, 0, MAX_INT64)
        if why is None and side is None and not (kind == "snapshot" and price_cc is None and delta_hundredths is None):
            why = "a level without a side"  # (only an empty book's snapshot row has none)
        elif why is None and side is not None:
            lo = 1 if kind == "snapshot" else -MAX_COUNT_HUNDREDTHS
            why = (
                (f"side {_shown(side)} is not yes or no" if side not in SIDES else None)
                or _int_problem("price (1/10,000 $)", price_cc, 1, PRICE_SCALE - 1)
                or _int_problem("size (1/100 contract)", delta_hundredths, lo, MAX_COUNT_HUNDREDTHS)
            )
    return None if why is None else f"book {kind if kind in BOOK_KINDS else 'row'}: {why}"


# -- writing --------------------------------------------------------------------------------
@dataclass
class _Buffer:
    columns: dict[str, list[Any]]
    rows: int = 0

    def add(self, **values: Any) -> None:
        """One row, a value for each column (a row checked already)."""
        c = self.columns
        for k, v in values.items():
            c[k].append(v)
        self.rows += 1


_SNAPSHOT_BUFFER = (
    "ts",
    "ticker",
    "yes_bid_cc",
    "yes_ask_cc",
    "last_cc",
    "volume_hundredths",
    "yes_len",
    "yes_p",
    "yes_q",
    "no_len",
    "no_p",
    "no_q",
    "source",
    "recv_ts",
)


def _new_buffer(name: str) -> _Buffer:
    return _Buffer({k: [] for k in (_SNAPSHOT_BUFFER if name == "snapshots" else SCHEMAS[name].names)})


def _levels_array(lengths: list[int], prices: list[int], qtys: list[int]) -> pa.Array:
    offsets = [0] * (len(lengths) + 1)
    acc = 0
    for i, n in enumerate(lengths):
        acc += n
        offsets[i + 1] = acc
    values = pa.StructArray.from_arrays([pa.array(prices, pa.int64()), pa.array(qtys, pa.int64())], fields=list(LEVEL))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=pa.list_(LEVEL))


def _table_of(name: str, buf: _Buffer) -> pa.Table:
    c = buf.columns
    if name != "snapshots":
        return pa.Table.from_pydict(c, schema=SCHEMAS[name])
    return pa.Table.from_arrays(
        [
            pa.array(c["ts"], pa.int64()),
            pa.array(c["ticker"], pa.string()),
            pa.array(c["yes_bid_cc"], pa.int64()),
            pa.array(c["yes_ask_cc"], pa.int64()),
            pa.array(c["last_cc"], pa.int64()),
            pa.array(c["volume_hundredths"], pa.int64()),
            _levels_array(c["yes_len"], c["yes_p"], c["yes_q"]),
            _levels_array(c["no_len"], c["no_p"], c["no_q"]),
            pa.array(c["source"], pa.string()),
            pa.array(c["recv_ts"], pa.int64()),
        ],
        schema=SNAPSHOTS,
    )


def _levels(v: Any) -> tuple[tuple[Any, Any], ...] | None:
    return None if v is None else tuple((lv["price_cc"], lv["qty_hundredths"]) for lv in v)


def content_keys(name: str, table: pa.Table) -> list[tuple[Any, ...]]:
    """Each row's content, as ``catalog import`` compares rows (not where it came from: a
    snapshot's or trade's ``source``, a trade's ``recv_ts``; a snapshot's ``recv_ts`` read as
    written: null is ``ts``;
    a belief by its exact value)."""
    rows = table.to_pylist()
    if name == "snapshots":
        return [
            (
                r["ts"],
                r["ticker"],
                r["yes_bid_cc"],
                r["yes_ask_cc"],
                r["last_cc"],
                r["volume_hundredths"],
                _levels(r["yes_bids"]),
                _levels(r["no_bids"]),
                r["ts"] if r.get("recv_ts") is None else r["recv_ts"],
            )
            for r in rows
        ]
    if name == "estimates":
        return [(r["ts"], r["ticker"], _p_hat_of(r), r["source"]) for r in rows]
    if name == "exchange_shards":
        return [(r["ts"], tuple(r["halted"] or ())) for r in rows]
    if name == "seen":
        return [(r["ts"], tuple(r["tickers"] or ())) for r in rows]
    if name == "runs":
        return [(r["ts"], tuple((s["key"], s["value"]) for s in r["settings"] or ()), r["source"]) for r in rows]
    skip = ("source", "recv_ts") if name in ("trades", "book_deltas", "candles") else ()
    return [tuple(v for k, v in r.items() if k not in skip) for r in rows]


class CatalogWriter:
    """Appends rows to a catalog; rolls segments by time and size; ``close`` flushes.

    Every ``add_*`` checks its row first (the writer's row checks above, and core/timeguard's
    time rule) and returns the reason it refused it, or None; refusals are counted in
    ``refused`` (the latest reasons in ``refusals``). A segment that cannot be written keeps
    its rows for the next roll (the error says so); the other tables are written regardless.
    ``skip_existing`` (``catalog import``): a row whose content the catalog already holds (in
    its date folder, as it was when this writer first wrote there) is not written again.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        roll_s: float = DEFAULT_ROLL_S,
        max_rows: int = DEFAULT_MAX_ROWS,
        clock=time.monotonic,
        skip_existing: bool = False,
        keep_days: int | None = None,
        wall: Callable[[], float] = time.time,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.roll_s = roll_s
        self.keep_days = keep_days  # retention: see prune()
        self._wall = wall
        self.on_note = on_note
        self._newest_day: str | None = None  # the newest UTC date this writer has written
        self.max_rows = max_rows
        self._clock = clock
        self.skip_existing = skip_existing
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create catalog folder {self.root}: {e.strerror}") from e
        self._lock_fd: int | None = os.open(self.root / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise KakashiError(f"another Kakashi is already recording into {self.root}; stop it first") from None
        self._remove_stale_temps()
        self._bufs = {t: _new_buffer(t) for t in TABLES}
        self._serial = 0
        self._last_roll = clock()
        self._failed_at: float | None = None  # the last roll that could not write everything
        self.rows_written = {t: 0 for t in TABLES}
        self.rows_skipped = {t: 0 for t in TABLES}  # already in the catalog (skip_existing)
        self.files_written = 0
        self.refused = 0
        self.refusals: list[str] = []  # the latest reasons (bounded)
        self._tickers: set[str] = set()  # tickers already checked
        self._existing: dict[tuple[str, str], set[tuple[Any, ...]]] = {}  # (table, date) -> contents

    def _remove_stale_temps(self) -> None:
        """A segment a killed writer left half-written (never visible to readers)."""
        for p in self.root.glob("*/date=*/.part-*.tmp"):
            try:
                p.unlink()
            except OSError:
                pass

    @property
    def pending_rows(self) -> int:
        return sum(b.rows for b in self._bufs.values())

    def _refuse(self, why: str) -> str:
        self.refused += 1
        self.refusals.append(why)
        del self.refusals[:-20]
        return why

    def _ticker_problem(self, ticker: Any) -> str | None:
        if type(ticker) is str and ticker in self._tickers:
            return None
        why = check_ticker(ticker)
        if why is None and len(self._tickers) < 100_000:
            self._tickers.add(ticker)
        return why

    # -- appending ----------------------------------------------------------------------
    def add_snapshot(self, s: QuoteRules | Quote, source: str, recv_ts: int | None = None) -> str | None:
        """``recv_ts``: when Kakashi fetched it (default: the quote's own ``ts``)."""
        try:
            levels = (
                [(price_to_cc(lv.price), to_hundredths(lv.qty)) for lv in s.yes_bids],
                [(price_to_cc(lv.price), to_hundredths(lv.qty)) for lv in s.no_bids],
            )
            tops = (to_cc(s.yes_bid), to_cc(s.yes_ask), to_cc(s.last), to_hundredths(s.volume))
        except (ValueError, ArithmeticError) as e:
            return self._refuse(f"snapshot of {s.ticker}: {e}")
        return self.add_snapshot_row(s.ts, s.ticker, *tops, *levels, source, recv_ts)

    def add_snapshot_row(
        self,
        ts: int,
        ticker: str,
        yes_bid_cc: int | None,
        yes_ask_cc: int | None,
        last_cc: int | None,
        volume_hundredths: int,
        yes_bids: list[tuple[int, int]],
        no_bids: list[tuple[int, int]],
        source: str,
        recv_ts: int | None = None,
    ) -> str | None:
        """A validated snapshot already in catalog units (levels as (price_cc, qty_hundredths), best first);
        ``ts`` when the exchange says it was seen, ``recv_ts`` when it was fetched (default ``ts``).
        Rows arrive in fetch order: segments split by ``recv_ts``'s UTC date."""
        recv = ts if recv_ts is None else recv_ts
        if not (type(ts) is int and type(recv) is int and MIN_TS <= ts < MAX_TS and MIN_TS <= recv < MAX_TS):
            why = ts_problem(ts)
            return self._refuse(f"snapshot {why}" if why else f"snapshot recv_ts: {ts_problem(recv)}")
        if ts - recv > AHEAD_MS:
            return self._refuse(f"snapshot {ahead_problem(ts, recv)}")
        if why := self._ticker_problem(ticker):
            return self._refuse(f"snapshot: {why}")
        for name, v, hi in (
            ("yes_bid", yes_bid_cc, PRICE_SCALE),
            ("yes_ask", yes_ask_cc, PRICE_SCALE),
            ("last", last_cc, PRICE_SCALE),
            ("volume", volume_hundredths, MAX_COUNT_HUNDREDTHS),
        ):
            if v is not None and (type(v) is not int or not 0 <= v <= hi):
                return self._refuse(f"snapshot of {ticker}: {name} {_shown(v)} outside 0..{hi}")
        for levels in (yes_bids, no_bids):
            for p, q in levels:
                if (
                    type(p) is not int
                    or type(q) is not int
                    or not (0 < p < PRICE_SCALE and 0 < q <= MAX_COUNT_HUNDREDTHS)
                ):
                    return self._refuse(f"snapshot of {ticker}: book level {_shown((p, q))} outside the grid")
        if why := _id_problem("source", source):
            return self._refuse(f"snapshot of {ticker}: {why}")
        buf = self._bufs["snapshots"]
        c = buf.columns
        c["recv_ts"].append(recv)
        c["ts"].append(ts)
        c["ticker"].append(ticker)
        c["yes_bid_cc"].append(yes_bid_cc)
        c["yes_ask_cc"].append(yes_ask_cc)
        c["last_cc"].append(last_cc)
        c["volume_hundredths"].append(volume_hundredths)
        for side, levels in (("yes", yes_bids), ("no", no_bids)):
            c[f"{side}_len"].append(len(levels))
            for p, q in levels:
                c[f"{side}_p"].append(p)
                c[f"{side}_q"].append(q)
        c["source"].append(source)
        buf.rows += 1
        return None

    def add_market(self, m: Market, ts: int) -> str | None:
        if why := ts_problem(ts):
            return self._refuse(f"market change {why}")
        if why := self._ticker_problem(m.ticker):
            return self._refuse(f"market change: {why}")
        sv = getattr(m, "settlement_value", None)
        floor = getattr(m, "settlement_floor", None)
        bounds = getattr(m, "settlement_bounds_type", None)
        mt = getattr(m, "market_type", None)
        fm = getattr(m, "fee_multiplier", None)
        try:
            settlement_micros = to_micros(sv)
            floor_micros = to_micros(floor)
        except ValueError as e:
            return self._refuse(f"market change of {m.ticker}: settlement {e}")
        if fm is not None and not _fits_decimal18(fm):
            return self._refuse(f"market change of {m.ticker}: fee_multiplier {_shown(fm)} does not fit 18 places")
        row = {
            "ts": ts,
            "ticker": m.ticker,
            "title": m.title,
            "series": m.series,
            "event_ticker": m.event_ticker,
            "status": m.status.value,
            "market_type": getattr(mt, "value", mt) or "binary",
            "open_ts": m.open_ts,
            "close_ts": m.close_ts,
            "result": m.result.value if m.result else None,
            "settlement_value_micros": settlement_micros,
            "subtitle": getattr(m, "subtitle", None) or None,
            "updated_ts": getattr(m, "updated_ts", None),
            "fee_multiplier": fm,
            "fee_type": getattr(m, "fee_type", None),
            "fee_waiver_until_ts": getattr(m, "fee_waiver_until_ts", None),
            # null = "default" (as in files before version 3: a default market reads the same)
            "settlement_bounds_type": None if bounds in (None, "default") else bounds,
            "settlement_floor_micros": floor_micros,
            "price_ranges": getattr(m, "price_ranges", None),
            "exchange_index": getattr(m, "exchange_index", None),
            "event_exclusive": getattr(m, "event_exclusive", None),
        }
        for k in ("open_ts", "close_ts", "updated_ts", "fee_waiver_until_ts"):
            if row[k] is not None and (why := _int_problem(k, row[k], -MAX_INT64, MAX_INT64)):
                return self._refuse(f"market change of {m.ticker}: {why}")
        buf = self._bufs["markets"]
        for k, v in row.items():
            buf.columns[k].append(v)
        buf.rows += 1
        return None

    def add_estimate(self, e: Estimate, now_ms: int | None = None) -> str | None:
        """A belief, its exact value kept (``p_hat_exact``); ``now_ms``: when it was taken (its
        ``ts`` may not be far ahead of it)."""
        why = ts_problem(e.ts) or (ahead_problem(e.ts, now_ms) if now_ms is not None else None)
        if why is None and not (e.p_hat.is_finite() and 0 <= e.p_hat <= 1):
            why = f"p_hat {_shown(e.p_hat)} outside [0, 1]"
        why = why or self._ticker_problem(e.ticker) or _id_problem("source", e.source)
        if why:
            return self._refuse(f"estimate: {why}")
        c = self._bufs["estimates"].columns
        c["ts"].append(e.ts)
        c["ticker"].append(e.ticker)
        exponent = e.p_hat.as_tuple().exponent
        c["p_hat"].append(
            e.p_hat.quantize(Decimal("1e-18")) if isinstance(exponent, int) and exponent < -18 else e.p_hat
        )
        c["source"].append(e.source)
        c["p_hat_exact"].append(str(e.p_hat))
        self._bufs["estimates"].rows += 1
        return None

    def add_trade(
        self,
        ts: int,
        ticker: str,
        yes_price_cc: int,
        count_hundredths: int,
        taker_side: str | None,
        trade_id: str | None,
        source: str,
        recv_ts: int | None = None,
        taker_book_side: str | None = None,
        is_block_trade: bool | None = None,
        sending_ts_ms: int | None = None,
    ) -> str | None:
        """A public trade print (the WebSocket ``trade`` channel, ``GET /markets/trades``);
        ``recv_ts`` when it arrived."""
        why = trade_problem(
            ticker,
            ts,
            recv_ts,
            yes_price_cc,
            count_hundredths,
            taker_side,
            trade_id,
            taker_book_side,
            is_block_trade,
            sending_ts_ms,
        )
        return self._keep(
            "trades",
            "trade print",
            why,
            source,
            ts=ts,
            ticker=ticker,
            yes_price_cc=yes_price_cc,
            count_hundredths=count_hundredths,
            taker_side=taker_side,
            trade_id=trade_id,
            taker_book_side=taker_book_side,
            is_block_trade=is_block_trade,
            sending_ts_ms=sending_ts_ms,
            recv_ts=recv_ts,
        )

    def add_candle(
        self,
        ts: int,
        ticker: str,
        period_minutes: int,
        source: str,
        *,
        close_cc: int | None = None,
        open_cc: int | None = None,
        high_cc: int | None = None,
        low_cc: int | None = None,
        yes_bid_close_cc: int | None = None,
        yes_ask_close_cc: int | None = None,
        volume_hundredths: int | None = None,
        open_interest_hundredths: int | None = None,
    ) -> str | None:
        """One of Kalshi's candlesticks (``kakashi catalog backfill``), ``ts`` its period's end."""
        prices = {
            "close_cc": close_cc,
            "open_cc": open_cc,
            "high_cc": high_cc,
            "low_cc": low_cc,
            "yes_bid_close_cc": yes_bid_close_cc,
            "yes_ask_close_cc": yes_ask_close_cc,
        }
        counts = {"volume_hundredths": volume_hundredths, "open_interest_hundredths": open_interest_hundredths}
        why = candle_problem(ts, ticker, period_minutes, prices, counts)
        return self._keep(
            "candles",
            "candlestick",
            why,
            source,
            ts=ts,
            ticker=ticker,
            period_minutes=period_minutes,
            **prices,
            **counts,
        )

    def add_shards(self, ts: int, halted: Iterable[int], source: str) -> str | None:
        """The exchange shards halted as of ``ts`` (every one; none: an empty list)."""
        shards = sorted(halted)
        why = ts_problem(ts)
        if why is None:
            bad = [n for n in shards if type(n) is not int or not 0 <= n < MAX_SHARD]
            why = f"not a shard number: {_shown(bad[0])}" if bad else None
        why = None if why is None else f"exchange shards: {why}"
        return self._keep("exchange_shards", "exchange shards", why, source, ts=ts, halted=shards)

    def add_seen(self, ts: int, tickers: list[str], source: str) -> str | None:
        """The markets a tick still followed unchanged (``FetchBatch.same``), in order."""
        why = ts_problem(ts)
        for t in tickers:
            if why is None and (bad := self._ticker_problem(t)):
                why = bad
        why = None if why is None else f"markets seen: {why}"
        return self._keep("seen", "markets seen", why, source, ts=ts, tickers=list(tickers))

    def add_fill_context(self, ts: int, round_trip_ms: int | None, polled: list[str], source: str) -> str | None:
        """A tick's paper-fill context (``FILL_CONTEXT``): the round trip when it changed, the
        held markets whose books were polled."""
        why = ts_problem(ts)
        if (
            why is None
            and round_trip_ms is not None
            and (type(round_trip_ms) is not int or not 0 <= round_trip_ms <= 3_600_000)
        ):
            why = f"round trip {_shown(round_trip_ms)} ms is not in 0..3600000"
        for t in polled:
            if why is None and (bad := self._ticker_problem(t)):
                why = bad
        why = None if why is None else f"fill context: {why}"
        return self._keep(
            "fill_context", "fill context", why, source, ts=ts, round_trip_ms=round_trip_ms, polled=sorted(polled)
        )

    def add_command(
        self,
        ts: int,
        tick: int,
        after_ts: int | None,
        kind: str,
        text: str = "",
        ticker: str = "",
        p_hat: Decimal | None = None,
        source: str = "",
    ) -> str | None:
        """An operator's command the engine applied (``CommandRecord``). Its text (a kill's
        reason: any process's) is kept to ``MAX_COMMAND_TEXT`` characters, a character UTF-8
        cannot hold written as its escape."""
        why = ts_problem(ts) or (ts_problem(after_ts) if after_ts is not None else None)
        why = why or _int_problem("tick", tick, 0, MAX_INT64)
        if why is None and kind not in COMMAND_KINDS:
            why = f"unknown kind {_shown(kind)}"
        if why is None and kind == "set_estimate":
            why = self._ticker_problem(ticker)
            if why is None and not (isinstance(p_hat, Decimal) and p_hat.is_finite() and 0 <= p_hat <= 1):
                why = f"p_hat {str(p_hat)[:40]} outside [0, 1]"
        if why is None and not isinstance(text, str):
            why = "its text is not text"
        why = None if why is None else f"command: {why}"
        text = text[:MAX_COMMAND_TEXT].encode("utf-8", "backslashreplace").decode("utf-8") if why is None else ""
        return self._keep(
            "commands",
            "command",
            why,
            source,
            ts=ts,
            tick=tick,
            after_ts=after_ts,
            kind=kind,
            text=text,
            ticker=ticker or None,
            p_hat_exact=None if p_hat is None else str(p_hat),
        )

    def add_run(self, ts: int, settings: dict[str, str], source: str) -> str | None:
        """A recording run's start (``Recorder.run_started``): the engine's clock then and the
        settings it trades with (config key -> TOML value text)."""
        why = ts_problem(ts)
        if why is None and len(settings) > MAX_SETTINGS:
            why = f"{len(settings)} settings (at most {MAX_SETTINGS})"
        for k, v in settings.items():
            text = isinstance(k, str) and isinstance(v, str)
            if why is None and not (text and 0 < len(k) <= MAX_SETTING_TEXT and len(v) <= MAX_SETTING_TEXT):
                why = f"setting {_shown(k)} is not a key and a value of text (at most {MAX_SETTING_TEXT} characters)"
        why = None if why is None else f"run start: {why}"
        rows = [{"key": k, "value": v} for k, v in settings.items()] if why is None else []
        return self._keep("runs", "run start", why, source, ts=ts, settings=rows)

    def _keep(self, table: str, label: str, why: str | None, source: str, **columns: Any) -> str | None:
        """A row its check passed (``why`` None) and whose ``source`` is an id kept in ``table``;
        otherwise refused with the reason (the row alone)."""
        if why is None and (bad := _id_problem("source", source)):
            why = f"{label}: {bad}"
        if why:
            return self._refuse(why)
        self._bufs[table].add(source=source, **columns)
        return None

    def add_book_event(
        self,
        ts: int,
        ticker: str,
        side: str | None,
        price_cc: int | None,
        delta_hundredths: int | None,
        seq: int | None,
        sid: int | None,
        kind: str,
        source: str,
        exchange_ts: int | None = None,
    ) -> str | None:
        """One applied order-book change (``kalshi.ws.BookEvent``): a snapshot level, a delta or a
        reset; ``exchange_ts``: the exchange's time of its frame (None: not given)."""
        why = book_event_problem(ts, ticker, side, price_cc, delta_hundredths, seq, sid, kind)
        if why is None and exchange_ts is not None and (bad := ts_problem(exchange_ts)):
            why = f"book {kind}: exchange time: {bad}"
        return self._keep(
            "book_deltas",
            "book row",
            why,
            source,
            ts=ts,
            ticker=ticker,
            side=side,
            price_cc=price_cc,
            delta_hundredths=delta_hundredths,
            seq=seq,
            sid=sid,
            kind=kind,
            exchange_ts=exchange_ts,
        )

    def maybe_roll(self) -> int:
        """Flush when the segment is old or big enough; returns the files written. After a roll
        that failed, the next is tried no sooner than ``roll_s`` (at most 30 s) later."""
        n = self.pending_rows
        if not n:
            return 0
        now = self._clock()
        if self._failed_at is not None and now - self._failed_at < min(self.roll_s, 30.0):
            return 0
        if n >= self.max_rows or now - self._last_roll >= self.roll_s:
            return self.flush()
        return 0

    # -- segments -------------------------------------------------------------------------
    def flush(self) -> int:
        """Write every table's buffered rows (one file per UTC date); the files written. A table
        that cannot be written keeps its rows for the next roll, the others are written
        regardless; then a KakashiError says which and why."""
        n = 0
        failed = []
        for name in TABLES:
            buf = self._bufs[name]
            if not buf.rows:
                continue
            try:
                n += self._flush_table(name, _table_of(name, buf))
            except Exception as e:  # noqa: BLE001 - a full disk, a foreign error: the rows stay buffered
                failed.append(f"{name} ({buf.rows:,} rows kept for the next roll: {e.__class__.__name__}: {e})"[:300])
            else:
                self._bufs[name] = _new_buffer(name)
        self._last_roll = self._clock()
        self._failed_at = self._last_roll if failed else None
        if self.keep_days is not None:
            self.prune()
        if failed:
            raise KakashiError(f"catalog {self.root}: segment not written: {'; '.join(failed)}")
        return n

    def prune(self) -> list[str]:
        """Retention (``[catalog] keep_days``): remove every table's date folders older than the
        ``keep_days`` UTC dates that end today, or end at the newest date this writer wrote if
        that is earlier (the wall clock's today and that date are never removed; a date ahead of
        the wall, as the simulator's clock runs, stays until it is as old). Each removal is said
        in one line (``on_note``); the dates removed are returned. A file that cannot be removed
        is said and left; a folder holding files Kakashi did not write keeps them."""
        if self.keep_days is None:
            return []
        today = datetime.fromtimestamp(self._wall(), tz=UTC).strftime("%Y-%m-%d")
        ref = min(today, self._newest_day) if self._newest_day else today
        first_kept = (datetime.strptime(ref, "%Y-%m-%d") - timedelta(days=self.keep_days - 1)).strftime("%Y-%m-%d")
        days: set[str] = set()
        size = files_removed = 0
        trouble = []
        for t in TABLES:
            for d in sorted((self.root / t).glob("date=*")):
                day = d.name.removeprefix("date=")
                if not _DATE.fullmatch(day) or day >= first_kept or d.is_symlink() or not d.is_dir():
                    continue
                gone = 0
                for f in list(d.glob("*.parquet")) + list(d.glob(".part-*.tmp")):
                    try:
                        n = f.lstat().st_size
                        f.unlink()
                    except OSError as e:
                        trouble.append(f"{f}: {e.strerror or e}")
                        continue
                    size += n
                    gone += 1
                try:
                    d.rmdir()
                except OSError:
                    trouble.append(f"{d} keeps files Kakashi did not write")
                    if not gone:
                        continue
                days.add(day)
                files_removed += gone
        if days and self.on_note is not None:
            span = min(days) if len(days) == 1 else f"{min(days)}..{max(days)}"
            self.on_note(
                f"catalog: removed {len(days)} day(s) before {first_kept} ({span}: {files_removed} files, "
                f"{size / 1_048_576:.1f} MiB) under [catalog] keep_days = {self.keep_days}"
            )
        for why in trouble[:3]:
            if self.on_note is not None:
                self.on_note(f"catalog: retention left {why}"[:300])
        return sorted(days)

    def _flush_table(self, name: str, table: pa.Table) -> int:
        """One table's segment: every date's file written to its hidden name first, then all
        renamed into place (a failure before that leaves nothing behind)."""
        # snapshots by when they were fetched (the replay's clock: rows arrive in that order)
        ts = table.column("recv_ts" if name == "snapshots" else "ts").to_pylist()
        parts: list[tuple[str, pa.Table, int]] = []
        start = 0
        while start < len(ts):  # one file per UTC date in the buffer (rows arrive in time order)
            day = utc_date(ts[start])
            end = start
            while end < len(ts) and utc_date(ts[end]) == day:
                end += 1
            part = table.slice(start, end - start)
            if self.skip_existing:
                part = self._new_content(name, day, part)
            if part.num_rows:
                parts.append((day, part, part.column("recv_ts" if name == "snapshots" else "ts")[0].as_py()))
            start = end
        written: list[tuple[Path, Path]] = []
        try:
            for day, part, first_ts in parts:
                written.append(self._write_tmp(name, day, part, first_ts))
        except BaseException:
            for tmp, _final in written:
                try:
                    tmp.unlink()
                except OSError:
                    pass
            raise
        for (tmp, final), (day, part, _ts) in zip(written, parts):
            os.rename(tmp, final)
            if self._newest_day is None or day > self._newest_day:
                self._newest_day = day
            dfd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)  # the rename itself survives a power cut
            finally:
                os.close(dfd)
            self.files_written += 1
            self.rows_written[name] += part.num_rows
        return len(written)

    def _new_content(self, name: str, day: str, part: pa.Table) -> pa.Table:
        """``part`` without the rows the date's folder already held before this writer wrote there."""
        have = self._existing.get((name, day))
        if have is None:
            have = set()
            for f in sorted((self.root / name / f"date={day}").glob("*.parquet")):
                try:
                    have.update(content_keys(name, read_file(f, name)))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError, KeyError):
                    continue  # a file it cannot read holds nothing it can compare with
            self._existing[(name, day)] = have
        if not have:
            return part
        keep = [k not in have for k in content_keys(name, part)]
        self.rows_skipped[name] += keep.count(False)
        return part if all(keep) else part.filter(pa.array(keep))

    def _write_tmp(self, name: str, day: str, table: pa.Table, first_ts: int) -> tuple[Path, Path]:
        folder = self.root / name / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        while True:  # a name no file has: an earlier writer's pid and serial can come again (the
            # writer's lock keeps other Kakashi writers out between this check and the rename)
            self._serial += 1
            final = folder / f"part-{first_ts:013d}-{os.getpid()}-{self._serial:06d}.parquet"
            if not final.exists():
                break
        tmp = folder / f".{final.name}.tmp"
        try:
            pq.write_table(table, tmp, compression="zstd")
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise
        return tmp, final

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None


# -- recording a feed -------------------------------------------------------------------------
#: Settled markets whose last state a recorder keeps (``Recorder._forget_settled``).
SETTLED_KEPT = 10_000


class Recorder:
    """What a feed hands the engine, validated by the same row check, into a catalog.

    Markets are written when their metadata or lifecycle changes, estimates when a
    market's belief changes (as the database keeps them), every valid snapshot always.
    Trade prints and book changes pass the writer's row checks. A row the writer refuses is
    refused alone and handed to the engine with the next fetch as a rejected row (with its
    reason: ``take_refusals``); a catalog that cannot be written never stops the fetch.
    """

    def __init__(self, writer: CatalogWriter) -> None:
        self.writer = writer
        self._markets: dict[str, Market] = {}
        self._cache: dict[str, tuple[dict, Market]] = {}
        self._beliefs: dict[str, tuple[Decimal, str]] = {}
        self._settled: deque[str] = deque()  # settled markets, in the order they settled (SETTLED_KEPT)
        self._halted: frozenset[int] | None = None  # the exchange shards halted, as last recorded
        self._round_trip: int | None = None  # the source's round trip, as last recorded (fill_context)
        self.rejected = 0
        self._refusals: list[tuple[str, Any]] = []  # (reason, evidence) the engine has not been handed
        self.source: RecordingSource | None = None  # what ``wrap`` made
        self.estimators: list[RecordingEstimator] = []

    def _refused(self, why: str | None, evidence: Any) -> str | None:
        if why is not None:
            self.rejected += 1
            if len(self._refusals) < 10_000:
                self._refusals.append((f"catalog refused {why}", evidence))
        return why

    def take_refusals(self) -> list[RawRow]:
        """The rows the catalog refused since the last call, as rejected rows (reason, evidence)."""
        out, self._refusals = self._refusals, []
        return [RawRow(market={}, snapshot=None, payload=p, reason=r) for r, p in out]

    def record_batch(self, batch: FetchBatch, now_ms: int, source: str, round_trip_ms: int | None = None) -> None:
        self.shards(batch.halted_shards, now_ms, source)
        for row in batch.rows:
            self.record_row(row, now_ms, source)
        if batch.same:  # followed and unchanged: one row for them all, not a quote each
            self._refused(self.writer.add_seen(now_ms, batch.same, source), {"type": "seen", "ts": now_ms})
        # what the paper orders' fills read of this tick (#23): the round trip when it changed, polled books
        rt = round_trip_ms if round_trip_ms != self._round_trip else None
        if rt is not None or batch.polled:
            why = self.writer.add_fill_context(now_ms, rt, sorted(batch.polled), source)
            if why is None and rt is not None:
                self._round_trip = rt
            self._refused(why, {"type": "fill_context", "ts": now_ms})
        batch.rows.extend(self.take_refusals())
        try:
            self.writer.maybe_roll()
        except KakashiError as e:
            batch.errors.append(str(e))

    def record_row(self, row: RawRow, now_ms: int, source: str) -> str | None:
        """Record one row; the reason it was rejected, or None."""
        if row.reason is not None:
            self.rejected += 1
            return row.reason
        ticker = row.market.get("ticker") if isinstance(row.market, dict) else None
        hit = self._cache.get(ticker) if isinstance(ticker, str) else None
        known = hit[1] if hit is not None and hit[0] == row.market else None
        v = validate_row(row.market, row.snapshot, now_ms, known)
        if v.market is not None and known is None:
            self._cache[v.market.ticker] = (dict(row.market), v.market)
        if v.reason is not None:
            self.rejected += 1
            return v.reason
        assert v.market is not None
        why = self.market(v.market, now_ms)  # a change takes effect at the tick that fetched it
        if why is None and v.snapshot is not None:
            why = self._refused(self.writer.add_snapshot(v.snapshot, source, now_ms), row.raw_payload())
        return why

    def shards(self, halted: frozenset[int] | None, ts: int, source: str) -> None:
        """The halted exchange shards a fetch read (None: not read this fetch), when they changed."""
        if halted is not None and halted != self._halted:
            why = self.writer.add_shards(ts, halted, source)
            if why is None:
                self._halted = halted
            else:
                self._refused(why, {"type": "exchange_shards", "ts": ts, "halted": sorted(halted)})

    def market(self, m: Market, ts: int) -> str | None:
        was = self._markets.get(m.ticker)
        if was != m:
            why = self.writer.add_market(m, ts)
            if why is not None:
                return self._refused(why, {"type": "market", "ticker": m.ticker, "ts": ts})
            self._markets[m.ticker] = m
            if m.status.settled and (was is None or not was.status.settled):
                self._forget_settled(m.ticker)
        if m.status.settled:  # nothing more to validate or believe of it (the engine drops it too)
            self._cache.pop(m.ticker, None)
            self._beliefs.pop(m.ticker, None)
        return None

    def _forget_settled(self, ticker: str) -> None:
        """Remember the last state of the latest ``SETTLED_KEPT`` settled markets (one re-sent is
        not written again), and forget older ones: a week of markets turning over does not grow
        the recorder's memory (one that comes back after that is written again: a repeated row)."""
        self._settled.append(ticker)
        while len(self._settled) > SETTLED_KEPT:
            old = self._settled.popleft()
            m = self._markets.get(old)
            if m is not None and m.status.settled:
                del self._markets[old]

    def estimates(self, estimates: Iterable[Estimate], now_ms: int | None = None) -> list[str]:
        """Record the beliefs that changed; the reasons any was refused."""
        out = []
        for e in estimates:
            key = (e.p_hat, e.source)
            if self._beliefs.get(e.ticker) != key:
                why = self.writer.add_estimate(e, now_ms)
                if why is None:
                    self._beliefs[e.ticker] = key
                else:
                    out.append(why)
                    self._refused(why, {"type": "estimate", "ticker": e.ticker, "ts": e.ts, "p_hat": str(e.p_hat)})
        return out

    def sample_beliefs(self, tickers: list[str]) -> None:
        """Ask the attached estimators for these markets' beliefs now, and record the changes
        (a collector that never trades still records what the operator believed)."""
        if self.source is not None:
            now = self.source.now_ms()
            for est in self.estimators:
                est.estimates(tickers, now)

    def trades(self, trades: Iterable[Any]) -> None:
        """Trade prints (``kalshi.ws.Trade``) as they came off the feed (the WebSocket, or
        ``GET /markets/trades`` polled: its ``source``); each passes the row check
        (``trade_problem``) or is refused alone."""
        add = self.writer.add_trade
        for t in trades:
            why = add(
                t.ts,
                t.ticker,
                t.yes_price_cc,
                t.count_hundredths,
                t.taker_side or None,
                t.trade_id or None,
                getattr(t, "source", "kalshi-ws"),
                getattr(t, "recv_ts", None),
                taker_book_side=getattr(t, "taker_book_side", None),
                is_block_trade=getattr(t, "is_block_trade", None),
                sending_ts_ms=getattr(t, "sending_ts_ms", None),
            )
            if why is not None:
                self._refused(why, {"type": "trade", "ticker": _shown(t.ticker), "ts": _shown(t.ts)})

    def book_events(self, events: Iterable[Any]) -> None:
        """Order-book changes (``kalshi.ws.BookEvent``, the simulator's ``SimBookEvent``: their
        ``source``, else ``kalshi-ws``) in the order the feed applied them; each passes the row
        check (``book_event_problem``) or is refused alone."""
        add = self.writer.add_book_event
        for e in events:
            src = getattr(e, "source", "kalshi-ws")
            why = add(e.ts, e.ticker, e.side, e.price_cc, e.delta_hundredths, e.seq, e.sid, e.kind, src, e.exchange_ts)
            if why is not None:
                self._refused(why, {"type": "book", "ticker": _shown(e.ticker), "ts": _shown(e.ts)})

    def commands(self, records: Iterable[CommandRecord], source: str) -> None:
        """The operator's commands the engine applied, in order; each passes the row check or is
        refused alone (a rejected row with the next fetch)."""
        for r in records:
            why = self.writer.add_command(r.ts, r.tick, r.after_ts, r.kind, r.text, r.ticker, r.p_hat, source)
            self._refused(why, {"type": "command", "kind": _shown(r.kind), "ts": _shown(r.ts)})

    def run_started(self, ts: int, settings: dict[str, str], source: str) -> None:
        """The engine made over this recorder's source started at ``ts`` (its clock: a new
        database's deposit is dated by it) with these settings; refused alone if the row check
        fails (a rejected row with the next fetch)."""
        why = self.writer.add_run(ts, settings, source)
        self._refused(why, {"type": "run", "ts": _shown(ts)})

    def wrap(self, source: Source, estimators: list[Estimator]) -> tuple[Source, list[Estimator]]:
        """The source and estimators that record through this recorder what they hand on
        (composition: the engine is then made over these)."""
        self.source = RecordingSource(source, self)
        self.estimators = [RecordingEstimator(e, self) for e in estimators]
        return self.source, list(self.estimators)

    def close(self) -> None:
        try:
            if self.source is not None:
                self.source.inner.flush()  # what the feed still holds (book changes applied)
        finally:
            self.writer.close()


class RecordingSource(Source):
    """A source that records what it fetches (valid rows) before handing it on. The catalog
    never costs the fetch: whatever the recorder meets is a feed error of that batch."""

    def __init__(self, inner: Source, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder
        self.name = inner.name

    def now_ms(self) -> int:
        return self.inner.now_ms()

    def fetch(self) -> FetchBatch:
        batch = self.inner.fetch()
        if batch.now_ms is None:  # the tick's one time: the engine decides at what is recorded here
            batch.now_ms = self.inner.now_ms()
        try:
            self.recorder.record_batch(batch, batch.now_ms, self.inner.name, self.inner.round_trip_ms())
        except Exception as e:  # noqa: BLE001 - what was fetched still reaches the engine
            batch.errors.append(f"catalog: not recorded ({e.__class__.__name__}: {e})"[:300])
        return batch

    def close(self) -> None:
        self.inner.close()

    # every other hook is the wrapped source's own (Source declares them all)
    def watch(self, held: Callable[[], Iterable[str]]) -> None:
        self.inner.watch(held)

    def stop(self) -> None:
        self.inner.stop()

    def flush(self) -> None:
        self.inner.flush()

    def checkpoint(self) -> dict[str, str]:
        return self.inner.checkpoint()

    def feed_status(self) -> tuple[str, str]:
        return self.inner.feed_status()

    def round_trip_ms(self) -> int | None:
        return self.inner.round_trip_ms()

    def commands_applied(self, commands: list[CommandRecord]) -> None:
        try:
            self.recorder.commands(commands, self.inner.name)
        except Exception:  # noqa: BLE001 - a catalog never costs the run (the engine applied them)
            self.recorder.rejected += 1
        self.inner.commands_applied(commands)


class RecordingEstimator(Estimator):
    def __init__(self, inner: Estimator, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder

    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]:
        out = self.inner.estimates(tickers, now_ms)
        try:
            self.recorder.estimates(out, now_ms)
        except Exception:  # noqa: BLE001 - the beliefs reach the engine whatever the catalog does
            self.recorder.rejected += 1
        return out

    def reload(self) -> bool:
        return self.inner.reload()

    def take_said(self) -> list[str]:
        return self.inner.take_said()


# -- import ---------------------------------------------------------------------------------
@dataclass
class ImportResult:
    snapshots: int = 0
    markets: int = 0
    estimates: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    skipped: int = 0  # rows the catalog already held (an import run again)


def import_ticks(items: Iterable[Any], writer: CatalogWriter, source: str) -> ImportResult:
    """Replay ticks (``adapters.replay.group_ticks``: the JSONL replay's checks and clock guard)
    into a catalog, each row through the row check and the writer's."""
    from pydantic import ValidationError

    from kakashi_tui.core.models import rejection_reason

    rec = Recorder(writer)
    res = ImportResult()

    def reject(reason: str) -> None:
        res.rejected += 1
        if len(res.reasons) < 5:
            res.reasons.append(reason)

    for tick in items:
        if isinstance(tick, int):
            continue
        for reason, _payload in tick.rejected:
            reject(reason)
        for row in tick.rows:
            reason = rec.record_row(row, tick.ts, source)
            if reason is not None:
                reject(reason)
        ests = []
        for r in tick.estimates:
            try:
                ests.append(
                    Estimate(
                        ticker=r.get("ticker") or "",
                        p_hat=Decimal(str(r.get("p_hat"))),
                        source=r.get("source") or "replay",
                        ts=tick.ts,
                    )
                )
            except (ValidationError, ArithmeticError) as e:
                reject(
                    f"estimate {rejection_reason(e)}"
                    if isinstance(e, ValidationError)
                    else f"estimate p_hat {_shown(r.get('p_hat'))} is not a number"
                )
        for why in rec.estimates(ests, tick.ts):
            reject(why)
        rec.take_refusals()  # (counted above, through the reasons record_row gave)
        writer.maybe_roll()
    writer.flush()
    res.snapshots, res.markets, res.estimates = (writer.rows_written[t] for t in TABLES[:3])
    res.skipped = sum(writer.rows_skipped.values())
    return res


# -- reading --------------------------------------------------------------------------------
def files(
    root: str | os.PathLike[str], table: str, since_ms: int | None = None, until_ms: int | None = None
) -> list[Path]:
    """A table's segment files in time order (date folder, then first ts in the name)."""
    base = Path(root) / table
    out = []
    lo = utc_date(since_ms) if since_ms is not None else None
    hi = utc_date(until_ms) if until_ms is not None else None
    for d in sorted(base.glob("date=*")):
        day = d.name.removeprefix("date=")
        if (lo is not None and day < lo) or (hi is not None and day > hi):
            continue
        out.extend(sorted(d.glob("*.parquet")))
    for f in out:  # a pipe or device among them would hang the reader: refused at once, in one line
        try:
            check_regular(f)
        except OSError as e:
            raise KakashiError(f"catalog file {f} is unreadable: {e.strerror}") from None
    return out


def check_catalog(root: str | os.PathLike[str]) -> Path:
    p = Path(root)
    if not p.is_dir() or not any((p / t).is_dir() for t in TABLES):
        raise ConfigError(f"no catalog at {p} (expected {', '.join(TABLES)} folders)")
    return p


def read_table(root: str | os.PathLike[str], table: str, columns: list[str] | None = None) -> pa.Table:
    """A whole (small) table: markets or estimates, in recorded order."""
    parts = []
    for f in files(root, table):
        try:
            parts.append(read_file(f, table, columns))
        except (pa.ArrowInvalid, OSError) as e:
            raise KakashiError(f"catalog file {f} is unreadable: {e}") from None
    if not parts:
        schema = SCHEMAS[table] if columns is None else pa.schema([SCHEMAS[table].field(c) for c in columns])
        return schema.empty_table()
    return pa.concat_tables(parts)


def read_estimates(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The estimates table in recorded order, each ``p_hat`` the belief's exact value (from
    ``p_hat_exact``, or an older file's decimal128 or float ``p_hat``; None when a foreign file's
    is no number: the replay rejects it with its reason)."""
    out = []
    for f in files(root, "estimates"):
        try:
            have = pq.read_schema(f)
            version = file_version(have)
            i = have.get_field_index(file_columns("estimates", ["p_hat"], version)[0])
            p_hat = ESTIMATES.get_field_index("p_hat")  # read as written: decimal128, or an older float
            schema = ESTIMATES if i < 0 else ESTIMATES.set(p_hat, pa.field("p_hat", have.field(i).type))
            rows = read_file(f, "estimates", schema=schema).to_pylist()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
            raise KakashiError(f"catalog file {f} is unreadable: {e}") from None
        for r in rows:
            r["p_hat"] = _p_hat_of(r)
            del r["p_hat_exact"]
            out.append(r)
    return out


def rebuild_books(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[int, int]]]:
    """The order books a ``book_deltas`` stream leaves (rows in recorded order): ticker ->
    {"yes": {price_cc: qty_hundredths}, "no": {...}}, for every ticker whose book is known at the end.

    A ``snapshot`` row whose (sid, seq, ts) differs from the ticker's current snapshot starts its
    book over (the rows of one snapshot share them; an empty book's has no side); a ``delta``
    adds ``delta_hundredths`` at its level; a ``reset`` makes the book unknown until the next snapshot.
    """
    books: dict[str, dict[str, dict[int, int]]] = {}
    snap_of: dict[str, tuple[Any, Any, Any]] = {}
    for r in rows:
        t, kind = r["ticker"], r["kind"]
        if kind == "reset":
            books.pop(t, None)
            snap_of.pop(t, None)
            continue
        if kind == "snapshot":
            key = (r["sid"], r["seq"], r["ts"])  # (ts too: a later run's subscription may reuse sid and seq)
            if snap_of.get(t) != key:
                snap_of[t] = key
                books[t] = {"yes": {}, "no": {}}
            if r["side"] is not None and r["delta_hundredths"]:
                books[t][r["side"]][r["price_cc"]] = r["delta_hundredths"]
            continue
        snap_of.pop(t, None)  # a later snapshot, whatever its key, starts over
        book = books.get(t)
        if book is None:
            continue  # a delta before any snapshot: its book is unknown
        side = book[r["side"]]
        q = side.get(r["price_cc"], 0) + r["delta_hundredths"]
        if q:
            side[r["price_cc"]] = q
        else:
            side.pop(r["price_cc"], None)
    return books


@dataclass
class DayInfo:
    date: str
    rows: dict[str, int]
    markets: int
    bytes: int
    first_ts: int | None
    last_ts: int | None


def info(root: str | os.PathLike[str]) -> list[DayInfo]:
    """Per UTC date: rows per table, distinct markets with snapshots, bytes on disk, time span."""
    return survey(root)[0]


@dataclass
class FileProblem:
    path: Path
    why: str
    unreadable: bool  # a replay refuses the file (else it plays it, rejecting some rows or none)

    def __str__(self) -> str:  # (a file's name may hold anything: shown escaped, on one line)
        text = f"catalog file {self.path} is unreadable: {self.why}" if self.unreadable else f"{self.path}: {self.why}"
        return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)[:500]


def survey(root: str | os.PathLike[str]) -> tuple[list[DayInfo], list[FileProblem]]:
    """``info`` and what it found wrong, file by file: a segment a replay refuses (unreadable,
    no ``ts``, a ``ts`` that is not an integer), rows without a ``ts`` (a replay rejects them),
    an empty segment. Rows and spans count the files that can be read."""
    import pyarrow.compute as pc

    root = check_catalog(root)
    days: dict[str, DayInfo] = {}
    problems: list[FileProblem] = []
    tickers: dict[str, set[str]] = {}
    for t in TABLES:
        for f in files(root, t):
            day = f.parent.name.removeprefix("date=")
            d = days.setdefault(day, DayInfo(day, {k: 0 for k in TABLES}, 0, 0, None, None))
            try:
                d.bytes += f.stat().st_size
                pf = pq.ParquetFile(f)
                meta, schema = pf.metadata, pf.schema_arrow
                version = file_version(schema)
            except (pa.ArrowInvalid, OSError) as e:
                problems.append(FileProblem(f, str(e), True))
                continue
            i = schema.get_field_index(file_columns(t, ["ts"], version)[0])
            if i < 0:
                problems.append(FileProblem(f, "it has no ts column", True))
                continue
            if not pa.types.is_integer(schema.field(i).type):
                problems.append(FileProblem(f, f"its ts is {schema.field(i).type}, not integer epoch ms", True))
                continue
            if meta.num_rows == 0:
                problems.append(FileProblem(f, "an empty segment (no rows)", False))
                continue
            if t != "snapshots":
                d.rows[t] += meta.num_rows
                continue
            try:
                tab = upgrade(t, pq.read_table(f, columns=file_columns(t, ["ts", "ticker"], version)), version)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, KeyError) as e:
                problems.append(FileProblem(f, str(e), True))
                continue
            d.rows[t] += meta.num_rows
            ts = tab.column("ts")
            if ts.null_count:
                problems.append(FileProblem(f, f"{ts.null_count:,} rows without a ts (a replay rejects them)", False))
            tickers.setdefault(day, set()).update(x for x in tab.column("ticker").unique().to_pylist() if x is not None)
            mm = pc.min_max(ts).as_py()
            if mm["min"] is not None:
                d.first_ts = mm["min"] if d.first_ts is None else min(d.first_ts, mm["min"])
                d.last_ts = mm["max"] if d.last_ts is None else max(d.last_ts, mm["max"])
    for day, names in tickers.items():
        days[day].markets = len(names)
    return [days[k] for k in sorted(days)], problems


def default_catalog_dir(db_path: str | os.PathLike[str]) -> Path:
    """``catalog/`` beside the database."""
    return Path(db_path).resolve().parent / "catalog"
