"""Replay recorded market data through the same engine tick as the live loop.

Input is the JSONL format of data_schema.md (``start``, ``market``, ``snapshot``,
``estimate``, ``settlement`` records in time order; records sharing a ``ts`` are one
tick; a snapshot's tick is its ``recv_ts``, when Kakashi fetched it, if it has one: its ``ts``
stays the quote's own time, so the risk gate sees how old it was), or the tables of an
earlier run's database. The replay source plays the part of
the exchange and its clock; the replay estimator hands the engine the estimates recorded
for each tick. Nothing else differs from a live run.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from kakashi_tui.adapters.beliefs import check_ticker
from kakashi_tui.adapters.crashlog import create_private, sqlite_files
from kakashi_tui.adapters.queries import connect_readonly, initial_deposit, market_data_rows, market_rows
from kakashi_tui.adapters.source import Estimator, FetchBatch, RawRow, Source
from kakashi_tui.adapters.store.rows import real_to_price
from kakashi_tui.adapters.userfiles import kind_of, open_regular
from kakashi_tui.core.errors import ConfigError
from kakashi_tui.core.models import GRID, Estimate, qty_text, rejection_reason
from kakashi_tui.core.timeguard import AHEAD_MS as AHEAD_MS  # (the time rule lives in core; re-exported)
from kakashi_tui.core.timeguard import AHEAD_TICKS as AHEAD_TICKS
from kakashi_tui.core.timeguard import MAX_TS as MAX_TS
from kakashi_tui.core.timeguard import MIN_TS as MIN_TS
from kakashi_tui.core.timeguard import ClockGuard
from kakashi_tui.core.timeguard import ts_problem as ts_problem

RECORD_TYPES = ("start", "market", "snapshot", "estimate", "settlement")

# Bounds every record meets before anything of it reaches the engine or SQLite (times: the one
# rule of core/timeguard.py, shared with the catalog's writer and replay).
MAX_COUNT = 2**63 - 1  # a volume or quantity SQLite can hold as an integer
MAX_LEVELS = 10_000  # book levels per side
MAX_TEXT = 1_000  # characters in a title, series or event ticker
MAX_SOURCE = 100  # characters in an estimate's source
MAX_LINE_BYTES = 1 << 20  # one record
MAX_DEPTH = 32  # JSON nesting of one record (a book level is 4 down); orjson alone allows 1,024


@dataclass
class ReplayTick:
    ts: int
    rows: list[RawRow] = field(default_factory=list)
    estimates: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[str, Any]] = field(default_factory=list)


def _dec(v: Any) -> Any:
    if v is None or isinstance(v, Decimal):
        return v
    try:
        return Decimal(str(v))
    except InvalidOperation:
        return v


def _count_problem(name: str, v: Any) -> str | None:
    """A count (volume, quantity) SQLite cannot hold; other shapes are left to validation."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, str):
        try:
            n: Any = Decimal(v.strip())
        except (InvalidOperation, ValueError):
            return None
        if not n.is_finite():
            return f"{name} {v[:40]!r} is not a finite count"
    elif isinstance(v, (int, float)):
        n = v
    else:
        return None
    if not (0 <= n <= MAX_COUNT):
        return f"{name} {str(v)[:40]} is outside 0..2^63-1"
    return None


def _text_problem(name: str, v: Any, limit: int) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        return f"{name} is not text"
    if len(v) > limit:
        return f"{name} longer than {limit} characters"
    if not v.isprintable():
        return f"{name} holds unprintable characters"
    return None


def _book_problem(book: Any) -> str | None:
    """A book side too long or a level quantity SQLite cannot hold (the rest is validation's)."""
    for side in book.values() if isinstance(book, dict) else (book,):
        if type(side) not in (list, tuple):
            continue
        if len(side) > MAX_LEVELS:
            return f"snapshot book side with more than {MAX_LEVELS} levels"
        for lv in side:
            if type(lv) in (list, tuple) and len(lv) == 2:
                q = lv[1]
                if type(q) is int and 0 <= q <= MAX_COUNT:  # the usual case, without a call
                    continue
                if why := _count_problem("quantity", q):
                    return f"snapshot book level {why}"
    return None


