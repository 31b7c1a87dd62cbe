"""The market-data catalog: a Parquet dataset of what the feed saw, partitioned by UTC date.

Layout (see data_schema.md, "Market-data catalog")::

    catalog/
      snapshots/date=2026-11-26/part-1795651200000-000001.parquet
      markets/date=2026-11-26/part-...parquet     (metadata and lifecycle changes)
      estimates/date=2026-11-26/part-...parquet   (beliefs, when they change)
      trades/date=...                              (public trade prints, WebSocket)
      book_deltas/date=...                         (order-book snapshots and deltas, WebSocket)

Units are exact integers from the start: prices in $0.0001 (``*_e4``: 0.42 -> 4200),
counts in hundredths of a contract (``*_e2``: 10 -> 1000), time in UTC epoch ms.

A writer buffers rows in memory and rolls a segment every ``roll_s`` seconds, when a
buffer reaches ``max_rows`` and on close. A segment is written to a hidden temporary name
(``.part-*.tmp``: readers and ``*.parquet`` globs skip it), fsynced, then renamed into
place, so a crash or ``kill -9`` loses at most the rows buffered since the last roll and
never leaves a half-written ``.parquet`` file. One writer per catalog (a lock file).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kakashi_tui.adapters.source import FetchBatch, RawRow
from kakashi_tui.adapters.userfiles import check_regular
from kakashi_tui.core.errors import ConfigError, KakashiError
from kakashi_tui.core.models import Estimate, Market, Quote, Snapshot
from kakashi_tui.core.validate import validate_row

PRICE_SCALE = 10_000  # *_e4 columns: integer units of $0.0001
COUNT_SCALE = 100  # *_e2 columns: integer hundredths of a contract
TABLES = ("snapshots", "markets", "estimates", "trades", "book_deltas")
DEFAULT_ROLL_S = 120.0
DEFAULT_MAX_ROWS = 500_000

LEVEL = pa.struct([pa.field("price_e4", pa.int64(), nullable=False), pa.field("qty_e2", pa.int64(), nullable=False)])

SNAPSHOTS = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("yes_bid_e4", pa.int64()),
        pa.field("yes_ask_e4", pa.int64()),
        pa.field("last_e4", pa.int64()),
        pa.field("volume_e2", pa.int64(), nullable=False),
        pa.field("yes_bids", pa.list_(LEVEL)),
        pa.field("no_bids", pa.list_(LEVEL)),
        pa.field("source", pa.string(), nullable=False),
        # when Kakashi fetched the row (the tick it arrived in); ``ts`` is when the exchange says the
        # quote was seen. Null (and absent in files written before it) reads as ``ts``.
        pa.field("recv_ts", pa.int64()),
    ],
    metadata={
        "kakashi.table": "snapshots",
        "kakashi.units": "ts, recv_ts UTC epoch ms; *_e4 $0.0001; *_e2 1/100 contract",
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
        pa.field("settlement_value_e4", pa.int64()),
        pa.field("subtitle", pa.string()),
        pa.field("updated_ts", pa.int64()),
        pa.field("fee_multiplier", pa.decimal128(38, 18)),
        pa.field("fee_type", pa.string()),
        pa.field("fee_waiver_until_ts", pa.int64()),
    ],
    metadata={"kakashi.table": "markets", "kakashi.units": "ts UTC epoch ms; *_e4 $0.0001"},
)

P_HAT = pa.decimal128(38, 18)
ESTIMATES = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("p_hat", P_HAT, nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ],
    metadata={"kakashi.table": "estimates", "kakashi.units": "ts UTC epoch ms; p_hat probability of YES"},
)

TRADES = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("yes_price_e4", pa.int64(), nullable=False),
        pa.field("count_e2", pa.int64(), nullable=False),
        pa.field("taker_side", pa.string()),
        pa.field("trade_id", pa.string()),
        pa.field("source", pa.string(), nullable=False),
    ],
    metadata={"kakashi.table": "trades", "kakashi.units": "ts UTC epoch ms; *_e4 $0.0001; *_e2 1/100 contract"},
)

BOOK_DELTAS = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("side", pa.string()),
        pa.field("price_e4", pa.int64()),
        pa.field("delta_e2", pa.int64()),
        pa.field("seq", pa.int64()),
        pa.field("sid", pa.int64()),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ],
    metadata={
        "kakashi.table": "book_deltas",
        "kakashi.units": "ts UTC epoch ms; *_e4 $0.0001; *_e2 1/100 contract",
        "kakashi.rebuild": "a ticker's book: its last 'snapshot' rows (one sid/seq/ts) then its 'delta' rows; "
        "'reset': unknown until the next snapshot",
    },
)

SCHEMAS = {
    "snapshots": SNAPSHOTS,
    "markets": MARKETS,
    "estimates": ESTIMATES,
    "trades": TRADES,
    "book_deltas": BOOK_DELTAS,
}


def utc_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def to_e4(p: Decimal | None) -> int | None:
    """An exact price as integer $0.0001 units; a price finer than that is refused, never rounded."""
    if p is None:
        return None
    v = p.scaleb(4)
    i = int(v)
    if i != v:
        raise ValueError(f"price {p} is finer than $0.0001")
    return i


def level_e4(p: Decimal) -> int:
    """A book level's price (never absent) in $0.0001 units."""
    v = to_e4(p)
    assert v is not None
    return v


