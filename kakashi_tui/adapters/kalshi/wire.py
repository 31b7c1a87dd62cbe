"""Kalshi's parsed payloads (``schemas``) to Kakashi's raw rows, once, at the edge.

Rows (``convert``, ``market_row``, ``snapshot_row``) follow ``adapters/source.py``: prices and
counts as they came off the wire (exact strings, never float), books best first, a quiet market
as "no quote", the lifecycle status word passed through. A row that cannot be one (not an
object, a ticker no Kalshi market has, a count or time out of any sane range, text SQLite or a
terminal cannot hold, legacy and fixed-point twins that disagree) is rejected on its own with a
reason: the first failing field of its schema (``schemas.Market``, ``schemas.OrderBook``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kakashi_tui.adapters.catalog import trade_problem
from kakashi_tui.adapters.kalshi.schemas import (
    LIFECYCLE,
    MAX_COUNT,
    MAX_TEXT_LEN,
    MAX_TICKER_LEN,
    MAX_TS_MS,
    MIN_TS_MS,
    Market,
    RowError,
    Series,
    _safe,
    check_ticker,
    parse,
    parse_book,
    parse_market,
    ticker_ok,
)
from kakashi_tui.adapters.kalshi.schemas import Trade as RestTrade
from kakashi_tui.adapters.kalshi.schemas import dec as _dec
from kakashi_tui.adapters.source import RawRow
from kakashi_tui.adapters.tape import PrintRow

__all__ = [
    "LIFECYCLE",
    "MAX_COUNT",
    "MAX_TEXT_LEN",
    "MAX_TICKER_LEN",
    "MAX_TS_MS",
    "MIN_TS_MS",
    "Fees",
    "RowError",
    "_dec",
    "_safe",
    "check_ticker",
    "convert",
    "market_row",
    "snapshot_row",
    "ticker_ok",
]

_ONE = Decimal(1)


def _no_quote(v: Any, empty: Decimal) -> Any:
    d = _dec(v)
    return None if d is not None and d == empty else v


@dataclass(frozen=True)
class Fees:
    fee_type: str | None = None
    fee_multiplier: str | None = None  # the series' number, exact, as a decimal string

    @classmethod
    def of(cls, series: Series) -> Fees:
        return cls(series.fee_type, series.fee_multiplier)


def convert(
    m: Any,
    ts: int,
    ob: dict[str, Any] | None = None,
    series: str = "",
    fees: Fees | None = None,
    exclusive: bool | None = None,
) -> RawRow:
    """One listed market (and its book, when fetched) as a raw row, or a rejected row with its
    reason. Never raises. ``series`` and ``exclusive`` (``mutually_exclusive``) are its event's."""
    try:
        return _convert(m, ts, ob, series, fees or Fees(), exclusive)
    except RowError as e:
        reason = str(e)
    except (ArithmeticError, TypeError, ValueError, RecursionError) as e:  # last resort: a verdict
        reason = f"unreadable market: {e.__class__.__name__}"
    ticker = m.get("ticker") if isinstance(m, dict) else None
    try:
        ticker = check_ticker(ticker)
    except RowError:
        ticker = ""
    return RawRow(
        market={"ticker": ticker},
        snapshot=None,
        payload={"market": m, "orderbook": ob} if ob is not None else m,
        reason=reason,
    )


def _market(w: Market, series: str, fees: Fees, exclusive: bool | None = None) -> dict[str, Any]:
    return {
        "ticker": w.ticker,
        "title": w.title,
        "subtitle": w.yes_sub_title,
        "event_ticker": w.event_ticker,
        "series": series,
        "status": w.status or "",
        "market_type": w.market_type or "binary",
        "result": w.result,
        "settlement_value": w.settlement_value_dollars,
        "open_ts": w.open_time,
        "close_ts": w.close_time,
        "updated_ts": w.updated_time,
        "fee_type": fees.fee_type,
        "fee_multiplier": fees.fee_multiplier,
        "fee_waiver_until_ts": w.fee_waiver_expiration_time,
        "settlement_bounds_type": w.settlement_bounds_type,
        "settlement_floor": w.settlement_floor_dollars,
        "price_ranges": w.price_ranges,
        "exchange_index": w.exchange_index,
        "event_exclusive": exclusive,  # (the event's: GET /events)
    }