def _record_problem(kind: str, rec: dict[str, Any], good_tickers: set[str]) -> str | None:
    """Why a snapshot, estimate or settlement record is refused before it is grouped (None: it
    goes on; prices, results and the rest are validation's to judge, as for any source).
    ``good_tickers`` remembers tickers already checked (most records repeat one)."""
    t = rec.get("ticker") or ""
    if type(t) is not str:
        return f"{kind} record with a ticker that is not text"
    if t not in good_tickers:
        if t and (why := check_ticker(t)):
            return f"{kind} record: {why}"
        good_tickers.add(t)
    if kind == "snapshot":
        v = rec.get("volume")
        if type(v) is not int or not 0 <= v <= MAX_COUNT:
            if why := _count_problem("volume", v):
                return f"snapshot {why}"
        book = rec.get("book")
        if book:
            return _book_problem(book)
    elif kind == "estimate":
        why = _text_problem("source", rec.get("source"), MAX_SOURCE)
        if why:
            return f"estimate {why}"
    return None


def _market_problem(rec: dict[str, Any]) -> str | None:
    t = rec.get("ticker")
    if not isinstance(t, str) or not t:
        return "market record without a ticker"
    if why := check_ticker(t):
        return f"market record: {why}"
    for k in ("open_ts", "close_ts"):
        v = rec.get(k)
        if v is not None and (why := ts_problem(v)):
            return f"market record {k}: {'not an integer epoch ms' if why.startswith('without') else why}"
    for k in ("title", "series", "event_ticker"):
        if why := _text_problem(k, rec.get(k), MAX_TEXT):
            return f"market record {why}"
    if (ex := rec.get("event_exclusive")) is not None and type(ex) is not bool:  # its event's mutually_exclusive
        return "market record event_exclusive: not true, false or null"
    return None


