"""``kakashi catalog backfill``: Kalshi's own public history into the catalog (no key needed).

For the markets named (or held), within a time window:
- settled markets: ``GET /markets?tickers=..&status=settled`` and ``GET /historical/markets``
  (markets archived before Kalshi's cutoff), each through the market's row checks (``wire``'s
  schema, then ``core/validate.py``) into the catalog's ``markets`` table, dated by the
  market's own ``updated_time`` (else its close);
- trade prints: ``GET /markets/trades`` and ``GET /historical/trades`` (cursor pages,
  ``min_ts`` / ``max_ts``), through the WebSocket's row check (``wire.rest_print``) into
  ``trades`` (source ``backfill``); a print whose ``trade_id`` the catalog already holds (a
  live recording's included) is not written again;
- candlesticks: ``GET /series/{series}/markets/{ticker}/candlesticks`` (the series from the
  market's event), or ``GET /historical/markets/{ticker}/candlesticks`` for an archived market,
  in spans of at most ``CANDLES_PER_REQUEST`` periods, into ``candles``.

The writer skips rows the catalog already holds (``skip_existing``): a second backfill of the
same window adds nothing. A row a check refuses is counted and its reason kept (the first
``MAX_REASONS``), never written. A market's request that fails after the markets were found is
a note and the rest goes on; a server that cannot be reached at all is one error (what was
written stays written).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kakashi_tui.adapters.catalog import CatalogWriter, read_table
from kakashi_tui.adapters.kalshi.client import TICKERS_PER_LISTING, KalshiClient, KalshiHTTPError
from kakashi_tui.adapters.kalshi.schemas import Candle, RowError, _safe, parse
from kakashi_tui.adapters.kalshi.wire import Fees, convert, rest_print
from kakashi_tui.core.validate import validate_row

SOURCE = "backfill"
CANDLES_PER_REQUEST = 5000  # periods a candlestick request asks for at most (Kalshi caps a request)
MAX_REASONS = 20
SETTLED = ("determined", "disputed", "amended", "finalized")


@dataclass
class BackfillResult:
    markets: int = 0  # settled markets taken (the writer then skips those it already holds)
    trades: int = 0
    candles: int = 0
    skipped: int = 0  # prints whose trade_id the catalog already held (the writer counts the rest)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)  # the first MAX_REASONS rejections
    notes: list[str] = field(default_factory=list)  # requests that failed for one market
    unknown: list[str] = field(default_factory=list)  # tickers Kalshi does not list

    def reject(self, why: str) -> None:
        self.rejected += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(why)


@dataclass
class _Found:
    raw: dict[str, Any]
    archived: bool  # from /historical/markets: its candlesticks are historical too
    series: str = ""


def backfill(
    client: KalshiClient,
    writer: CatalogWriter,
    tickers: Iterable[str],
    since_ms: int,
    until_ms: int,
    period_minutes: int = 60,
    now: Callable[[], int] | None = None,
) -> BackfillResult:
    """Kalshi's history of ``tickers`` in [since_ms, until_ms] into ``writer``'s catalog. A
    ``KalshiHTTPError`` from the market look-ups (the server unreachable, say) is raised."""
    clock = now or client._clock_ms
    res = BackfillResult()
    names = sorted(set(tickers))
    found = _markets(client, names, res)
    res.unknown = [t for t in names if t not in found]
    _series(client, found, res)
    t_now = clock()
    for t in sorted(found):
        f = found[t]
        if f.raw.get("status") in SETTLED:
            _settled_market(writer, f, t_now, res)
    known = _known_ids(writer)
    for t in sorted(found):
        _trades(client, writer, t, since_ms, until_ms, clock, res, known)
    for t in sorted(found):
        _candles(client, writer, t, found[t], since_ms, until_ms, period_minutes, res)
    return res


def _markets(client: KalshiClient, names: list[str], res: BackfillResult) -> dict[str, _Found]:
    """Each named market as Kalshi lists it: settled first, then archived, then any status."""
    found: dict[str, _Found] = {}
    for i in range(0, len(names), TICKERS_PER_LISTING):
        chunk = names[i : i + TICKERS_PER_LISTING]
        asks: list[tuple[bool, Callable[[list[str]], Any]]] = [
            (False, lambda c: client.list_markets({"tickers": ",".join(c), "status": "settled"}, max_pages=20)),
            (True, lambda c: client.list_historical_markets({"tickers": ",".join(c)})),
            (False, lambda c: client.list_markets({"tickers": ",".join(c)}, max_pages=20)),
        ]
        for archived, ask in asks:
            rest = [t for t in chunk if t not in found]
            if not rest:
                break
            try:
                listing = ask(rest)
            except KalshiHTTPError as e:
                if archived and e.status == 404:  # a server without the historical listing
                    continue
                raise
            for m in listing.items():
                t = m.get("ticker") if isinstance(m, dict) else None
                if isinstance(t, str) and t in rest and t not in found:
                    found[t] = _Found(m, archived)
    return found


def _series(client: KalshiClient, found: dict[str, _Found], res: BackfillResult) -> None:
    """Each market's series, from its event (``GET /events/{event}``; one look-up an event)."""
    by_event: dict[str, str] = {}
    for t, f in sorted(found.items()):
        ev = f.raw.get("event_ticker")
        if not isinstance(ev, str) or not ev:
            continue
        if ev not in by_event:
            try:
                s = client.get_event(ev).get("series_ticker")
            except KalshiHTTPError as e:
                res.notes.append(f"{_safe(t, 60)}: its event {_safe(ev, 60)} could not be read: {e}")
                s = None
            by_event[ev] = s if isinstance(s, str) else ""
        f.series = by_event[ev]


