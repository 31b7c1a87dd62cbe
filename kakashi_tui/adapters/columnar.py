"""Replay a market-data catalog: Arrow record batches, checked vectorised, decided per row
only where something can happen.

``CatalogSource`` plays a catalog as the exchange: one timeline (``Timeline``) of the
snapshot batches in recorded order, merged with the markets (metadata, lifecycle,
settlement) and estimates tables; records sharing a ``ts`` are one engine tick, as in the
JSONL replay. Every tick goes through the engine's tick (so tick numbers, day starts and the
daily stop are the live run's), but what a tick hands over differs:

- ``every_row=True`` (the reference, the old per-row path): every snapshot, as the raw row a
  source would send;
- otherwise each batch is checked by ``check_batch`` (the row check's rules on whole columns;
  rows that are not plainly valid get the row check itself, for the verdict and its reason)
  and a tick hands over only the rows where something can happen: a market with a belief
  whose best ask could clear the edge threshold after fees (``[strategy] mode`` take or both),
  or a two-sided book a post could rest on with its belief clearing the threshold at a price
  over zero after no fee (post or both: rules.md "Posting"), a market with an open position or
  a live paper order (resting or not, from the tick it is decided until it is done: the engine's
  ``held_tickers``), a lifecycle change or settlement; plus the rejected rows (so they are
  stored with their reason) and each market's last row of a batch (its latest quote).
  Everything else is counted: its decisions would be none.

Parity is the contract: both give the same decisions, fills, ledger and final cash
(tests/integration/test_columnar.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import ValidationError

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.source import CommandRecord, Estimator, FetchBatch, RawRow, Source, TapeEvent
from kakashi_tui.adapters.tape import BookRow, PrintRow, TapeBuilder
from kakashi_tui.core import rowrules as R
from kakashi_tui.core.errors import KakashiError
from kakashi_tui.core.fees import TAKER_RATE, FeeTerms, fee_ratio
from kakashi_tui.core.memo import Memo
from kakashi_tui.core.models import Estimate, Quote, book_of_levels, level_text, rejection_reason
from kakashi_tui.core.rowrules import FUTURE_SKEW_MS
from kakashi_tui.core.strategy import StrategyConfig, clearing_asks_cc
from kakashi_tui.core.timeguard import AHEAD_MS, MAX_TS, MIN_TS, ClockGuard, ts_problem
from kakashi_tui.core.validate import validate_row

BACKFILL = "backfill"  # the source of prints backfilled from Kalshi's history (never seen live)

# The row check's rules (core/rowrules.py) in catalog units: the *_cc and *_hundredths columns are the
# rules' own stored units (centicents, hundredths), and a grid is one such unit, so every value
# of those columns is on its grid. The property test holds this check and the row check equal.
if (R.PRICE.scale, R.COUNT.scale, R.LEVEL_PRICE.scale, R.LEVEL_QTY.scale) != (cat.PRICE_SCALE, cat.COUNT_SCALE) * 2:
    raise ImportError("core/rowrules.py's units are not the catalog's *_cc / *_hundredths units")
#: Kalshi's quiet 0.0000 bid / 1.0000 ask read as "no order on that side".
QUIET_SIDES = True
NO_BID_CC, NO_ASK_CC = R.NO_BID_U, R.NO_ASK_U
ONE_CC = cat.PRICE_SCALE
#: ``[strategy] mode``'s words (take, post, both), as the strategy's config declares them
MODES: tuple[str, ...] = get_args(StrategyConfig.model_fields["mode"].annotation)
NO_FEE = fee_ratio(FeeTerms(Decimal(0)), 0)  # a quadratic market's maker pays nothing: no post pays less
DAY_MS = 86_400_000
SNAPSHOT_COLUMNS = ["ts", "ticker", "yes_bid_cc", "yes_ask_cc", "last_cc", "volume_hundredths", "yes_bids", "no_bids"]
#: What a snapshot batch is read as (every field nullable: a foreign file's nulls are the check's business).
#: ``ts`` is read as the tick clock (the file's ``recv_ts``: when the row was fetched, else its ``ts``)
#: and ``quote_ts`` as the quote's own time (the file's ``ts``), so a re-sent old quote is played at
#: the tick that fetched it and the risk gate sees its age.
READ_SCHEMA = pa.schema(
    [
        pa.field(f.name, pa.dictionary(pa.int32(), pa.string()) if f.name == "ticker" else f.type)
        for f in cat.SNAPSHOTS
        if f.name in SNAPSHOT_COLUMNS
    ]
    + [pa.field("quote_ts", pa.int64())]
)
READ_TYPES = [f.type for f in READ_SCHEMA]
MARKET_KEYS = (
    "ticker",
    "title",
    "series",
    "event_ticker",
    "status",
    "open_ts",
    "close_ts",
    "result",
    "subtitle",
    "market_type",
    "updated_ts",
    "fee_multiplier",
    "fee_type",
    "fee_waiver_until_ts",
    "settlement_bounds_type",
    "price_ranges",
    "exchange_index",
    "event_exclusive",
)


def _tick_clock(t: pa.Table, recv: pa.ChunkedArray | None) -> pa.Table:
    """Snapshot columns with ``ts`` the tick clock (``recv_ts``, null or absent: ``ts``) and
    ``quote_ts`` the quote's own time."""
    quote = t.column("ts")
    tick = quote if recv is None or recv.null_count == len(recv) else pc.coalesce(recv, quote)
    return t.set_column(0, "ts", tick).append_column("quote_ts", quote)