def _convert(
    m: Any, ts: int, ob: dict[str, Any] | None, series: str, fees: Fees, exclusive: bool | None = None
) -> RawRow:
    w = parse_market(m)  # every field read and checked, twins included, in the schema's order
    market = _market(w, series, fees, exclusive)
    if ob is not None and not isinstance(ob, dict):
        raise RowError("order book is not an object")
    payload = {"market": m, "orderbook": ob} if ob is not None else m
    if w.status != "active":  # no quote outside trading; the market row carries the lifecycle
        return RawRow(market=market, snapshot=None, payload=payload)
    last = w.last_price_dollars
    if _dec(last) is not None and _dec(last) in (0, _ONE):
        last = None  # no trade yet
    snapshot: dict[str, Any] = {
        "ticker": w.ticker,
        "ts": ts,
        "yes_bid": _no_quote(w.yes_bid_dollars, Decimal(0)),
        "yes_ask": _no_quote(w.yes_ask_dollars, _ONE),
        "last": last,
        "volume": w.volume_fp,
    }
    if ob is not None:
        book = parse_book(ob)
        yes, no = book.yes_dollars, book.no_dollars
        snapshot["yes_bids"], snapshot["no_bids"] = yes, no
        # The book is the fresher truth for the top: take it from the levels.
        snapshot["yes_bid"] = yes[0][0] if yes else None
        if no:
            p = _dec(no[0][0])
            snapshot["yes_ask"] = str(_ONE - p) if p is not None else no[0][0]
        else:
            snapshot["yes_ask"] = None
    return RawRow(market=market, snapshot=snapshot, payload=payload)


def market_row(m: dict[str, Any], series: str = "", fees: Fees | None = None) -> dict[str, Any]:
    """The market dict of a listed market (raises RowError when it cannot be one)."""
    return _convert(m, MIN_TS_MS, None, series, fees or Fees()).market


def snapshot_row(m: dict[str, Any], ts: int, ob: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The snapshot dict of a listed market (None outside trading; raises RowError)."""
    return _convert(m, ts, ob, "", Fees()).snapshot


# -- trade prints ------------------------------------------------------------------------------
@dataclass
class Trade:
    """A public print in catalog units (a row of the catalog's ``trades``)."""

    ticker: str
    yes_price_cc: int
    count_hundredths: int
    taker_side: str  # the taker's outcome side: 3.34 ``taker_outcome_side``, else ``taker_side``
    ts: int  # the print's time, epoch ms: ``ts_ms``, else ``ts`` (seconds) x 1000
    trade_id: str = ""
    recv_ts: int | None = None  # when the frame arrived (the print's own ts may not be far ahead of it)
    taker_book_side: str | None = None  # 3.34: bid | ask
    is_block_trade: bool | None = None  # 3.34: matched off the book (None: not said, an older print)
    sending_ts_ms: int | None = None  # when Kalshi sent the frame (WebSocket, since October 2026)
    source: str = "kalshi-ws"  # kalshi-ws | kalshi-rest (GET /markets/trades polled) | backfill

    @property
    def on_book(self) -> bool:
        """Whether the print traded against the order book: a block print (matched off the book)
        never counts as book liquidity, depth or queue progress (the queue models of #23 read
        this). A print that does not say (older specs) was on the book."""
        return self.is_block_trade is not True


def book_prints(trades: Iterable[Trade]) -> list[Trade]:
    """The prints that traded against the book (block prints left out): what any reader of
    liquidity (volume at a level, queue progress) may count."""
    return [t for t in trades if t.on_book]


def tape_row(t: Trade) -> PrintRow:
    """A print as the tape's one rule reads it (adapters/tape.py): stamped with when Kakashi
    received it (the exchange's time where it was not stamped), its exchange time beside."""
    return PrintRow(
        t.recv_ts if t.recv_ts is not None else t.ts,
        t.ticker,
        t.yes_price_cc,
        t.count_hundredths,
        t.taker_side or None,
        t.taker_book_side,
        t.is_block_trade,
        t.ts,
    )


def rest_print(raw: Any, now: int, source: str = "kalshi-rest") -> tuple[Trade | None, str | None]:
    """One print of ``GET /markets/trades`` / ``GET /historical/trades`` (spec 3.34 ``Trade``)
    through the row check the WebSocket's prints pass (``catalog.trade_problem``): the print, or
    None and why. Its time is ``created_time`` (Kalshi's REST prints carry no ``ts_ms``)."""
    try:
        p = parse(RestTrade, raw, "trade print")
    except RowError as e:
        return None, f"trade print: {e}"
    ts = p.created_time
    side, tid = p.outcome_side(), p.trade_id if p.trade_id != "" else None
    book_side = p.taker_book_side if p.taker_book_side != "" else None
    why = trade_problem(p.ticker, ts, now, p.yes_price_dollars, p.count_fp, side, tid, book_side, p.is_block_trade)
    if why is not None or ts is None:
        return None, why or "trade print: missing created_time"
    t = Trade(
        p.ticker,
        p.yes_price_dollars,
        p.count_fp,
        side or "",
        ts,
        tid or "",
        recv_ts=now,
        taker_book_side=book_side,
        is_block_trade=p.is_block_trade,
        source=source,
    )
    return t, None