def to_e2(n: int | Decimal) -> int:
    if type(n) is int:
        return n * COUNT_SCALE
    v = Decimal(n).scaleb(2)
    i = int(v)
    if i != v:
        raise ValueError(f"count {n} is finer than 1/100 contract")
    return i


_D4: dict[int, Decimal] = {}


def from_e4(v: int | None) -> Decimal | None:
    """$0.0001 units back to the exact Decimal (``4200`` -> ``Decimal("0.4200")``)."""
    if v is None:
        return None
    d = _D4.get(v)
    if d is None:
        d = _D4[v] = Decimal(v).scaleb(-4)
    return d


def from_e2(v: int | None) -> int | Decimal | None:
    """Hundredths of a contract back to an int when whole, else an exact Decimal."""
    if v is None:
        return None
    return v // COUNT_SCALE if v % COUNT_SCALE == 0 else Decimal(v).scaleb(-2)


# -- writing --------------------------------------------------------------------------------
@dataclass
class _Buffer:
    columns: dict[str, list[Any]]
    rows: int = 0


def _snapshot_buffer() -> _Buffer:
    return _Buffer(
        {
            k: []
            for k in (
                "ts",
                "ticker",
                "yes_bid_e4",
                "yes_ask_e4",
                "last_e4",
                "volume_e2",
                "yes_len",
                "yes_p",
                "yes_q",
                "no_len",
                "no_p",
                "no_q",
                "source",
                "recv_ts",
            )
        }
    )


def _plain_buffer(schema: pa.Schema) -> _Buffer:
    return _Buffer({f.name: [] for f in schema})


def _levels_array(lengths: list[int], prices: list[int], qtys: list[int]) -> pa.Array:
    offsets = [0] * (len(lengths) + 1)
    acc = 0
    for i, n in enumerate(lengths):
        acc += n
        offsets[i + 1] = acc
    values = pa.StructArray.from_arrays([pa.array(prices, pa.int64()), pa.array(qtys, pa.int64())], fields=list(LEVEL))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=pa.list_(LEVEL))