# -- the vectorised check ---------------------------------------------------------------------
def _ints(arr: pa.Array, fill: int) -> tuple[np.ndarray, np.ndarray]:
    """(values with nulls filled, null mask) as numpy."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count == 0:
        return arr.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), np.zeros(len(arr), dtype=bool)
    if arr.null_count == len(arr):  # (a column nobody filled: last trade prices, often)
        return np.full(len(arr), fill, dtype=np.int64), np.ones(len(arr), dtype=bool)
    nulls = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    vals = pc.fill_null(arr, fill).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return vals, nulls


@dataclass
class Levels:
    """One book side of a batch: flat level prices/quantities with per-row starts."""

    start: np.ndarray  # per row: index of its first level in the flat arrays
    length: np.ndarray  # per row: number of levels (0 for a null list)
    price: np.ndarray  # flat, nulls filled with -1
    qty: np.ndarray  # flat, nulls filled with 0
    p_null: np.ndarray  # flat: the level or its price is null
    q_null: np.ndarray  # flat: the level or its quantity is null
    list_null: np.ndarray  # per row: the list itself is null
    bad: np.ndarray  # per row: a level is not plainly valid, or the list itself is null
    _lists: tuple[list[int], list[int], bool] | None = None  # price, qty as lists and "any nulls", on first use

    def raws(self, rows: np.ndarray) -> list[list[Any] | None]:
        """``raw`` for many rows: the flat columns become Python lists once."""
        if self._lists is None:
            self._lists = (self.price.tolist(), self.qty.tolist(), bool(self.p_null.any() or self.q_null.any()))
        plist, qlist, nulls = self._lists
        if nulls or self.list_null[rows].any():
            return [self.raw(int(i)) for i in rows]
        pairs = _PAIRS
        out: list[list[Any] | None] = []
        for s, k in zip(self.start[rows].tolist(), self.length[rows].tolist()):
            row = []
            for key in zip(plist[s : s + k], qlist[s : s + k]):
                pair = pairs.get(key)
                if pair is None:  # (bounded: a long replay of varied books)
                    pair = pairs.put(key, (cat.from_cc(key[0]), cat.from_hundredths(key[1])))
                row.append(pair)
            out.append(row)
        return out

    def depth(self, rows: np.ndarray) -> list[tuple[list[int], list[int]]]:
        """(prices, quantities) of many plainly valid rows, as ints (the Quote's depth). Only
        these rows' levels become Python ints (a tick hands over a few rows of a large batch)."""
        length = self.length[rows]
        ends = np.cumsum(length)
        # the flat index of every level of these rows, in order
        flat = np.repeat(self.start[rows] - (ends - length), length) + np.arange(int(ends[-1]) if len(ends) else 0)
        plist, qlist = self.price[flat].tolist(), self.qty[flat].tolist()
        out = []
        s = 0
        for e in ends.tolist():
            out.append((plist[s:e], qlist[s:e]))
            s = e
        return out

    def raw(self, i: int) -> list[Any] | None:
        if self.list_null[i]:
            return None
        s, k = int(self.start[i]), int(self.length[i])
        return [
            [None if pn else cat.from_cc(p), None if qn else cat.from_hundredths(q)]
            for p, q, pn, qn in zip(
                self.price[s : s + k].tolist(),
                self.qty[s : s + k].tolist(),
                self.p_null[s : s + k].tolist(),
                self.q_null[s : s + k].tolist(),
            )
        ]


#: (price_cc, qty_hundredths) -> the (price, qty) pair a source hands over (immutable, so shared).
_PAIRS: Memo[tuple[int, int], tuple[Any, Any]] = Memo("columnar.pairs")
#: (price_cc, qty_hundredths) -> that level's stored text (models.level_text).
_LEVEL_TEXT: Memo[tuple[int, int], str] = Memo("columnar.level_text")


#: a whole depth -> its stored text (a market's book repeats from tick to tick)
_BOOK_TEXT: Memo[tuple[tuple[int, ...], ...], str] = Memo("columnar.book_text")


def _book_text(yc: list[int], yq: list[int], nc: list[int], nq: list[int]) -> str:
    """models.book_text of a depth, whole books and level texts kept across rows."""
    key = (tuple(yc), tuple(yq), tuple(nc), tuple(nq))
    text = _BOOK_TEXT.get(key)
    if text is None:
        text = _BOOK_TEXT.put(key, _levels_text(yc, yq, nc, nq))
    return text


def _levels_text(yc: list[int], yq: list[int], nc: list[int], nq: list[int]) -> str:
    if not yc and not nc:
        return ""
    texts = _LEVEL_TEXT
    sides = []
    for cs, qs in ((yc, yq), (nc, nq)):
        parts = []
        for key in zip(cs, qs):
            t = texts.get(key)
            if t is None:
                t = texts.put(key, level_text(*key))
            parts.append(t)
        sides.append(parts)
    return book_of_levels(sides[0], sides[1])


def _levels(arr: pa.Array, n: int) -> Levels:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count == 0:  # (the usual case: no bitmaps to unpack)
        list_null = np.zeros(n, dtype=bool)
        offsets = arr.offsets.to_numpy()  # this array's own (a slice's offsets are its own)
        length = (offsets[1:] - offsets[:-1]).astype(np.int64)
    else:
        list_null = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        length = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = arr.flatten()  # the levels of the non-null lists, in order (slices and null lists skipped)
    if isinstance(flat, pa.ChunkedArray):
        flat = flat.combine_chunks()
    struct_null = (
        np.zeros(len(flat), dtype=bool)
        if flat.null_count == 0
        else np.asarray(flat.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    )
    children = flat.flatten()  # with the struct's own nulls merged in
    price, p_null = _ints(children[0], -1)
    qty, q_null = _ints(children[1], 0)
    p_null |= struct_null
    q_null |= struct_null
    start = np.concatenate(([0], np.cumsum(length)[:-1])).astype(np.int64) if n else np.zeros(0, np.int64)
    lp, lq = R.LEVEL_PRICE, R.LEVEL_QTY
    ok = ~p_null & ~q_null & (price >= lp.min_u) & (price <= lp.max_u) & (qty >= lq.min_u) & (qty <= lq.max_u)
    bad = np.zeros(n, dtype=bool)
    if len(price):
        descending = np.empty(len(price), dtype=bool)
        descending[0] = True
        np.less(price[1:], price[:-1], out=descending[1:])
        descending[start[length > 0]] = True  # a row's first level has nothing before it
        ok &= descending  # best first, distinct
        if not ok.all():  # the rows of the bad levels (rare): by their place among the starts
            ends = np.cumsum(length)
            bad[np.searchsorted(ends, np.flatnonzero(~ok), side="right")] = True
    return Levels(start, length, price, qty, p_null, q_null, list_null, bad | list_null)


@dataclass
class Checked:
    """A batch after the check: verdicts, and the columns as numpy for the replay."""

    n: int
    ts: np.ndarray  # per row: the tick clock (when the row was fetched)
    codes: np.ndarray  # per row: index into ``names``
    names: list[Any]  # the batch's distinct tickers
    bid: np.ndarray
    bid_null: np.ndarray
    ask: np.ndarray
    ask_null: np.ndarray
    last: np.ndarray
    last_null: np.ndarray
    volume: np.ndarray
    volume_null: np.ndarray
    yes: Levels
    no: Levels
    plain: np.ndarray  # plainly valid: the row check accepts it with exactly these values
    valid: np.ndarray  # plain, or accepted by the row check
    reasons: dict[int, str] = field(default_factory=dict)  # row -> the row check's reason
    quote_ts: np.ndarray = field(kw_only=True)  # per row: the quote's own time (the file's ``ts``)

    def raws(self, rows: list[int]) -> list[dict[str, Any]]:
        """``raw`` of many rows at once (the rows a replay tick hands the engine)."""
        if not rows:
            return []
        a = np.asarray(rows, dtype=np.int64)
        d4, d2 = cat.from_cc, cat.from_hundredths
        names = self.names
        tick = [names[c] for c in self.codes[a].tolist()]
        tss = self.quote_ts[a].tolist()
        tops = [
            [None if nl else d4(v) for v, nl in zip(col[a].tolist(), null[a].tolist())]
            for col, null in ((self.bid, self.bid_null), (self.ask, self.ask_null), (self.last, self.last_null))
        ]
        vol = [None if nl else d2(v) for v, nl in zip(self.volume[a].tolist(), self.volume_null[a].tolist())]
        yes, no = self.yes.raws(a), self.no.raws(a)
        return [
            {
                "ticker": tick[j],
                "ts": tss[j],
                "yes_bid": tops[0][j],
                "yes_ask": tops[1][j],
                "last": tops[2][j],
                "volume": vol[j],
                "yes_bids": yes[j],
                "no_bids": no[j],
            }
            for j in range(len(rows))
        ]

    def quotes(self, rows: list[int]) -> list[Quote | None]:
        """The Quote the row check makes of each plainly valid row (None for the others: the
        engine checks those itself). The same values and stored forms as the quick check."""
        if not rows:
            return []
        a = np.asarray(rows, dtype=np.int64)
        plain = self.plain[a].tolist()
        names = self.names
        tick = [names[c] for c in self.codes[a].tolist()]
        tss = self.quote_ts[a].tolist()  # the quote's own time (``ts`` is the tick's clock)
        bid = [None if nl else v for v, nl in zip(self.bid[a].tolist(), self.bid_null[a].tolist())]
        ask = [None if nl else v for v, nl in zip(self.ask[a].tolist(), self.ask_null[a].tolist())]
        last = [None if nl else v for v, nl in zip(self.last[a].tolist(), self.last_null[a].tolist())]
        vol = self.volume[a].tolist()
        yes, no = self.yes.depth(a), self.no.depth(a)
        out: list[Quote | None] = []
        for j, ok in enumerate(plain):
            if not ok:
                out.append(None)
                continue
            b, k = bid[j], ask[j]
            if b == NO_BID_CC:  # quiet sides: no order there (the row check's reading)
                b = None
            if k == NO_ASK_CC:
                k = None
            (yc, yq), (nc, nq) = yes[j], no[j]
            out.append(Quote(tick[j], tss[j], b, k, last[j], vol[j], (yc, yq, nc, nq), _book_text(yc, yq, nc, nq)))
        return out

    def raw(self, i: int) -> dict[str, Any]:
        """Row ``i`` as the raw snapshot a source would hand over (exact Decimals, ints)."""
        return {
            "ticker": self.names[self.codes[i]],
            "ts": int(self.quote_ts[i]),
            "yes_bid": None if self.bid_null[i] else cat.from_cc(int(self.bid[i])),
            "yes_ask": None if self.ask_null[i] else cat.from_cc(int(self.ask[i])),
            "last": None if self.last_null[i] else cat.from_cc(int(self.last[i])),
            "volume": None if self.volume_null[i] else cat.from_hundredths(int(self.volume[i])),
            "yes_bids": self.yes.raw(i),
            "no_bids": self.no.raw(i),
        }


def _ticker_codes(col: pa.Array) -> tuple[np.ndarray, list[Any]]:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    names = col.dictionary.to_pylist()
    idx = col.indices
    nulls = np.asarray(idx.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    codes = pc.fill_null(idx, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    if nulls.any():  # a null ticker: its own name (None), checked by the row check
        names = [*names, None]
        codes[nulls] = len(names) - 1
    return codes, names


def check_batch(batch: pa.RecordBatch | pa.Table, now_ms: int | None) -> Checked:
    """The row check's rules (core/rowrules.py, as core/validate.py and models.QuoteRules apply them)
    on whole columns.

    A row is *plain* when every rule holds in its usual form; the row check accepts exactly
    those with the same values (a property test holds the two together). Any other row is
    handed to ``validate_row`` itself (with a plain open market of its ticker: the market's
    own rules are the engine's, for the rows it is handed), which gives its verdict and reason.
    """
    n = batch.num_rows
    tick, _ = _ints(batch.column("ts"), 0)  # the tick clock: the engine's now for the row (``now_ms`` if given)
    ts, ts_null = _ints(batch.column("quote_ts"), 0) if "quote_ts" in batch.column_names else (tick, _)
    codes, names = _ticker_codes(batch.column("ticker"))
    name_ok = np.array([type(t) is str and bool(t) and t.strip() == t for t in names], dtype=bool)
    bid, bid_null = _ints(batch.column("yes_bid_cc"), -1)
    ask, ask_null = _ints(batch.column("yes_ask_cc"), -1)
    last, last_null = _ints(batch.column("last_cc"), -1)
    volume, volume_null = _ints(batch.column("volume_hundredths"), 0)
    yes = _levels(batch.column("yes_bids"), n)
    no = _levels(batch.column("no_bids"), n)

    # a bid of 0 or an ask of 1 is no order on that side; a quiet market has neither
    no_bid = bid_null | (bid == NO_BID_CC)
    no_ask = ask_null | (ask == NO_ASK_CC)
    p, c, t = R.PRICE, R.COUNT, R.TS
    plain = (
        ~ts_null
        & (ts >= t.min_u)
        & (ts <= t.max_u)
        & name_ok[codes]
        & (bid_null | ((bid >= p.min_u) & (bid <= p.max_u)))
        & (ask_null | ((ask >= p.min_u) & (ask <= p.max_u)))
        & (last_null | ((last >= p.min_u) & (last <= p.max_u)))
        & (no_bid | no_ask | (ask > bid))
        & ~volume_null
        & (volume >= c.min_u)
        & (volume <= c.max_u)
        & ~yes.bad
        & ~no.bad
    )
    plain &= ts <= (tick if now_ms is None else now_ms) + FUTURE_SKEW_MS
    # the depth agrees with the top of book
    ys = yes.length > 0
    if ys.any():
        first = np.full(n, -1, np.int64)
        first[ys] = yes.price[yes.start[ys]]
        plain &= no_bid | ~ys | (first == bid)
    ns = no.length > 0
    if ns.any():
        first = np.full(n, -1, np.int64)
        first[ns] = no.price[no.start[ns]]
        plain &= no_ask | ~ns | (ONE_CC - first == ask)  # (a YES ask is 1 - the best NO bid)
    out = Checked(
        n,
        tick,
        codes,
        names,
        bid,
        bid_null,
        ask,
        ask_null,
        last,
        last_null,
        volume,
        volume_null,
        yes,
        no,
        plain,
        plain.copy(),
        quote_ts=ts,
    )
    for i in np.flatnonzero(~plain).tolist():  # rare: the row check decides, and says why
        raw = out.raw(i)
        v = validate_row(
            {"ticker": raw["ticker"], "status": "open"}, raw, now_ms if now_ms is not None else int(tick[i])
        )
        if v.reason is None:
            out.valid[i] = True
        else:
            out.valid[i] = False
            out.reasons[i] = v.reason
    return out


# -- the timeline ---------------------------------------------------------------------------
@dataclass
class Filters:
    since_ms: int | None = None
    until_ms: int | None = None
    tickers: set[str] | None = None  # None: all markets
    series: set[str] | None = None


def _market_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A recorded market change as a source's raw market row (keys with a value only)."""
    out = {k: row[k] for k in MARKET_KEYS if row.get(k) is not None and k != "market_type"}
    if row.get("market_type") not in (None, "binary"):
        out["market_type"] = row["market_type"]
    if row.get("settlement_value_micros") is not None:
        out["settlement_value"] = cat.from_micros(row["settlement_value_micros"])
    if row.get("settlement_floor_micros") is not None:
        out["settlement_floor"] = cat.from_micros(row["settlement_floor_micros"])
    if isinstance(out.get("fee_multiplier"), Decimal):
        out["fee_multiplier"] = out["fee_multiplier"].normalize()
    return out


@dataclass
class TickParts:
    """One tick of the timeline: its market changes, estimates, and a slice of a checked batch."""

    ts: int
    markets: list[dict[str, Any]]
    estimates: list[Estimate]
    lo: int  # rows [lo, hi) of ``checked``
    hi: int
    rejected: list[tuple[str, Any]]
    #: the exchange shards halted as of this tick, when the recording read them then (None: kept)
    halted_shards: frozenset[int] | None = None
    same: list[str] = field(default_factory=list)  # markets followed unchanged (the ``seen`` table)


class _Held:
    """A tick the clock guard holds: its rows (tables of earlier batches, indices in this one)."""

    __slots__ = ("ts", "tables", "rows", "refuted")

    def __init__(self, ts: int) -> None:
        self.ts = ts
        self.tables: list[pa.Table] = []
        self.rows: list[int] = []
        self.refuted = False


_PLAYED = _Held(0)  # the tick the clock is at, when whole columns moved it (its rows played in place)


def _joined(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables).unify_dictionaries().combine_chunks()


def _ticker_ts(t: pa.Table, x: int | pa.Table) -> list[dict[str, Any]]:
    """(ticker, ts) of row ``x`` of ``t``, or of every row of table ``x``: a rejected row's evidence."""
    if isinstance(x, int):
        return [{k: t.column(k)[x].as_py() for k in ("ticker", "ts")}]
    return x.select(["ticker", "ts"]).to_pylist()


class Timeline:
    """A catalog read in time order: snapshot batches merged with market and estimate changes."""

    def __init__(self, root: str | os.PathLike[str], filters: Filters | None = None, batch_rows: int = 262_144) -> None:
        self.root = cat.check_catalog(root)
        self.f = filters or Filters()
        self.batch_rows = batch_rows
        self.pending_rejects: list[tuple[str, Any]] = []
        # a change or belief whose time is no time (outside 2000..2100) is rejected, with its reason
        markets = self._timed("market change", cat.read_table(self.root, "markets").to_pylist())
        shards = self._timed("exchange shards", cat.read_table(self.root, "exchange_shards").to_pylist())
        shards.sort(key=lambda r: r["ts"])  # stable: recorded order within a ts (the last one holds)
        estimates = self._timed("estimate", cat.read_estimates(self.root))
        seen = self._timed("markets seen", cat.read_table(self.root, "seen", ["ts", "tickers"]).to_pylist())
        commands = self._commands(self._timed("command", cat.read_table(self.root, "commands").to_pylist()))
        # each recording run's start and settings (catalog version 8), in time order
        runs = sorted(self._timed("run start", cat.read_table(self.root, "runs").to_pylist()), key=lambda r: r["ts"])
        self.runs = [
            RecordedRun(r["ts"], r["source"], {x["key"]: x["value"] for x in r["settings"] or ()}) for r in runs
        ]
        allowed = self.f.tickers
        if self.f.series is not None:
            by_series = {m["ticker"] for m in markets if m.get("series") in self.f.series}
            allowed = by_series if allowed is None else (allowed | by_series)
        self.allowed = allowed
        keep = (lambda t: True) if allowed is None else (lambda t: t in allowed)
        markets = [m for m in markets if keep(m["ticker"])]
        estimates = [e for e in estimates if keep(e["ticker"])]
        seen = [{"ts": r["ts"], "tickers": [t for t in r["tickers"] or () if keep(t)]} for r in seen]
        seen = [r for r in seen if r["tickers"]]
        commands = [c for c in commands if c.kind != "set_estimate" or keep(c.ticker)]
        markets.sort(key=lambda m: m["ts"])  # stable: recorded order within a ts
        estimates.sort(key=lambda e: e["ts"])
        seen.sort(key=lambda r: r["ts"])
        since = self.f.since_ms
        # state before the window: the latest metadata, and beliefs handed over at the first tick
        self.market: dict[str, dict[str, Any]] = {}
        self.initial_estimates: dict[str, dict[str, Any]] = {}
        self.initial_shards: frozenset[int] | None = None  # the halted shards before the window
        if since is not None:
            for r in shards:
                if r["ts"] < since:
                    self.initial_shards = frozenset(r["halted"] or ())
            shards = [r for r in shards if r["ts"] >= since]
            for m in markets:
                if m["ts"] < since:
                    self.market[m["ticker"]] = _market_dict(m)
            for e in estimates:
                if e["ts"] < since:
                    self.initial_estimates[e["ticker"]] = e
            markets = [m for m in markets if m["ts"] >= since]
            estimates = [e for e in estimates if e["ts"] >= since]
            seen = [r for r in seen if r["ts"] >= since]
        if self.f.until_ms is not None:
            markets = [m for m in markets if m["ts"] <= self.f.until_ms]
            estimates = [e for e in estimates if e["ts"] <= self.f.until_ms]
            shards = [r for r in shards if r["ts"] <= self.f.until_ms]
            seen = [r for r in seen if r["ts"] <= self.f.until_ms]
            commands = [c for c in commands if c.ts <= self.f.until_ms]
        # in the order applied (``after_ts`` only grows with it; a queued command's time may be
        # later than a request's adopted after it in the same tick): those before the window first
        commands.sort(key=lambda c: -1 if c.after_ts is None else c.after_ts)
        self.commands = commands
        self._ci = 0
        self.shard_events = shards
        self._hi = 0
        self.market_events = markets
        self.estimate_events = estimates
        self.seen_events = seen
        # what the paper orders' fills read of each tick (catalog version 4, #23): its round trip, polled books
        ctx = self._timed(
            "fill context", cat.read_table(self.root, "fill_context", ["ts", "round_trip_ms", "polled"]).to_pylist()
        )
        ctx.sort(key=lambda r: r["ts"])
        if since is not None:
            before = [r["round_trip_ms"] for r in ctx if r["ts"] < since and r["round_trip_ms"] is not None]
            self.initial_round_trip: int | None = before[-1] if before else None
            ctx = [r for r in ctx if r["ts"] >= since]
        else:
            self.initial_round_trip = None
        if self.f.until_ms is not None:
            ctx = [r for r in ctx if r["ts"] <= self.f.until_ms]
        self.fill_context = ctx
        #: every market a ``seen`` row names: its rows all reach the engine (the quote it decides on
        #: at a later ``seen`` tick must be the one the live engine kept)
        self.seen_tickers = {t for r in seen for t in r["tickers"]}
        #: ... and every market the operator set a belief on (the pre-filter reads the recorded
        #: beliefs only): every quote of both reaches the engine's per-row code
        self.whole_tickers = self.seen_tickers | {c.ticker for c in commands if c.kind == "set_estimate"}
        self._mi = self._ei = self._si = 0
        self.first_tick = True
        # the snapshots' clock (core/timeguard.py, as the JSONL replay's): a row dated far ahead is
        # held until later rows confirm the jump, and rejected if a row between shows it was not
        self.guard: ClockGuard[_Held] = ClockGuard()
        self._holding: list[_Held] = []  # the ticks the guard holds, with their rows

    def _timed(self, what: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            why = ts_problem(r.get("ts"))
            if why is None:
                out.append(r)
            else:
                self.pending_rejects.append((f"{what} record {why}", _jsonable({"type": what, **r})))
        return out

    def _commands(self, rows: list[dict[str, Any]]) -> list[CommandRecord]:
        """The recorded commands (rows in recorded order) as the engine applies them; one whose
        kind, time or belief cannot be read is rejected with its reason."""
        out = []
        for r in rows:
            kind, after, p = r.get("kind"), r.get("after_ts"), r.get("p_hat_exact")
            why = None if isinstance(kind, str) and kind in cat.COMMAND_KINDS else f"of unknown kind {str(kind)[:40]!r}"
            if why is None and after is not None and (bad := ts_problem(after)):
                why = f"after_ts: {bad}"
            p_hat = None
            if why is None and kind == "set_estimate":
                try:
                    p_hat = Decimal(str(p))
                    ok = bool(r.get("ticker")) and p_hat.is_finite() and 0 <= p_hat <= 1
                except (TypeError, ArithmeticError, ValueError):
                    ok = False
                why = None if ok else f"set_estimate without a market or a p_hat in [0, 1] ({str(p)[:40]!r})"
            if why is not None or not isinstance(kind, str):
                self.pending_rejects.append((f"command record {why}", _jsonable({"type": "command", **r})))
                continue
            tick = r.get("tick")
            out.append(
                CommandRecord(
                    r["ts"],
                    tick if type(tick) is int else 0,
                    after,
                    kind,
                    r.get("text") or "",
                    r.get("ticker") or "",
                    p_hat,
                )
            )
        return out

    def commands_before(self, ts: int | None) -> list[CommandRecord]:
        """The recorded commands due before the decisions of the tick at ``ts``: those applied
        after a live tick earlier than it (or before any), not handed over yet; None: every
        one left (after the last tick)."""
        cs, i = self.commands, self._ci
        j = i
        while j < len(cs):
            after = cs[j].after_ts
            if ts is not None and after is not None and after >= ts:
                break
            j += 1
        self._ci = j
        return cs[i:j]

    def fee_floor(self, configured: list[Decimal]) -> Decimal:
        """The smallest fee coefficient any market here could be charged (``FeeSchedule.terms``):
        the configured ones (the default's and the series', coefficients already) and 0.07 x each
        market's own multiplier; 0 when a market has a fee waiver. A fee type charges no less
        than the quadratic curve at the same coefficient (flat is its peak)."""
        rows = [*self.market_events, *self.market.values()]
        if any(r.get("fee_waiver_until_ts") is not None for r in rows):
            return Decimal(0)
        own = (TAKER_RATE * Decimal(r["fee_multiplier"]) for r in rows if r.get("fee_multiplier") is not None)
        coefs = [*configured, *own]
        return min(coefs) if coefs else Decimal(0)

    def market_for(self, ticker: Any) -> dict[str, Any]:
        m = self.market.get(ticker) if type(ticker) is str else None
        if m is None:
            m = {"ticker": ticker, "status": "open"}  # (read as "active" where the lifecycle words are Kalshi's)
            if type(ticker) is str:
                self.market[ticker] = m
        return m

    # -- snapshot batches -------------------------------------------------------------------
    def batches(self) -> Iterator[pa.Table]:
        """Filtered snapshot rows in recorded order, in tables of about ``batch_rows``."""
        f = self.f
        for path in cat.files(self.root, "snapshots", f.since_ms, f.until_ms):
            try:
                version = cat.file_version(pq.read_schema(path))  # (an older file: read as written, upgraded)
                pf = pq.ParquetFile(path, read_dictionary=cat.file_columns("snapshots", ["ticker"], version))
                recv_name = cat.file_columns("snapshots", ["recv_ts"], version)[0]
                recv = recv_name in pf.schema_arrow.names  # (files written before it have none)
                columns = cat.file_columns("snapshots", SNAPSHOT_COLUMNS + ["recv_ts"] * recv, version)
                it = pf.iter_batches(batch_size=self.batch_rows, columns=columns)
                for b in it:
                    t = cat.upgrade("snapshots", pa.Table.from_batches([b]), version)
                    t = _tick_clock(t.select(SNAPSHOT_COLUMNS), t.column("recv_ts") if recv else None)
                    if [f.type for f in t.schema] != READ_TYPES:
                        t = t.cast(READ_SCHEMA)  # a foreign file's types; ours are read as written
                    else:
                        t = t.replace_schema_metadata(None).cast(READ_SCHEMA) if t.schema != READ_SCHEMA else t
                    mask = None
                    if f.since_ms is not None:
                        mask = pc.greater_equal(t.column("ts"), f.since_ms)
                    if f.until_ms is not None:
                        m2 = pc.less_equal(t.column("ts"), f.until_ms)
                        mask = m2 if mask is None else pc.and_(mask, m2)
                    if self.allowed is not None:
                        m3 = pc.is_in(
                            pc.cast(t.column("ticker"), pa.string()),
                            value_set=pa.array(sorted(self.allowed), pa.string()),
                        )
                        mask = m3 if mask is None else pc.and_(mask, m3)
                    if mask is not None:
                        t = t.filter(pc.fill_null(mask, False))
                    if t.num_rows:
                        yield t
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError, KeyError) as e:
                raise KakashiError(f"catalog file {path} is unreadable: {e}") from None

    def chunks(self) -> Iterator[pa.Table]:
        """Tables holding whole ticks: rows without a ts or out of time order are set aside
        (rejected with their reason at the next tick), the rest in nondecreasing ts. A tick cut
        by a batch edge is joined up in a small table of its own (no batch is copied whole)."""
        carry: pa.Table | None = None
        for t in self._ordered():
            ts = t.column("ts").combine_chunks().to_numpy()
            if carry is not None:
                k = int(np.searchsorted(ts, carry.column("ts")[0].as_py(), side="right"))
                if k:
                    carry = pa.concat_tables([carry, t.slice(0, k)]).unify_dictionaries().combine_chunks()
                    t, ts = t.slice(k), ts[k:]
                if not t.num_rows:
                    continue  # the whole batch is that one tick: it may go on in the next
                yield carry
                carry = None
            cut = int(np.searchsorted(ts, ts[-1], side="left"))
            if cut:
                yield t.slice(0, cut)
            carry = t.slice(cut)
        if carry is not None and carry.num_rows:
            yield carry

    def _ordered(self) -> Iterator[pa.Table]:
        for t in self.batches():
            t = self._order(t)
            if t.num_rows:
                yield t
        self.guard.finish()  # the end of the catalog confirms what is held: nothing after says otherwise
        rest = [x for h in self._holding for x in h.tables]
        self._holding = []
        if rest:
            yield _joined(rest)

    def _order(self, t: pa.Table) -> pa.Table:
        """The rows of a batch to play, in recorded order and nondecreasing ``ts`` (rows an
        earlier batch held, now confirmed, first); rows without a time, out of time order, or
        dated ahead of the clock are set aside with their reason (``pending_rejects``)."""
        ts_col = t.column("ts")
        ts, null = _ints(ts_col.combine_chunks() if isinstance(ts_col, pa.ChunkedArray) else ts_col, 0)
        n = len(ts)
        g = self.guard
        bad = null | (ts < MIN_TS) | (ts >= MAX_TS)  # no time: rejected whatever the clock
        keep = ~bad
        late: list[tuple[int, int]] = []  # (row, the clock it is behind)
        released: list[pa.Table] = []  # rows of earlier batches the guard held, now confirmed
        refuted: list[tuple[int | pa.Table, int, int]] = []  # (row or held table, its ts, the next ts)
        i = 0
        while i < n:
            if not g.held and g.current is not None:  # the usual case, whole columns at a time
                clock = g.current[0]
                v = np.where(bad[i:], clock, ts[i:])  # (a row without a time moves nothing)
                runmax = np.maximum.accumulate(v)
                prev = np.empty_like(runmax)
                prev[0] = clock
                np.maximum(runmax[:-1], clock, out=prev[1:])
                ok = keep[i:]
                jumps = np.flatnonzero(ok & (v - prev > AHEAD_MS))
                m = int(jumps[0]) if len(jumps) else n - i
                behind = np.flatnonzero(ok[:m] & (v[:m] < prev[:m]))
                if len(behind):
                    keep[i + behind] = False
                    late.extend(zip((i + behind).tolist(), prev[behind].tolist()))
                if m and runmax[m - 1] > clock:
                    g.current = (int(runmax[m - 1]), _PLAYED)
                i += m
                if i == n:
                    break
            if bad[i]:  # (rejected below)
                i += 1
                continue
            # one row at a time while the guard holds a jump (or before there is a clock)
            tsv = int(ts[i])
            tick = g.place(tsv, _Held)
            g.done.clear()
            for held_ts, h, at in g.refuted:
                h.refuted = True
                refuted.extend((x, held_ts, at) for x in (*h.tables, *h.rows))
            g.refuted.clear()
            if tick is None:
                keep[i] = False
                late.append((i, int(g.clock if g.clock is not None else tsv)))
            elif g.is_held(tick):
                keep[i] = False
                tick.rows.append(i)
                if not self._holding or self._holding[-1] is not tick:
                    self._holding.append(tick)
            if not g.held and self._holding:  # settled: what was held is played (or was refuted)
                for h in self._holding:
                    if not h.refuted:
                        released.extend(h.tables)
                        keep[h.rows] = True
                self._holding = []
            i += 1
        for h in self._holding:  # still held at the batch's end: kept aside until it is settled
            if h.rows:
                h.tables.append(t.take(h.rows))
                h.rows = []
        rejects: list[tuple[int | pa.Table, str]] = [
            (
                int(r),
                "snapshot record without an integer ts" if null[r] else f"snapshot record {ts_problem(int(ts[r]))}",
            )
            for r in np.flatnonzero(bad).tolist()
        ]
        rejects += [(r, f"snapshot out of time order ({int(ts[r])} < {c})") for r, c in late]
        rejects += [
            (x, f"snapshot dated ahead of the catalog's clock (ts {held_ts}; the next row is at {at})")
            for x, held_ts, at in refuted
        ]
        for x, reason in rejects:
            for row in _ticker_ts(t, x):
                self.pending_rejects.append((reason, {"type": "snapshot", **row}))
        if not keep.all():
            t = t.filter(pa.array(keep))
        return _joined([*released, t]) if released else t

    # -- ticks --------------------------------------------------------------------------------
    def _events_until(self, hi: int | None) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
        ms, es, ss, hs = [], [], [], []
        while self._hi < len(self.shard_events) and (hi is None or self.shard_events[self._hi]["ts"] <= hi):
            hs.append(self.shard_events[self._hi])
            self._hi += 1
        while self._si < len(self.seen_events) and (hi is None or self.seen_events[self._si]["ts"] <= hi):
            ss.append(self.seen_events[self._si])
            self._si += 1
        while self._mi < len(self.market_events) and (hi is None or self.market_events[self._mi]["ts"] <= hi):
            ms.append(self.market_events[self._mi])
            self._mi += 1
        while self._ei < len(self.estimate_events) and (hi is None or self.estimate_events[self._ei]["ts"] <= hi):
            es.append(self.estimate_events[self._ei])
            self._ei += 1
        return ms, es, ss, hs

    def ticks(self, ts: np.ndarray, final: bool) -> Iterator[TickParts]:
        """The ticks of one chunk (rows sorted by ts), merged with the events up to its last ts
        (all remaining events when ``final``)."""
        hi = int(ts[-1]) if len(ts) else None
        ms, es, ss, hs = self._events_until(None if final else hi)
        uniq = np.unique(ts) if len(ts) else np.zeros(0, np.int64)
        ev_ts = sorted({m["ts"] for m in ms} | {e["ts"] for e in es} | {r["ts"] for r in ss} | {r["ts"] for r in hs})
        all_ts = np.union1d(uniq, np.array(ev_ts, dtype=np.int64)) if ev_ts else uniq
        bounds_lo = np.searchsorted(ts, all_ts, side="left")
        bounds_hi = np.searchsorted(ts, all_ts, side="right")
        mi = ei = si = hi_ = 0
        for k, t in enumerate(all_ts.tolist()):
            halted = None
            if self.first_tick:
                halted = self.initial_shards
            while hi_ < len(hs) and hs[hi_]["ts"] == t:
                halted = frozenset(hs[hi_]["halted"] or ())
                hi_ += 1
            mk: list[dict[str, Any]] = []
            while mi < len(ms) and ms[mi]["ts"] == t:
                mk.append(_market_dict(ms[mi]))  # takes effect when the tick is played (enter)
                mi += 1
            ek: list[Estimate | None] = []
            if self.first_tick and self.initial_estimates:
                ek.extend(self._estimate(e, t) for e in self.initial_estimates.values())
            self.first_tick = False
            while ei < len(es) and es[ei]["ts"] == t:
                ek.append(self._estimate(es[ei], t))
                ei += 1
            sk: list[str] = []
            while si < len(ss) and ss[si]["ts"] == t:
                sk.extend(ss[si]["tickers"])
                si += 1
            rej, self.pending_rejects = self.pending_rejects, []
            ok = [e for e in ek if e is not None]
            yield TickParts(t, mk, ok, int(bounds_lo[k]), int(bounds_hi[k]), rej, halted_shards=halted, same=sk)

    def enter(self, parts: TickParts) -> None:
        """Play a tick's market changes: its rows carry the metadata as of this tick."""
        for md in parts.markets:
            self.market[md["ticker"]] = md

    def _estimate(self, e: dict[str, Any], ts: int) -> Estimate | None:
        """A recorded belief (its exact value) as the estimator hands it over; one the row check
        refuses (no number, outside [0, 1]: a foreign file's) is rejected with its reason."""
        try:
            return Estimate(ticker=e["ticker"], p_hat=e["p_hat"], source=e["source"], ts=ts)
        except ValidationError as err:
            why = f"estimate {rejection_reason(err)}"
        except Exception as err:  # noqa: BLE001 - a bad belief in a foreign file is rejected, not fatal
            why = f"estimate not readable ({err.__class__.__name__})"
        self.pending_rejects.append((why, _jsonable({"type": "estimate", **e})))
        return None


# -- the tape ----------------------------------------------------------------------------------
class TapeReader:
    """The catalog's ``book_deltas`` and ``trades`` read in recorded order as the replay's clock
    moves (``until``), turned into the held markets' tape by the live feed's rule
    (adapters/tape.py). Files are read one at a time; a catalog without them costs nothing.
    Prints backfilled from Kalshi's history (source ``backfill``) were never seen live: left out."""

    def __init__(self, root: Any, f: Filters, allowed: set[str] | None) -> None:
        self.builder = TapeBuilder()
        self.root, self.f, self.allowed = root, f, allowed
        self._books = self._read("book_deltas", self._book_row)
        self._prints = self._read("trades", self._print_row)
        self._book_head = next(self._books, None)
        self._print_head = next(self._prints, None)

    def _read(self, table: str, make: Callable[[dict[str, Any]], Any]) -> Iterator[Any]:
        f, allowed = self.f, self.allowed
        for path in cat.files(self.root, table, f.since_ms, f.until_ms):
            try:
                rows = cat.read_file(path, table).to_pylist()
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError, KeyError) as e:
                raise KakashiError(f"catalog file {path} is unreadable: {e}") from None
            for r in rows:
                if allowed is not None and r.get("ticker") not in allowed:
                    continue
                row = make(r)
                if row is None:
                    continue
                if (f.since_ms is not None and row[0] < f.since_ms) or (f.until_ms is not None and row[0] > f.until_ms):
                    continue
                yield row

    @staticmethod
    def _book_row(r: dict[str, Any]) -> BookRow | None:
        if type(r.get("ts")) is not int or type(r.get("ticker")) is not str:
            return None
        return BookRow(
            r["ts"], r["ticker"], r.get("side"), r.get("price_cc"), r.get("delta_hundredths"), r.get("seq"),
            r.get("sid"), r.get("kind") or "", r.get("exchange_ts"),
        )  # fmt: skip

    @staticmethod
    def _print_row(r: dict[str, Any]) -> PrintRow | None:
        ts, recv = r.get("ts"), r.get("recv_ts")
        if r.get("source") == BACKFILL or type(ts) is not int or type(r.get("ticker")) is not str:
            return None
        if type(r.get("yes_price_cc")) is not int or type(r.get("count_hundredths")) is not int:
            return None
        return PrintRow(
            recv if type(recv) is int else ts, r["ticker"], r["yes_price_cc"], r["count_hundredths"],
            r.get("taker_side"), r.get("taker_book_side"), r.get("is_block_trade"), ts,
        )  # fmt: skip

    def until(self, ts: int, want: set[str]) -> list[TapeEvent]:
        """The tape of ``want``'s markets from the rows received up to ``ts`` not read yet (every
        market's book kept, whatever ``want`` is)."""
        rows: list[BookRow] = []
        while self._book_head is not None and self._book_head[0] <= ts:
            rows.append(self._book_head)
            self._book_head = next(self._books, None)
        prints: list[PrintRow] = []
        while self._print_head is not None and self._print_head[0] <= ts:
            prints.append(self._print_head)
            self._print_head = next(self._prints, None)
        if not rows and not prints:
            return []
        return self.builder.tape(rows, prints, want)


# -- the source --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordedRun:
    """A recording run's start (the catalog's ``runs``, version 8): the engine's clock then (a new
    database's deposit is dated by it), its source and settings (config key -> TOML value text)."""

    ts: int
    source: str
    settings: dict[str, str]


@dataclass(frozen=True)
class RunsInData:
    """The recorded runs whose data a replay plays, in time order: the run its first row belongs
    to (the latest that started at or before it), then those that started later in the window."""

    runs: list[RecordedRun]
    start_ms: int | None  # the first run's start, where the replay's clock starts (None: its first row)
    first_row_ms: int | None  # the replay's first row (its first tick)
    #: the first run, when it started before ``--since``: the replay starts at its first row instead
    before_window: RecordedRun | None = None


def runs_in(tl: Timeline, first_ms: int | None) -> RunsInData:
    """The runs of ``tl``'s window whose data begins at ``first_ms`` (``RunsInData``)."""
    if first_ms is None:
        return RunsInData([], None, None)
    upto = tl.f.until_ms
    covering = [r for r in tl.runs if r.ts <= first_ms]
    later = [r for r in tl.runs if r.ts > first_ms and (upto is None or r.ts <= upto)]
    first = covering[-1] if covering else None
    runs = ([first] if first is not None else []) + later
    if first is not None and tl.f.since_ms is not None and first.ts < tl.f.since_ms:
        return RunsInData(runs, None, first_ms, first)
    return RunsInData(runs, None if first is None else first.ts, first_ms)


@dataclass
class ReplayStats:
    ticks: int = 0
    snapshots: int = 0  # valid snapshot rows read
    rows_decided: int = 0  # snapshot rows handed to the engine's per-row code
    rejected: int = 0
    commands: int = 0  # the operator's recorded commands handed to the engine


class CatalogSource(Source, Estimator):
    """A catalog played as the exchange (and as the estimator of its recorded beliefs).

    Every tick of the timeline is one engine tick. ``every_row=True`` hands the engine every
    snapshot as the raw row a source would send (the reference path). Otherwise each batch is
    checked vectorised and a tick hands the engine only the rows where something can happen:
    a market with a belief whose best ask could clear the edge threshold net of the smallest
    possible fee (``mode`` take or both), a market with a belief and a two-sided book a post
    could rest on (``mode`` post or both: its belief clears the threshold at some price above
    zero with no fee, a maker's least), a market with an open position or a live paper order
    (``watch_for``, handed over by the engine: ``watch``),
    its market changes (lifecycle, settlement), plus the rows the check rejected (with the row
    check's reason) and each market's last row of a batch (its latest quote). The rest is
    counted, not replayed: their decisions would be none.
    """

    name = "replay"

    def __init__(
        self,
        root: str | os.PathLike[str],
        filters: Filters | None = None,
        *,
        every_row: bool = False,
        edge_threshold: Decimal = Decimal("0.03"),
        fee_multipliers: Iterable[Decimal] = (),
        start_ms: int | None = None,
        mode: str = "take",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        self.tl = Timeline(root, filters)
        self.every_row = every_row
        self.decide_with(edge_threshold, fee_multipliers, mode)
        self.watch_for: Callable[[], Iterable[str]] = lambda: ()  # the markets held (the engine's)
        self.stats = ReplayStats()
        first = _first_ts(self.tl)
        #: the recorded runs this replay plays (catalog version 8): the clock starts at the first's
        #: start, as the run's did (its deposit, and so every chain hash), unless ``start_ms`` is given
        self.runs = runs_in(self.tl, first)
        self._now = start_ms or self.runs.start_ms or first or 1
        self._ticks = self._play()
        self._next: tuple[int, list[RawRow], list[Estimate], frozenset[int] | None, list[str]] | None = None
        self._estimates: list[Estimate] = []
        self.done = False
        # the paper orders' inputs (issue #23): the recorded round trip ("auto" latency), polled books
        # and the tape of the held markets (the catalog's trades and book_deltas, by receive time)
        self._round_trip = self.tl.initial_round_trip
        self._ctx_at = 0
        self._tape = TapeReader(self.tl.root, self.tl.f, self.tl.allowed)

    def decide_with(self, edge_threshold: Decimal, fee_multipliers: Iterable[Decimal], mode: str) -> None:
        """The pre-filter's settings (``[strategy]``'s threshold and mode, the configured fees), before
        the first fetch (``kakashi replay --recorded-settings`` sets the recorded run's)."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        self.threshold = edge_threshold
        self.mode = mode  # [strategy] mode: which of the pre-filter's two rules decide (take, post)
        #: no market here pays less than these fee terms (the pre-filter's fee)
        self.fee_floor = fee_ratio(FeeTerms(self.tl.fee_floor(list(fee_multipliers))), 0)

    # -- Source ------------------------------------------------------------------------------
    def watch(self, held: Callable[[], Iterable[str]]) -> None:
        self.watch_for = held

    def now_ms(self) -> int:
        return self._now

    def has_next(self) -> bool:
        if self._next is None and not self.done:
            self._next = next(self._ticks, None)
            self.done = self._next is None
        return self._next is not None

    def fetch(self) -> FetchBatch:
        if not self.has_next():
            self._estimates = []
            return FetchBatch()
        assert self._next is not None
        self._now, rows, self._estimates, halted, same = self._next
        self._next = None
        polled: set[str] = set()
        ctx = self.tl.fill_context
        while self._ctx_at < len(ctx) and ctx[self._ctx_at]["ts"] <= self._now:
            r = ctx[self._ctx_at]
            self._ctx_at += 1
            if r["round_trip_ms"] is not None:
                self._round_trip = r["round_trip_ms"]
            if r["ts"] == self._now:
                polled.update(r["polled"] or ())
        want = set(self.watch_for())
        tape = self._tape.until(self._now, want)
        commands = self.tl.commands_before(self._now)  # applied at the top of this tick (rules.md, "Replay")
        self.stats.commands += len(commands)
        return FetchBatch(
            rows=rows, halted_shards=halted, same=same, tape=tape, polled=polled & want, commands=commands
        )

    def round_trip_ms(self) -> int | None:
        """The round trip the recorded run measured as of this tick (None: none recorded)."""
        return self._round_trip

    def trailing_commands(self) -> list[CommandRecord]:
        """The recorded commands applied after the last tick played (a flatten before a quit):
        the replay applies them once the catalog is played out (``TradingService.apply_recorded``)."""
        out = self.tl.commands_before(None)
        self.stats.commands += len(out)
        return out

    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]:  # the estimator of the tick
        out, self._estimates = self._estimates, []
        return out

    def close(self) -> None:
        pass

    # -- the timeline, tick by tick ------------------------------------------------------------
    def _play(self) -> Iterator[tuple[int, list[RawRow], list[Estimate], frozenset[int] | None, list[str]]]:
        tl, st = self.tl, self.stats
        code_of: dict[str, int] = {}
        # market code -> (highest YES ask, highest NO ask) a take can clear at on its belief as of
        # the tick being played (strategy.clearing_asks_cc), then the same at no fee (the highest
        # post prices that can clear: a maker pays at least nothing); -1: no belief, nothing clears
        belief = np.full((64, 4), -1, dtype=np.int64)
        held_was: set[str] = set()
        held_mask = np.zeros(1, dtype=bool)  # market code -> held (as of held_was)

        def gcode(t: str) -> int:
            nonlocal belief
            c = code_of.get(t)
            if c is None:
                c = code_of[t] = len(code_of)
                if c >= len(belief):
                    belief = np.concatenate([belief, np.full((len(belief), 4), -1, dtype=np.int64)])
            return c

        for chunk in _with_final(tl.chunks()):
            if chunk is None:
                for parts in list(tl.ticks(np.zeros(0, np.int64), final=True)):
                    st.ticks += 1
                    yield parts.ts, _raw_rows(tl, parts, None, []), parts.estimates, parts.halted_shards, parts.same
                return
            if self.every_row:
                checked = _rows_only(chunk)
            else:
                checked = check_batch(chunk, None)
            ts = checked.ts
            ticks = list(tl.ticks(ts, final=False))
            if self.every_row:
                for parts in ticks:
                    st.ticks += 1
                    st.rows_decided += parts.hi - parts.lo
                    rows = _raw_rows(tl, parts, checked, list(range(parts.lo, parts.hi)))
                    yield parts.ts, rows, parts.estimates, parts.halted_shards, parts.same
                continue
            thr, fee = self.threshold, self.fee_floor
            clears = clearing_asks_cc
            events = [
                (gcode(e.ticker), parts.ts, clears(e.p_hat, thr, fee) + clears(e.p_hat, thr, NO_FEE))
                for parts in ticks
                for e in parts.estimates
            ]
            g = np.array([gcode(t) if type(t) is str else -1 for t in checked.names], dtype=np.int64)
            rows_g = g[checked.codes]
            valid = checked.valid
            bound = _beliefs_as_of(belief, rows_g, ts, events)
            for c, _t, b in events:
                belief[c] = b
            send = np.zeros(len(valid), dtype=bool)
            if self.mode != "post":
                # a take: the best ask of either side could clear the threshold net of the smallest
                # fee any market here pays: at or under its belief's bound (a superset of what decides)
                send |= valid & (
                    (~checked.ask_null & (checked.ask <= bound[:, 0]))
                    | (~checked.bid_null & (ONE_CC - checked.bid <= bound[:, 1]))
                )
            if self.mode != "take":
                # a post (strategy.post_price): a side with a bid and an ask (a NO bid is a YES ask
                # mirrored: both need both), and a price above zero at which its belief clears
                send |= valid & ~checked.ask_null & ~checked.bid_null & ((bound[:, 2] >= 1) | (bound[:, 3] >= 1))
            send |= ~valid  # rejected rows go to the engine as rejected, with the row check's reason
            if tl.whole_tickers:  # a market decided at its kept quote later, or on the operator's p̂: all of it
                named = np.array([type(t) is str and t in tl.whole_tickers for t in checked.names], dtype=bool)
                if named.any():
                    send |= named[checked.codes]
            ok = np.flatnonzero(valid)
            if len(ok):  # each market's last row in this batch: its latest quote is kept
                _u, first = np.unique(rows_g[ok][::-1], return_index=True)
                send[ok[::-1][first]] = True
            n_valid_before = np.concatenate(([0], np.cumsum(valid)))
            for parts in ticks:
                st.ticks += 1
                lo, hi = parts.lo, parts.hi
                idx: list[int] = []
                if hi > lo:
                    hit = send[lo:hi]
                    held = self.watch_for()  # positions as of the tick before this one
                    if held:
                        if held != held_was or len(held_mask) < len(code_of) + 1:
                            held_was = set(held)
                            held_mask = np.zeros(len(code_of) + 1, dtype=bool)  # [-1]: rows without a ticker
                            held_mask[[code_of[t] for t in held if t in code_of]] = True
                        hit = hit | (valid[lo:hi] & held_mask[rows_g[lo:hi]])
                    idx = (np.flatnonzero(hit) + lo).tolist()
                    n_valid = int(n_valid_before[hi] - n_valid_before[lo])
                    st.snapshots += n_valid
                    st.rejected += (hi - lo) - n_valid
                st.rejected += len(parts.rejected)
                good = [i for i in idx if valid[i]]
                st.rows_decided += len(good)
                rows = _raw_rows(tl, parts, checked, good)
                rows += [
                    RawRow(market={}, snapshot=None, payload=_jsonable(checked.raw(i)), reason=checked.reasons[i])
                    for i in idx
                    if not valid[i]
                ]
                yield parts.ts, rows, parts.estimates, parts.halted_shards, parts.same


def _first_ts(tl: Timeline) -> int | None:
    cand = []
    for path in cat.files(tl.root, "snapshots", tl.f.since_ms, tl.f.until_ms):
        try:
            schema = pq.read_schema(path)
            version = cat.file_version(schema)
            ts_name, recv_name = cat.file_columns("snapshots", ["ts", "recv_ts"], version)
            recv = recv_name in schema.names
            for name in (ts_name, recv_name) if recv else (ts_name,):
                i = schema.get_field_index(name)
                if i >= 0 and not pa.types.is_integer(schema.field(i).type):  # (as `catalog info` says)
                    raise pa.ArrowInvalid(f"its {name} is {schema.field(i).type}, not integer epoch ms")
            t = pq.read_table(path, columns=[ts_name, recv_name] if recv else [ts_name])
            t = cat.upgrade("snapshots", t, version)
            col = _tick_clock(t, t.column("recv_ts") if recv else None).column("ts")
            lo = max(MIN_TS, tl.f.since_ms or 0)  # (a time outside 2000..2100 is no clock: rejected)
            col = pc.filter(col, pc.and_(pc.greater_equal(col, lo), pc.less(col, MAX_TS)))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError) as e:
            raise KakashiError(f"catalog file {path} is unreadable: {e}") from None
        if len(col) and col.null_count < len(col):
            cand.append(pc.min(col).as_py())
            break
    if tl.market_events:
        cand.append(tl.market_events[0]["ts"])
    if tl.estimate_events:
        cand.append(tl.estimate_events[0]["ts"])
    if tl.shard_events:
        cand.append(tl.shard_events[0]["ts"])
    return min(cand) if cand else None


def _raw_rows(tl: Timeline, parts: TickParts, checked: Checked | None, rows: list[int]) -> list[RawRow]:
    tl.enter(parts)
    out = [RawRow(market=m, snapshot=None, payload={"type": "market", **m}) for m in parts.markets]
    if checked is not None and rows:
        # A plainly valid row within the tick's clock goes over as its Quote alone (its raw form
        # is made only if the engine rejects it); the others as the raw row the engine checks.
        latest = parts.ts + FUTURE_SKEW_MS
        quotes = checked.quotes(rows)
        need = [i for i, q in zip(rows, quotes) if q is None or q.ts > latest]
        raws = dict(zip(need, checked.raws(need)))
        market_for, names, codes, raw_of = tl.market_for, checked.names, checked.codes, checked.raw
        for i, q in zip(rows, quotes):
            raw = raws.get(i)
            if raw is None and q is not None:  # (positional: RawRow's fields in order, one a row)
                out.append(RawRow(market_for(q.ticker), None, None, None, q, partial(raw_of, i)))
            else:
                assert raw is not None
                out.append(RawRow(market=market_for(names[codes[i]]), snapshot=raw, payload=raw, quote=q))
    out += [RawRow(market={}, snapshot=None, payload=p, reason=r) for r, p in parts.rejected]
    return out


def _rows_only(chunk: pa.Table) -> Checked:
    """The columns as numpy, every row left to the row check (nothing judged here)."""
    n = chunk.num_rows
    ts, _ = _ints(chunk.column("ts").combine_chunks(), 0)
    quote_ts, _ = _ints(chunk.column("quote_ts").combine_chunks(), 0)
    codes, names = _ticker_codes(chunk.column("ticker"))
    cols = [
        _ints(chunk.column(c).combine_chunks(), d)
        for c, d in (("yes_bid_cc", -1), ("yes_ask_cc", -1), ("last_cc", -1), ("volume_hundredths", 0))
    ]
    none = np.zeros(n, dtype=bool)
    return Checked(
        n,
        ts,
        codes,
        names,
        *cols[0],
        *cols[1],
        *cols[2],
        *cols[3],
        _levels(chunk.column("yes_bids"), n),
        _levels(chunk.column("no_bids"), n),
        none,
        none,
        quote_ts=quote_ts,
    )


def _beliefs_as_of(
    belief: np.ndarray, rows_g: np.ndarray, ts: np.ndarray, events: Sequence[tuple[int, int, tuple[int, ...]]]
) -> np.ndarray:
    """Each row's belief at its tick (as its bounds, one row of ``belief``): the state before
    the chunk, then the chunk's estimates (the last one at or before the row's ts, for its
    market); -1s for a row without a market."""
    safe = np.where(rows_g >= 0, rows_g, 0)
    p = np.where((rows_g >= 0)[:, None], belief[safe], -1)
    if not events:
        return p
    ec = np.array([e[0] for e in events], dtype=np.int64)
    et = np.array([e[1] for e in events], dtype=np.int64)
    ep = np.array([e[2] for e in events], dtype=np.int64).reshape(len(events), belief.shape[1])
    order = np.lexsort((np.arange(len(events)), et, ec))  # by market, time, then arrival
    ec, et, ep = ec[order], et[order], ep[order]
    k = np.int64(1) << np.int64(42)
    j = np.searchsorted(ec * k + np.clip(et, 0, k - 1), safe * k + np.clip(ts, 0, k - 1), side="right") - 1
    jj = np.maximum(j, 0)
    hit = (j >= 0) & (ec[jj] == rows_g)
    return np.where(hit[:, None], ep[jj], p)


def _with_final(chunks: Iterator[pa.Table]) -> Iterator[pa.Table | None]:
    yield from chunks
    yield None


def _jsonable(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in raw.items()}


# -- running it (tests, benchmarks; the CLI goes through the trading service) ------------------------
EngineFactory = Callable[[Any, Any], Any]  # (source, estimators) -> Engine


def replay_catalog(
    root: str | os.PathLike[str],
    make_engine: EngineFactory,
    filters: Filters | None = None,
    *,
    every_row: bool = False,
    start_ms: int | None = None,
    edge_threshold: Decimal = Decimal("0.03"),
    fee_multipliers: Iterable[Decimal] = (Decimal("0.07"),),
    mode: str = "take",
) -> tuple[Any, ReplayStats]:
    """Play a catalog through an engine's tick until it ends: (engine, stats)."""
    source = CatalogSource(
        root,
        filters,
        every_row=every_row,
        edge_threshold=edge_threshold,
        fee_multipliers=fee_multipliers,
        start_ms=start_ms,
        mode=mode,
    )
    engine = make_engine(source, [source])  # (the engine hands the source its held markets)
    while source.has_next():
        engine.tick()
    with engine.store.atomic():  # what the operator did after the last tick
        engine.apply_recorded(source.trailing_commands())
    return engine, source.stats