def _settled_market(writer: CatalogWriter, f: _Found, now_ms: int, res: BackfillResult) -> None:
    row = convert(f.raw, now_ms, None, f.series, Fees())
    why = row.reason
    if why is None:
        v = validate_row(row.market, None, now_ms)
        why = v.reason
        m = v.market
        if why is None and m is not None:
            ts = m.updated_ts or m.close_ts or now_ms
            why = writer.add_market(m, ts)
            if why is None:
                res.markets += 1
                return
    res.reject(f"market {_safe(f.raw.get('ticker'), 60)}: {why}")


def _trades(
    client: KalshiClient,
    writer: CatalogWriter,
    ticker: str,
    since_ms: int,
    until_ms: int,
    clock: Callable[[], int],
    res: BackfillResult,
    known: set[str],
) -> None:
    params = {"ticker": ticker, "min_ts": since_ms // 1000, "max_ts": until_ms // 1000}
    for historical in (False, True):
        try:
            listing = client.list_trades(params, historical=historical, max_pages=1000)
        except KalshiHTTPError as e:
            if not (historical and e.status == 404):  # (a server without the historical tape)
                res.notes.append(f"{ticker}: {'historical ' if historical else ''}trades could not be read: {e}")
            continue
        if listing.truncated:
            res.notes.append(f"{ticker}: more trades than 1,000 pages; narrow --since/--until")
        for raw in listing.items():
            tr, why = rest_print(raw, clock(), SOURCE)
            if tr is None:
                res.reject(f"{ticker}: {why}")
                continue
            if tr.ticker != ticker or not since_ms <= tr.ts <= until_ms:
                continue
            if tr.trade_id and tr.trade_id in known:
                res.skipped += 1
                continue
            why = writer.add_trade(
                tr.ts,
                tr.ticker,
                tr.yes_price_cc,
                tr.count_hundredths,
                tr.taker_side or None,
                tr.trade_id or None,
                SOURCE,
                tr.recv_ts,
                taker_book_side=tr.taker_book_side,
                is_block_trade=tr.is_block_trade,
            )
            if why is not None:
                res.reject(f"{ticker}: {why}")
                continue
            if tr.trade_id:
                known.add(tr.trade_id)
            res.trades += 1


def _known_ids(writer: CatalogWriter) -> set[str]:
    """The trade ids the catalog holds (any source: a live recording's too)."""
    col = read_table(writer.root, "trades", ["trade_id"]).column("trade_id").to_pylist()
    return {i for i in col if isinstance(i, str)}


def _candles(
    client: KalshiClient,
    writer: CatalogWriter,
    ticker: str,
    f: _Found,
    since_ms: int,
    until_ms: int,
    period: int,
    res: BackfillResult,
) -> None:
    if not f.series and not f.archived:
        res.notes.append(f"{ticker}: no series known, so no candlesticks")
        return
    span = period * 60 * CANDLES_PER_REQUEST
    start, end = since_ms // 1000, until_ms // 1000
    while start <= end:
        stop = min(end, start + span - 1)
        try:
            got = client.get_candlesticks(f.series, ticker, start, stop, period, historical=f.archived)
        except KalshiHTTPError as e:
            res.notes.append(f"{ticker}: candlesticks could not be read: {e}")
            return
        for raw in got:
            try:
                c = parse(Candle, raw, "candlestick")
            except RowError as e:
                res.reject(f"{ticker}: candlestick: {e}")
                continue
            why = writer.add_candle(
                c.end_period_ts,
                ticker,
                period,
                SOURCE,
                close_cc=c.price.get("close"),
                open_cc=c.price.get("open"),
                high_cc=c.price.get("high"),
                low_cc=c.price.get("low"),
                yes_bid_close_cc=c.yes_bid.get("close"),
                yes_ask_close_cc=c.yes_ask.get("close"),
                volume_hundredths=c.volume_fp if c.volume_fp is not None else c.volume,
                open_interest_hundredths=c.open_interest_fp if c.open_interest_fp is not None else c.open_interest,
            )
            if why is not None:
                res.reject(f"{ticker}: {why}")
            else:
                res.candles += 1
        start = stop + 1
