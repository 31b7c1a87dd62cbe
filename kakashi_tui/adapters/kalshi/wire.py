"""Kalshi's parsed payloads (``schemas``) to Kakashi's raw rows, once, at the edge.

Rows (``convert``, ``market_row``, ``snapshot_row``) follow ``adapters/source.py``: prices and
counts as they came off the wire (exact strings, never float), books best first, a quiet market
as "no quote", the lifecycle status word passed through. A row that cannot be one (not an
object, a ticker no Kalshi market has, a count or time out of any sane range, text SQLite or a
terminal cannot hold, legacy and fixed-point twins that disagree) is rejected on its own with a
reason: the first failing field of its schema (``schemas.Market``, ``schemas.OrderBook``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

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
    parse_book,
    parse_market,
    ticker_ok,
)
from kakashi_tui.adapters.kalshi.schemas import dec as _dec
from kakashi_tui.adapters.source import RawRow

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


def convert(m: Any, ts: int, ob: dict[str, Any] | None = None, series: str = "", fees: Fees | None = None) -> RawRow:
    """One listed market (and its book, when fetched) as a raw row, or a rejected row with its
    reason. Never raises."""
    try:
        return _convert(m, ts, ob, series, fees or Fees())
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


def _market(w: Market, series: str, fees: Fees) -> dict[str, Any]:
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
    }


def _convert(m: Any, ts: int, ob: dict[str, Any] | None, series: str, fees: Fees) -> RawRow:
    w = parse_market(m)  # every field read and checked, twins included, in the schema's order
    market = _market(w, series, fees)
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
