"""Replay recorded market data through the same engine tick as the live loop.

Input is the JSONL format of data_schema.md (``start``, ``market``, ``snapshot``,
``estimate``, ``settlement`` records in time order; records sharing a ``ts`` are one
tick), or the tables of an earlier run's database. The replay source plays the part of
the exchange and its clock; the replay estimator hands the engine the estimates recorded
for each tick. Nothing else differs from a live run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from kakashi_tui.adapters.queries import connect_readonly
from kakashi_tui.adapters.source import FetchBatch, RawRow
from kakashi_tui.adapters.store import real_to_price
from kakashi_tui.core.models import Estimate, rejection_reason

RECORD_TYPES = ("start", "market", "snapshot", "estimate", "settlement")


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


def group_ticks(records: Iterable[tuple[int, dict[str, Any] | None, str | None]]) -> Iterator[ReplayTick | int]:
    """Records (line number, record or None, parse error) -> ticks.

    Yields an ``int`` first when a ``start`` record gives the clock's starting point.
    """
    markets: dict[str, dict[str, Any]] = {}
    metas: dict[str, dict[str, Any]] = {}  # the raw market row each ticker's snapshots carry
    current: ReplayTick | None = None
    last_ts: int | None = None
    start_ts: int | None = None
    pending_rejects: list[tuple[str, Any]] = []
    for line, rec, error in records:
        if rec is None:
            pending_rejects.append((f"line {line}: {error}", {"line": line}))
            continue
        kind = rec.get("type")
        ts = rec.get("ts")
        if kind == "start":
            if isinstance(ts, int) and current is None:
                start_ts = ts
                yield ts
            continue
        if kind == "market":
            t = rec.get("ticker")
            if isinstance(t, str) and t:
                metas.pop(t, None)
                markets[t] = {k: rec.get(k) for k in ("ticker", "title", "series", "event_ticker", "open_ts",
                                                       "close_ts") if rec.get(k) is not None}
            else:
                pending_rejects.append((f"line {line}: market record without a ticker", rec))
            continue
        if kind not in RECORD_TYPES:
            pending_rejects.append((f"line {line}: unknown record type {kind!r}", rec))
            continue
        if type(ts) is not int:  # (not a bool either)
            pending_rejects.append((f"line {line}: {kind} record without an integer ts", rec))
            continue
        if last_ts is not None and ts < last_ts:
            pending_rejects.append((f"line {line}: out of time order ({ts} < {last_ts})", rec))
            continue
        if current is None or ts != current.ts:
            if current is not None:
                yield current
            current = ReplayTick(ts=ts)
            last_ts = ts
        if pending_rejects:
            current.rejected.extend(pending_rejects)
            pending_rejects = []
        t = rec.get("ticker") or ""
        if type(t) is not str:
            current.rejected.append((f"line {line}: {kind} record with a ticker that is not text", rec))
            continue
        meta = metas.get(t)
        if meta is None:  # one dict per market, reused by its snapshots until its metadata changes
            meta = metas[t] = {"ticker": t, "status": "open",
                               **{k: v for k, v in markets.get(t, {}).items() if k != "ticker"}}
        if kind == "snapshot":
            # prices and levels go to validation as written ([price, qty] pairs, price strings)
            book = rec.get("book") or {}
            yes, no = (book.get("yes") or [], book.get("no") or []) if isinstance(book, dict) else (book, [])
            snap = {"ticker": t, "ts": ts, "yes_bid": rec.get("yes_bid"), "yes_ask": rec.get("yes_ask"),
                    "last": rec.get("last"), "volume": rec.get("volume") or 0, "yes_bids": yes, "no_bids": no}
            current.rows.append(RawRow(market=meta, snapshot=snap, payload=rec))
        elif kind == "estimate":
            try:
                Estimate(ticker=t, p_hat=_dec(rec.get("p_hat")), source=rec.get("source") or "replay", ts=ts)
            except ValidationError as e:
                current.rejected.append((f"line {line}: estimate {rejection_reason(e)}", rec))
            else:
                current.estimates.append(rec)
        elif kind == "settlement":
            current.rows.append(RawRow(market={**meta, "status": "settled", "result": rec.get("result")},
                                       snapshot=None, payload=rec))
    if current is not None:
        current.rejected.extend(pending_rejects)
        yield current
    elif pending_rejects:  # nothing but bad lines: one tick at the start, so they are kept and counted
        yield ReplayTick(ts=start_ts or 1, rejected=pending_rejects)


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
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
            yield i, rec, None


def records_from_db(db: str | Path) -> Iterator[dict[str, Any]]:
    """An earlier run's stored data as replay records, in time order."""
    con = connect_readonly(db)
    try:
        dep = con.execute("SELECT ts FROM ledger WHERE key = 'deposit:initial'").fetchone()
        if dep:
            yield {"type": "start", "ts": dep[0]}
        meta = {t: {"type": "market", "ticker": t, "title": title, "series": series, "event_ticker": ev,
                    "open_ts": o, "close_ts": c}
                for t, title, series, ev, o, c in con.execute(
                    "SELECT ticker, title, series, event_ticker, open_ts, close_ts FROM markets")}
        seen: set[str] = set()
        cur = con.execute(
            "SELECT ts, 0 AS k, id, ticker, yes_bid, yes_ask, last, volume, book, NULL FROM snapshots "
            "UNION ALL SELECT ts, 1, id, ticker, p_hat, NULL, NULL, NULL, NULL, source FROM estimates "
            "UNION ALL SELECT ts, 2, 0, ticker, NULL, NULL, NULL, NULL, result, NULL FROM outcomes "
            "ORDER BY 1, 2, 3")
        for ts, k, _id, t, a, b, last, vol, extra, src in cur:
            if t not in seen and t in meta:
                seen.add(t)
                yield {k2: v for k2, v in meta[t].items() if v is not None}
            if k == 0:
                rec: dict[str, Any] = {"type": "snapshot", "ticker": t, "ts": ts, "yes_bid": _s(a),
                                       "yes_ask": _s(b), "last": _s(last), "volume": vol}
                if extra:
                    rec["book"] = json.loads(extra)
                yield rec
            elif k == 1:
                yield {"type": "estimate", "ticker": t, "ts": ts, "p_hat": _s(a), "source": src}
            else:
                yield {"type": "settlement", "ticker": t, "ts": ts, "result": extra}
    finally:
        con.close()


def _s(x: float | None) -> str | None:
    p = real_to_price(x)
    return None if p is None else str(p)


def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
            n += 1
    return n


class ReplaySource:
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

    def close(self) -> None:
        pass

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


class ReplayEstimator:
    """The estimates recorded for the tick being replayed."""

    def __init__(self, source: ReplaySource) -> None:
        self.source = source

    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]:
        cur = self.source.current
        if cur is None:
            return []
        out = []
        for rec in cur.estimates:  # validated when the tick was grouped; bad ones were rejected there
            out.append(Estimate(ticker=rec.get("ticker") or "", p_hat=_dec(rec.get("p_hat")),
                                source=rec.get("source") or "replay", ts=rec.get("ts")))
        return out