def group_ticks(records: Iterable[tuple[int, dict[str, Any] | None, str | None]]) -> Iterator[ReplayTick | int]:
    """Records (line number, record or None, parse error) -> ticks; every record is placed in a
    tick or rejected into one with its line number and reason.

    Yields an ``int`` first when a ``start`` record gives the clock's starting point.
    """
    markets: dict[str, dict[str, Any]] = {}
    metas: dict[str, dict[str, Any]] = {}  # the raw market row each ticker's snapshots carry
    # the file's clock: ticks in time order, a tick dated ahead held until later records confirm it
    guard: ClockGuard[ReplayTick] = ClockGuard()
    held_records: dict[int, list[tuple[int, dict[str, Any]]]] = {}  # a held tick's records, by its ts
    start: tuple[int, int, dict[str, Any]] | None = None  # (line, ts, record) until the first tick
    started = False
    pending_rejects: list[tuple[str, Any]] = []
    good_tickers: set[str] = set()
    for line, rec, error in records:
        if rec is None:
            pending_rejects.append((f"line {line}: {error}", {"line": line}))
            continue
        kind = rec.get("type")
        ts = rec.get("ts")
        if kind == "start":
            why = (
                "start record after the first tick"
                if started
                else "a second start record"
                if start is not None
                else ts_problem(ts)
            )
            if why:
                pending_rejects.append((f"line {line}: {why}", rec))
            else:
                start = (line, ts, rec)
            continue
        if kind == "market":
            why = _market_problem(rec)
            if why:
                pending_rejects.append((f"line {line}: {why}", rec))
                continue
            t = rec["ticker"]
            metas.pop(t, None)
            markets[t] = {
                k: rec.get(k)
                for k in ("ticker", "title", "series", "event_ticker", "open_ts", "close_ts", "event_exclusive")
                if rec.get(k) is not None
            }
            continue
        if kind not in RECORD_TYPES:
            pending_rejects.append((f"line {line}: unknown record type {str(kind)[:40]!r}", rec))
            continue
        why = ts_problem(ts)
        if why:
            pending_rejects.append((f"line {line}: {kind} record {why}", rec))
            continue
        quote_ts = ts
        if kind == "snapshot" and rec.get("recv_ts") is not None:  # the tick that fetched it
            ts = rec["recv_ts"]
            if why := ts_problem(ts):
                why = "not an integer epoch ms" if why.startswith("without") else why.removeprefix("ts ")
                pending_rejects.append((f"line {line}: snapshot record recv_ts {why}", rec))
                continue
        why = _record_problem(kind, rec, good_tickers)
        if why:
            pending_rejects.append((f"line {line}: {why}", rec))
            continue
        if not started:
            started = True
            if start is not None:
                if start[1] <= ts:
                    guard.start = start[1]
                    yield start[1]
                else:
                    pending_rejects.append(
                        (f"line {start[0]}: start record ts {start[1]} is after the first record's ({ts})", start[2])
                    )
        # which tick: the current one, a new one, one held ahead, or none (out of time order)
        tick = guard.place(ts, ReplayTick)
        if guard.refuted:  # the ticks held past ts were dated ahead: their records are rejected
            for held_ts, held, at in guard.refuted:
                for held_line, held_rec in held_records.pop(held_ts, ()):
                    pending_rejects.append(
                        (
                            f"line {held_line}: {held_rec.get('type')} record dated ahead of the "
                            f"file's clock (ts {held_ts}; the next record is at {at})",
                            held_rec,
                        )
                    )
                pending_rejects.extend(held.rejected)
            guard.refuted.clear()
        if guard.done:
            done, guard.done = guard.done, []
            yield from done
        if tick is None:
            pending_rejects.append((f"line {line}: out of time order ({ts} < {guard.clock})", rec))
            continue
        if guard.held:
            if guard.is_held(tick):
                held_records.setdefault(ts, []).append((line, rec))
        elif held_records:
            held_records.clear()
        if pending_rejects:
            tick.rejected.extend(pending_rejects)
            pending_rejects = []
        t = rec.get("ticker") or ""
        meta = metas.get(t)
        if meta is None:  # one dict per market, reused by its snapshots until its metadata changes
            meta = metas[t] = {
                "ticker": t,
                "status": "active",
                **{k: v for k, v in markets.get(t, {}).items() if k != "ticker"},
            }
        if kind == "snapshot":
            # prices and levels go to validation as written ([price, qty] pairs, price strings)
            book = rec.get("book") or {}
            yes, no = (book.get("yes") or [], book.get("no") or []) if isinstance(book, dict) else (book, [])
            snap = {
                "ticker": t,
                "ts": quote_ts,
                "yes_bid": rec.get("yes_bid"),
                "yes_ask": rec.get("yes_ask"),
                "last": rec.get("last"),
                "volume": rec.get("volume") or 0,
                "yes_bids": yes,
                "no_bids": no,
            }
            tick.rows.append(RawRow(market=meta, snapshot=snap, payload=rec))
        elif kind == "estimate":
            try:
                Estimate(ticker=t, p_hat=_dec(rec.get("p_hat")), source=rec.get("source") or "replay", ts=ts)
            except ValidationError as e:
                tick.rejected.append((f"line {line}: estimate {rejection_reason(e)}", rec))
            else:
                tick.estimates.append(rec)
        elif kind == "settlement":
            tick.rows.append(
                RawRow(
                    market={
                        **meta,
                        "status": rec.get("status") or "determined",
                        "result": rec.get("result"),
                        "settlement_value": rec.get("settlement_value"),
                    },
                    snapshot=None,
                    payload=rec,
                )
            )
    if start is not None and not started:  # a start and no tick: the clock's start is all there is
        yield start[1]
    rest = guard.finish()  # the end of the file confirms what is held: nothing after says otherwise
    if rest:
        rest[-1].rejected.extend(pending_rejects)  # before it is yielded
        yield from rest
    elif pending_rejects:  # nothing but bad lines: one tick at the start, so they are kept and counted
        yield ReplayTick(ts=start[1] if start else MIN_TS, rejected=pending_rejects)