class CatalogWriter:
    """Appends rows to a catalog; rolls segments by time and size; ``close`` flushes."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        roll_s: float = DEFAULT_ROLL_S,
        max_rows: int = DEFAULT_MAX_ROWS,
        clock=time.monotonic,
    ) -> None:
        self.root = Path(root)
        self.roll_s = roll_s
        self.max_rows = max_rows
        self._clock = clock
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
        self._snap = _snapshot_buffer()
        self._markets = _plain_buffer(MARKETS)
        self._estimates = _plain_buffer(ESTIMATES)
        self._trades = _plain_buffer(TRADES)
        self._book_deltas = _plain_buffer(BOOK_DELTAS)
        self._serial = 0
        self._last_roll = clock()
        self.rows_written = {t: 0 for t in TABLES}
        self.files_written = 0

    def _remove_stale_temps(self) -> None:
        """A segment a killed writer left half-written (never visible to readers)."""
        for p in self.root.glob("*/date=*/.part-*.tmp"):
            try:
                p.unlink()
            except OSError:
                pass

    @property
    def pending_rows(self) -> int:
        return self._snap.rows + self._markets.rows + self._estimates.rows + self._trades.rows + self._book_deltas.rows

    # -- appending ----------------------------------------------------------------------
    def add_snapshot(self, s: Snapshot | Quote, source: str, recv_ts: int | None = None) -> None:
        """``recv_ts``: when Kakashi fetched it (default: the quote's own ``ts``)."""
        self.add_snapshot_row(
            s.ts,
            s.ticker,
            to_e4(s.yes_bid),
            to_e4(s.yes_ask),
            to_e4(s.last),
            to_e2(s.volume),
            [(level_e4(lv.price), to_e2(lv.qty)) for lv in s.yes_bids],
            [(level_e4(lv.price), to_e2(lv.qty)) for lv in s.no_bids],
            source,
            recv_ts,
        )

    def add_snapshot_row(
        self,
        ts: int,
        ticker: str,
        yes_bid_e4: int | None,
        yes_ask_e4: int | None,
        last_e4: int | None,
        volume_e2: int,
        yes_bids: list[tuple[int, int]],
        no_bids: list[tuple[int, int]],
        source: str,
        recv_ts: int | None = None,
    ) -> None:
        """A validated snapshot already in catalog units (levels as (price_e4, qty_e2), best first);
        ``ts`` when the exchange says it was seen, ``recv_ts`` when it was fetched (default ``ts``).
        Rows arrive in fetch order: segments split by ``recv_ts``'s UTC date."""
        c = self._snap.columns
        c["recv_ts"].append(ts if recv_ts is None else recv_ts)
        c["ts"].append(ts)
        c["ticker"].append(ticker)
        c["yes_bid_e4"].append(yes_bid_e4)
        c["yes_ask_e4"].append(yes_ask_e4)
        c["last_e4"].append(last_e4)
        c["volume_e2"].append(volume_e2)
        for side, levels in (("yes", yes_bids), ("no", no_bids)):
            c[f"{side}_len"].append(len(levels))
            for p, q in levels:
                c[f"{side}_p"].append(p)
                c[f"{side}_q"].append(q)
        c["source"].append(source)
        self._snap.rows += 1

    def add_market(self, m: Market, ts: int) -> None:
        c = self._markets.columns
        sv = getattr(m, "settlement_value", None)
        mt = getattr(m, "market_type", None)
        fm = getattr(m, "fee_multiplier", None)
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
            "settlement_value_e4": to_e4(sv) if sv is not None else None,
            "subtitle": getattr(m, "subtitle", None) or None,
            "updated_ts": getattr(m, "updated_ts", None),
            "fee_multiplier": fm,
            "fee_type": getattr(m, "fee_type", None),
            "fee_waiver_until_ts": getattr(m, "fee_waiver_until_ts", None),
        }
        for k, v in row.items():
            c[k].append(v)
        self._markets.rows += 1

    def add_estimate(self, e: Estimate) -> None:
        c = self._estimates.columns
        c["ts"].append(e.ts)
        c["ticker"].append(e.ticker)
        exponent = e.p_hat.as_tuple().exponent
        c["p_hat"].append(
            e.p_hat.quantize(Decimal("1e-18")) if isinstance(exponent, int) and exponent < -18 else e.p_hat
        )
        c["source"].append(e.source)
        self._estimates.rows += 1

    def add_trade(
        self,
        ts: int,
        ticker: str,
        yes_price_e4: int,
        count_e2: int,
        taker_side: str | None,
        trade_id: str | None,
        source: str,
    ) -> None:
        """A public trade print (the WebSocket ``trade`` channel)."""
        c = self._trades.columns
        for k, v in (
            ("ts", ts),
            ("ticker", ticker),
            ("yes_price_e4", yes_price_e4),
            ("count_e2", count_e2),
            ("taker_side", taker_side),
            ("trade_id", trade_id),
            ("source", source),
        ):
            c[k].append(v)
        self._trades.rows += 1

    def add_book_event(
        self,
        ts: int,
        ticker: str,
        side: str | None,
        price_e4: int | None,
        delta_e2: int | None,
        seq: int | None,
        sid: int | None,
        kind: str,
        source: str,
    ) -> None:
        """One applied order-book change (``kalshi.ws.BookEvent``): a snapshot level, a delta or a reset."""
        c = self._book_deltas.columns
        for k, v in (
            ("ts", ts),
            ("ticker", ticker),
            ("side", side),
            ("price_e4", price_e4),
            ("delta_e2", delta_e2),
            ("seq", seq),
            ("sid", sid),
            ("kind", kind),
            ("source", source),
        ):
            c[k].append(v)
        self._book_deltas.rows += 1

    def maybe_roll(self) -> int:
        """Flush when the segment is old or big enough; returns the files written."""
        if self.pending_rows >= self.max_rows or (self.pending_rows and self._clock() - self._last_roll >= self.roll_s):
            return self.flush()
        return 0

    # -- segments -------------------------------------------------------------------------
    def _tables(self) -> Iterator[tuple[str, pa.Table]]:
        if self._snap.rows:
            c = self._snap.columns
            yield (
                "snapshots",
                pa.Table.from_arrays(
                    [
                        pa.array(c["ts"], pa.int64()),
                        pa.array(c["ticker"], pa.string()),
                        pa.array(c["yes_bid_e4"], pa.int64()),
                        pa.array(c["yes_ask_e4"], pa.int64()),
                        pa.array(c["last_e4"], pa.int64()),
                        pa.array(c["volume_e2"], pa.int64()),
                        _levels_array(c["yes_len"], c["yes_p"], c["yes_q"]),
                        _levels_array(c["no_len"], c["no_p"], c["no_q"]),
                        pa.array(c["source"], pa.string()),
                        pa.array(c["recv_ts"], pa.int64()),
                    ],
                    schema=SNAPSHOTS,
                ),
            )
            self._snap = _snapshot_buffer()
        for name, buf, schema in (
            ("markets", self._markets, MARKETS),
            ("estimates", self._estimates, ESTIMATES),
            ("trades", self._trades, TRADES),
            ("book_deltas", self._book_deltas, BOOK_DELTAS),
        ):
            if buf.rows:
                yield name, pa.Table.from_pydict(buf.columns, schema=schema)
        self._markets = _plain_buffer(MARKETS)
        self._estimates = _plain_buffer(ESTIMATES)
        self._trades = _plain_buffer(TRADES)
        self._book_deltas = _plain_buffer(BOOK_DELTAS)

    def flush(self) -> int:
        n = 0
        for name, table in self._tables():
            # snapshots by when they were fetched (the replay's clock: rows arrive in that order)
            ts = table.column("recv_ts" if name == "snapshots" else "ts").to_pylist()
            # one file per UTC date in the buffer (rows arrive in time order: split at day edges)
            start = 0
            while start < len(ts):
                day = utc_date(ts[start])
                end = start
                while end < len(ts) and utc_date(ts[end]) == day:
                    end += 1
                self._write(name, day, table.slice(start, end - start), ts[start])
                self.rows_written[name] += end - start
                n += 1
                start = end
        self._last_roll = self._clock()
        return n

    def _write(self, name: str, day: str, table: pa.Table, first_ts: int) -> None:
        folder = self.root / name / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        self._serial += 1
        final = folder / f"part-{first_ts:013d}-{os.getpid()}-{self._serial:06d}.parquet"
        tmp = folder / f".{final.name}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, final)
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)  # the rename itself survives a power cut
        finally:
            os.close(dfd)
        self.files_written += 1

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None


# -- recording a feed -------------------------------------------------------------------------
class Recorder:
    """What a feed hands the engine, validated by the same row check, into a catalog.

    Markets are written when their metadata or lifecycle changes, estimates when a
    market's belief changes (as the database keeps them), every valid snapshot always.
    """

    def __init__(self, writer: CatalogWriter) -> None:
        self.writer = writer
        self._markets: dict[str, Market] = {}
        self._cache: dict[str, tuple[dict, Market]] = {}
        self._beliefs: dict[str, tuple[Decimal, str]] = {}
        self.rejected = 0
        self.source: RecordingSource | None = None  # set by attach_recorder
        self.estimators: list[RecordingEstimator] = []
        self.before_close: list[Any] = []  # called first by close(): hand over what a feed still holds

    def record_batch(self, batch: FetchBatch, now_ms: int, source: str) -> None:
        for row in batch.rows:
            self.record_row(row, now_ms, source)
        self.writer.maybe_roll()

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
        self.market(v.market, now_ms)  # a change takes effect at the tick that fetched it
        if v.snapshot is not None:
            self.writer.add_snapshot(v.snapshot, source, now_ms)
        return None

    def market(self, m: Market, ts: int) -> None:
        if self._markets.get(m.ticker) != m:
            self._markets[m.ticker] = m
            self.writer.add_market(m, ts)

    def estimates(self, estimates: Iterable[Estimate]) -> None:
        for e in estimates:
            key = (e.p_hat, e.source)
            if self._beliefs.get(e.ticker) != key:
                self._beliefs[e.ticker] = key
                self.writer.add_estimate(e)

    def sample_beliefs(self, tickers: list[str]) -> None:
        """Ask the attached estimators for these markets' beliefs now, and record the changes
        (a collector that never trades still records what the operator believed)."""
        if self.source is not None:
            now = self.source.now_ms()
            for est in self.estimators:
                est.estimates(tickers, now)

    def trades(self, trades: Iterable[Any]) -> None:
        """Trade prints (``kalshi.ws.Trade``) as they came off the feed."""
        for t in trades:
            self.writer.add_trade(
                t.ts, t.ticker, t.yes_price_e4, t.count_e2, t.taker_side or None, t.trade_id or None, "kalshi-ws"
            )

    def book_events(self, events: Iterable[Any]) -> None:
        """Order-book changes (``kalshi.ws.BookEvent``) in the order the feed applied them."""
        add = self.writer.add_book_event
        for e in events:
            add(e.ts, e.ticker, e.side, e.price_e4, e.delta_e2, e.seq, e.sid, e.kind, "kalshi-ws")

    def close(self) -> None:
        try:
            for fn in self.before_close:
                fn()
        finally:
            self.writer.close()