UTF8_BOM = b"\xef\xbb\xbf"


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """The records of a JSONL file as (line number, record or None, why not). A file that is
    not text at all (NUL bytes in its first 8 KiB) is refused at once (ConfigError); a UTF-8 byte
    order mark at its start is skipped."""
    try:
        with open_regular(path) as f:  # a pipe or device: refused at once, never waited on
            head = f.read(8192)
    except OSError as e:
        raise ConfigError(f"cannot read replay file {path}: {e.strerror}") from e
    if b"\x00" in head:
        raise ConfigError(f"replay file {path} is binary, not JSONL text")
    return _records(path)


def _records(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    with open_regular(path) as f:
        i = 0
        while True:
            line = f.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            i += 1
            if i == 1:  # a UTF-8 byte order mark (Windows editors write one) is not part of the record
                line = line.removeprefix(UTF8_BOM)
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := f.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass  # skip the rest of the line
                yield i, None, f"line longer than {MAX_LINE_BYTES // 2**20} MiB"
                continue
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                yield i, None, f"malformed JSON ({e.msg})"
                continue
            if not isinstance(rec, dict):
                yield i, None, "record is not a JSON object"
                continue
            deep = line.count(b"[") + line.count(b"{") > MAX_DEPTH and not _shallow(rec)  # (cheap test first)
            if deep:  # Python's own recursion (repr, json.dumps) gives out near 1,000 levels
                yield i, None, f"nested deeper than {MAX_DEPTH} levels"
                continue
            yield i, rec, None


def _shallow(obj: Any) -> bool:
    """No list or object in ``obj`` is more than MAX_DEPTH levels down (walked without recursion)."""
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if d > MAX_DEPTH:
            return False
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values() if isinstance(v, (dict, list)))
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o if isinstance(v, (dict, list)))
    return True


def records_from_db(db: str | Path) -> Iterator[dict[str, Any]]:
    """An earlier run's stored data as replay records, in time order."""
    con = connect_readonly(db)
    try:
        dep = initial_deposit(con)
        if dep:
            yield {"type": "start", "ts": dep[0]}
        meta = {
            t: {
                "type": "market",
                "ticker": t,
                "title": title,
                "series": series,
                "event_ticker": ev,
                "open_ts": o,
                "close_ts": c,
                "event_exclusive": None if ex is None else bool(ex),
            }
            for t, title, series, ev, o, c, ex in market_rows(con)
        }
        seen: set[str] = set()
        for ts, k, _id, t, a, b, last, vol, extra, src in market_data_rows(con):
            if t not in seen and t in meta:
                seen.add(t)
                yield {k2: v for k2, v in meta[t].items() if v is not None}
            if k == 0:
                rec: dict[str, Any] = {
                    "type": "snapshot",
                    "ticker": t,
                    "ts": ts,
                    "yes_bid": _cc(a),
                    "yes_ask": _cc(b),
                    "last": _cc(last),
                    "volume": qty_text(vol) if type(vol) is int and vol >= 0 else vol,
                }
                if extra:
                    try:
                        rec["book"] = json.loads(extra)
                    except (ValueError, RecursionError):  # a row edited by hand: validation rejects it
                        rec["book"] = str(extra)[:200]
                yield rec
            elif k == 1:
                yield {"type": "estimate", "ticker": t, "ts": ts, "p_hat": _s(a), "source": src}
            else:
                out = {"type": "settlement", "ticker": t, "ts": ts, "result": extra, "status": src}
                if a is not None:
                    out["settlement_value"] = a
                yield out
    finally:
        con.close()


def _cc(x: Any) -> str | None:
    """A stored centicent price as the replay file writes prices ("0.4230"); anything else in the
    column (a row edited by hand) is passed on as text for validation to reject."""
    if x is None:
        return None
    if type(x) is int and 0 <= x <= 10_000:
        return str(GRID[x])
    return str(x)[:100]


def _s(x: Any) -> str | None:
    """A stored price as the replay record's text; anything else in the column (a row edited by
    hand) is passed on as text for validation to reject."""
    if x is None:
        return None
    if type(x) in (int, float):
        return str(real_to_price(x))
    return str(x)[:100]