class RecordingSource:
    """A source that records what it fetches (valid rows) before handing it on, unchanged."""

    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder
        self.name = inner.name

    def now_ms(self) -> int:
        return self.inner.now_ms()

    def fetch(self) -> FetchBatch:
        batch = self.inner.fetch()
        self.recorder.record_batch(batch, self.inner.now_ms(), self.inner.name)
        return batch

    def close(self) -> None:
        self.inner.close()

    def stop(self) -> None:
        stop = getattr(self.inner, "stop", None)
        if stop is not None:
            stop()

    def __getattr__(self, name: str) -> Any:  # checkpoint(), watch_for, ... of the wrapped source
        return getattr(self.inner, name)


class RecordingEstimator:
    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder

    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]:
        out = self.inner.estimates(tickers, now_ms)
        self.recorder.estimates(out)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def attach_recorder(engine: Any, writer: CatalogWriter) -> Recorder:
    """Record everything ``engine`` fetches and estimates into ``writer``'s catalog."""
    rec = Recorder(writer)
    engine.source = rec.source = RecordingSource(engine.source, rec)
    engine.estimators = rec.estimators = [RecordingEstimator(e, rec) for e in engine.estimators]
    return rec


# -- import ---------------------------------------------------------------------------------
@dataclass
class ImportResult:
    snapshots: int = 0
    markets: int = 0
    estimates: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


def import_ticks(items: Iterable[Any], writer: CatalogWriter, source: str) -> ImportResult:
    """Replay ticks (``adapters.replay.group_ticks``) into a catalog, each row through the row check."""
    from pydantic import ValidationError

    from kakashi_tui.core.models import rejection_reason

    rec = Recorder(writer)
    res = ImportResult()
    for tick in items:
        if isinstance(tick, int):
            continue
        for reason, _payload in tick.rejected:
            res.rejected += 1
            if len(res.reasons) < 5:
                res.reasons.append(reason)
        for row in tick.rows:
            reason = rec.record_row(row, tick.ts, source)
            if reason is not None:
                res.rejected += 1
                if len(res.reasons) < 5:
                    res.reasons.append(reason)
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
                res.rejected += 1
                if isinstance(e, ValidationError) and len(res.reasons) < 5:
                    res.reasons.append(f"estimate {rejection_reason(e)}")
        rec.estimates(ests)
        writer.maybe_roll()
    writer.flush()
    res.snapshots, res.markets, res.estimates = (writer.rows_written[t] for t in TABLES[:3])
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
            parts.append(pq.read_table(f, columns=columns, schema=SCHEMAS[table]))
        except (pa.ArrowInvalid, OSError) as e:
            raise KakashiError(f"catalog file {f} is unreadable: {e}") from None
    if not parts:
        schema = SCHEMAS[table] if columns is None else pa.schema([SCHEMAS[table].field(c) for c in columns])
        return schema.empty_table()
    return pa.concat_tables(parts)


def rebuild_books(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[int, int]]]:
    """The order books a ``book_deltas`` stream leaves (rows in recorded order): ticker ->
    {"yes": {price_e4: qty_e2}, "no": {...}}, for every ticker whose book is known at the end.

    A ``snapshot`` row whose (sid, seq, ts) differs from the ticker's current snapshot starts its
    book over (the rows of one snapshot share them; an empty book's has no side); a ``delta``
    adds ``delta_e2`` at its level; a ``reset`` makes the book unknown until the next snapshot.
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
            if r["side"] is not None and r["delta_e2"]:
                books[t][r["side"]][r["price_e4"]] = r["delta_e2"]
            continue
        snap_of.pop(t, None)  # a later snapshot, whatever its key, starts over
        book = books.get(t)
        if book is None:
            continue  # a delta before any snapshot: its book is unknown
        side = book[r["side"]]
        q = side.get(r["price_e4"], 0) + r["delta_e2"]
        if q:
            side[r["price_e4"]] = q
        else:
            side.pop(r["price_e4"], None)
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
    root = check_catalog(root)
    days: dict[str, DayInfo] = {}
    for t in TABLES:
        for f in files(root, t):
            day = f.parent.name.removeprefix("date=")
            d = days.setdefault(day, DayInfo(day, {k: 0 for k in TABLES}, 0, 0, None, None))
            try:
                meta = pq.ParquetFile(f).metadata
            except (pa.ArrowInvalid, OSError) as e:
                raise KakashiError(f"catalog file {f} is unreadable: {e}") from None
            d.rows[t] += meta.num_rows
            d.bytes += f.stat().st_size
    for day, d in days.items():
        fs = [f for f in files(root, "snapshots") if f.parent.name == f"date={day}"]
        if fs:
            tickers: set[str] = set()
            lo, hi = None, None
            for f in fs:
                tab = pq.read_table(f, columns=["ts", "ticker"])
                tickers.update(tab.column("ticker").unique().to_pylist())
                import pyarrow.compute as pc

                mm = pc.min_max(tab.column("ts")).as_py()
                lo = mm["min"] if lo is None else min(lo, mm["min"])
                hi = mm["max"] if hi is None else max(hi, mm["max"])
            d.markets, d.first_ts, d.last_ts = len(tickers), lo, hi
    return [days[k] for k in sorted(days)]


def default_catalog_dir(db_path: str | os.PathLike[str]) -> Path:
    """``catalog/`` beside the database."""
    return Path(db_path).resolve().parent / "catalog"