SQLITE_HEADER = b"SQLite format 3\x00"


def check_jsonl_target(path: str | Path, overwrite: bool = False, keep: Iterable[str | Path] = ()) -> None:
    """Where ``--save-jsonl`` may write, said before anything is read or written: a new file, or
    with ``overwrite`` (``--force``) an existing regular file that is not a database. Never a
    database (any SQLite file, or one of the ``keep`` databases or their WAL/SHM), never a pipe
    or a device. A ConfigError (one line, exit 2) otherwise."""
    p = Path(path)
    for db in keep:
        for f in sqlite_files(db):
            if p.resolve() == f.resolve() or (p.exists() and f.exists() and os.path.samefile(p, f)):
                raise ConfigError(f"--save-jsonl {p} is {db}, a database of this replay; it is never overwritten")
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot write {p}: {getattr(e, 'strerror', None) or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"--save-jsonl {p} is {kind_of(st.st_mode)}, not a file it may overwrite")
    try:
        with open_regular(p) as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as e:
        raise ConfigError(f"cannot read {p}: {e.strerror}") from None
    if head == SQLITE_HEADER:
        raise ConfigError(f"--save-jsonl {p} is a SQLite database; it is never overwritten")
    if not overwrite:
        raise ConfigError(f"--save-jsonl {p} already exists; pass --force to overwrite it")


def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path, overwrite: bool = False) -> int:
    """The records as JSONL in a file made owner-only (0600) as it is created: a new file
    (``FileExistsError`` if anything is there, a symlink included), or with ``overwrite`` a
    new file put in place of the old one (``check_jsonl_target`` says which may go)."""
    p = Path(path)
    if overwrite:
        check_jsonl_target(p, overwrite=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp") if overwrite else p
    fd = create_private(tmp)
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, separators=(",", ":")) + "\n")
                n += 1
        if overwrite:
            os.replace(tmp, p)
    except BaseException:
        if overwrite:
            tmp.unlink(missing_ok=True)
        raise
    return n


class ReplaySource(Source):
    """Plays recorded ticks as the exchange, with their timestamps as the clock."""

    name = "replay"

    def __init__(self, items: Iterable[ReplayTick | int], first_ts: int | None = None) -> None:
        self._it = iter(items)
        self._now = first_ts or 0
        self.current: ReplayTick | None = None
        self.done = False
        self._peeked: ReplayTick | None = None
        first = next(self._it, None)
        if isinstance(first, int):
            self._now = first
        elif first is not None:
            self._peeked = first
            if not self._now:
                self._now = first.ts

    def now_ms(self) -> int:
        return self._now

    def has_next(self) -> bool:
        if self._peeked is None:
            nxt = next(self._it, None)
            while isinstance(nxt, int):  # a stray start record mid-stream moves nothing
                nxt = next(self._it, None)
            self._peeked = nxt
        return self._peeked is not None

    def fetch(self) -> FetchBatch:
        nxt = self._peeked if self._peeked is not None else next(self._it, None)
        self._peeked = None
        if nxt is None or isinstance(nxt, int):
            self.done = True
            self.current = None
            return FetchBatch()
        self.current = nxt
        self._now = nxt.ts
        batch = FetchBatch(rows=list(nxt.rows))
        batch.rows += [RawRow(market={}, snapshot=None, payload=p, reason=r) for r, p in nxt.rejected]
        return batch


class ReplayEstimator(Estimator):
    """The estimates recorded for the tick being replayed."""

    def __init__(self, source: ReplaySource) -> None:
        self.source = source

    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]:
        cur = self.source.current
        if cur is None:
            return []
        out = []
        for rec in cur.estimates:  # validated when the tick was grouped; bad ones were rejected there
            out.append(
                Estimate(
                    ticker=rec.get("ticker") or "",
                    p_hat=_dec(rec.get("p_hat")),
                    source=rec.get("source") or "replay",
                    ts=rec.get("ts"),
                )
            )
        return out
