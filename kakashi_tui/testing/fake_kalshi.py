"""A Kalshi-compatible HTTP server on 127.0.0.1, for tests and demos.

Answers the way Kalshi's Trade API v2 answers today (fixed point since 2026-03-12): prices only
as ``*_dollars`` strings with four decimals, counts only as ``*_fp`` strings with two
(``legacy=True`` adds the old cent/integer twins, as older recordings carry them). It serves

    GET /markets                     cursor pages; status, tickers, series_ticker, event_ticker,
                                     mve_filter (exclude | only), min_updated_ts (seconds)
    GET /markets/{ticker}            GET /historical/markets/{ticker} (archived markets only)
    GET /markets/{ticker}/orderbook  GET /markets/orderbooks?tickers=A&tickers=B (1..100)
                                     by default both want Kalshi's signed headers, verified
                                     with the public key (the spec's word; 401 without);
                                     ``require_signature=False`` serves them unsigned, as
                                     the live exchange does
    GET /events (cursor pages, status)  GET /events/{event_ticker}  (``exclusive_events``:
                                     ``mutually_exclusive`` true, MECNET)
    GET /series                      GET /series/{series_ticker}  (fee_type, fee_multiplier)
    (``batch_books=False``: no GET /markets/orderbooks, 404, as an older server)
    GET /account/limits              signed only (401 without): ``account_limits`` (Basic tier by
                                     default; None: 404, as a server without the endpoint)
    GET /exchange/status             shards 0 and 1 (``shards``), ``halted_shards`` not trading
    GET /series/fee_changes          (``series_fee_changes``)  GET /events/fee_changes (cursor
                                     pages; ``event_fee_changes``); an event's own override
                                     (``event_fee_overrides``)
    GET /markets/trades              public prints, newest first, cursor pages; ticker, min_ts,
                                     max_ts (seconds), is_block_trade; ``add_print`` makes them
                                     (3.34 ``Trade``: block prints, or a 3.20 print with ``old``)
    GET /historical/trades           the same for prints before the cutoff (``historical=True``)
    GET /series/{s}/markets/{t}/candlesticks, GET /historical/markets/{t}/candlesticks
                                     start_ts, end_ts, period_interval; ``add_candle``
    GET /historical/markets          archived markets (tickers, cursor pages)

Shapes follow Kalshi's spec 3.34 (``spec="3.34"``, the default: ``settlement_bounds_type``,
``price_ranges`` and ``exchange_index`` on markets, ``categories`` on series, account limits
with ``grants``, none of the fields Kalshi removed since 3.20); ``spec="3.20"`` answers as a
server of early June 2026 did (the removed fields present, none of the later ones). Every
payload parses with Kalshi's own SDK models (tests/integration/test_sdk_shapes.py).

(``bulk_series``: that many more series in GET /series, about 1,300 bytes each: 14,000 make
Kalshi's 18 MB listing; ``accept_language``: every Accept-Language header a request carried) with fractional and
sub-penny books, quiet markets (0.0000 / 1.0000, sizes 0.00), a few
thousand combo (multivariate) markets on request (``combos``), every lifecycle status, scalar
markets, series with different fee multipliers, and faults on request:

    429 (Kalshi's: no Retry-After, {"error": "too many requests"}; or with Retry-After), 500/
    502/503, 401/403, a response slower than the client's timeout, a dropped connection,
    malformed JSON, gzip garbage, deeply nested JSON, HTML with status 200, a gigantic body,
    rows that break the schema (``BAD_ROWS``), a repeated cursor, empty books.

Run by hand:  python -m kakashi_tui.testing.fake_kalshi --port 8765 [--markets 12] [--combos 3000]
then:         kakashi --source kalshi --api-base http://127.0.0.1:8765/trade-api/v2
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

PREFIX = "/trade-api/v2"

#: Fault names accepted by ``FakeKalshi.fail_next``.
FAULTS = (
    "ok",
    "429",
    "429-retry-after",
    "500",
    "502",
    "503",
    "401",
    "403",
    "slow",
    "drop",
    "malformed-json",
    "gzip-garbage",
    "deep-json",
    "html-200",
    "huge-body",
)

#: Row corruptions accepted by ``FakeKalshi.bad_rows`` (each a market listed after the real ones).
BAD_ROWS = (
    "ask-below-bid",
    "price-over-1",
    "missing-ticker",
    "settled-no-result",
    "volume-1e30",
    "close-time-1e30",
    "surrogate-ticker",
    "nul-ticker",
    "long-ticker",
    "traversal-ticker",
    "dict-ticker",
    "null-row",
    "number-row",
    "string-row",
    "legacy-mismatch",
    "legacy-garbage",
    "thrice-ticker",
    "twice-identical",
)

LIFECYCLE = ("initialized", "inactive", "active", "closed", "determined", "disputed", "amended", "finalized")

#: GET /markets ``status`` filter values -> the market statuses they list.
_STATUS_FILTER = {
    "unopened": ("initialized",),
    "open": ("active",),
    "closed": ("closed",),
    "settled": ("determined", "disputed", "amended", "finalized"),
}

Q4 = Decimal("0.0001")

#: Market fields Kalshi removed after spec 3.20 (sent only with ``spec="3.20"``).
REMOVED_FIELDS = ("fractional_trading_enabled", "response_price_units", "liquidity_dollars")

#: The shapes the loopback servers answer in: Kalshi's spec 3.34 (October 2026, the default) and
#: spec 3.20 (early June 2026).
SPECS = ("3.34", "3.20")

#: GET /account/limits for a Basic-tier account (tokens; a GET costs 10): 20 reads/s, two seconds' burst.
BASIC_LIMITS: dict[str, Any] = {
    "usage_tier": "basic",
    "read": {"refill_rate": 200, "bucket_capacity": 400},
    "write": {"refill_rate": 100, "bucket_capacity": 200},
}


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def d4(x: Decimal | int | str) -> str:
    """Dollars as Kalshi writes them: four decimals."""
    return str(Decimal(x).quantize(Q4))


def fp(x: Decimal | int | str) -> str:
    """A count as Kalshi writes it: two decimals."""
    return str(Decimal(x).quantize(Decimal("0.01")))


@dataclass
class FakeMarket:
    """One market. ``bid``/``ask``: the YES top of book in dollars (None: no order that side)."""

    ticker: str
    bid: Decimal | None
    ask: Decimal | None
    status: str = "active"
    result: str = ""
    depth: int = 4
    event: str = ""
    market_type: str = "binary"
    settlement_value: Decimal | None = None
    tick: Decimal = Decimal("0.01")
    size: Decimal = Decimal("10.00")  # the best level's size; deeper levels add 1.50 each
    volume: Decimal = Decimal("1000.00")
    archived: bool = False  # settled before the historical cutoff: only /historical/markets
    updated_ms: int = field(default_factory=lambda: int(time.time() * 1000) - 3_600_000)
    subtitle: str = ""
    fee_waiver_until: datetime | None = None
    # spec 3.31-3.34 market terms (#22): a settlement floor, an own price grid, an exchange shard
    settlement_bounds_type: str = "default"
    settlement_floor: str | None = None  # dollars as Kalshi writes them (up to 6 decimals)
    price_ranges: list[dict[str, str]] | None = None  # None: one range at ``tick``
    exchange_index: int = 0  # the exchange shard (spec 3.34; 0 is the default shard)
    times_from: datetime | None = None  # its open/close/created times from this, not the request's now

    def __post_init__(self) -> None:
        self.bid = None if self.bid is None else Decimal(self.bid)
        self.ask = None if self.ask is None else Decimal(self.ask)
        if not self.event:
            self.event = self.ticker.rsplit("-", 1)[0]

    def touch(self, **changes: Any) -> None:
        """Change the market and stamp its ``updated_time`` (what min_updated_ts filters on)."""
        for k, v in changes.items():
            setattr(self, k, v)
        self.updated_ms = int(time.time() * 1000)

    def yes_levels(self) -> list[tuple[Decimal, Decimal]]:
        """YES bids best first."""
        if self.bid is None:
            return []
        return [
            (self.bid - i * self.tick, self.size + i * Decimal("1.50"))
            for i in range(self.depth)
            if self.bid - i * self.tick > 0
        ]

    def no_levels(self) -> list[tuple[Decimal, Decimal]]:
        """NO bids best first (a NO bid at 1 - ask is the YES ask)."""
        if self.ask is None:
            return []
        top = 1 - self.ask
        return [
            (top - i * self.tick, self.size + 2 + i * Decimal("1.50"))
            for i in range(self.depth)
            if top - i * self.tick > 0
        ]

    def to_json(self, now: datetime, legacy: bool = False, spec: str = "3.34") -> dict[str, Any]:
        now = self.times_from or now  # (a settled market's times do not move)
        bid = self.bid if self.bid is not None else Decimal(0)
        ask = self.ask if self.ask is not None else Decimal(1)
        last = ((bid + ask) / 2).quantize(self.tick) if self.bid is not None and self.ask is not None else Decimal(0)
        yes_size = self.size if self.bid is not None else Decimal(0)
        no_size = self.size + 2 if self.ask is not None else Decimal(0)
        m: dict[str, Any] = {
            "ticker": self.ticker,
            "event_ticker": self.event,
            "market_type": self.market_type,
            "title": f"Fake market {self.ticker}",
            "yes_sub_title": self.subtitle or f"Yes: {self.ticker}",
            "no_sub_title": f"No: {self.ticker}",
            "status": self.status,
            "created_time": _iso(now - timedelta(days=2)),
            "updated_time": _iso(datetime.fromtimestamp(self.updated_ms / 1000, UTC)),
            "open_time": _iso(now - timedelta(hours=1)),
            "close_time": _iso(now + timedelta(hours=6)),
            "latest_expiration_time": _iso(now + timedelta(days=7)),
            "settlement_timer_seconds": 60,
            "yes_bid_dollars": d4(bid),
            "yes_ask_dollars": d4(ask),
            "no_bid_dollars": d4(1 - ask),
            "no_ask_dollars": d4(1 - bid),
            "yes_bid_size_fp": fp(yes_size),
            "yes_ask_size_fp": fp(no_size),
            "last_price_dollars": d4(last),
            "volume_fp": fp(self.volume),
            "volume_24h_fp": fp(self.volume / 4),
            "open_interest_fp": fp(self.volume / 2),
            "notional_value_dollars": "1.0000",
            "previous_yes_bid_dollars": d4(bid),
            "previous_yes_ask_dollars": d4(ask),
            "previous_price_dollars": d4(last),
            "liquidity_dollars": "0.0000",
            "result": self.result,
            "can_close_early": True,
            "fractional_trading_enabled": True,
            "price_level_structure": "linear_cent" if self.tick == Decimal("0.01") else "deci_cent",
            "expiration_value": "",
            "rules_primary": "Fake rules.",
            "rules_secondary": "",
        }
        if self.settlement_value is not None:
            m["settlement_value_dollars"] = d4(self.settlement_value)
        if self.fee_waiver_until is not None:
            m["fee_waiver_expiration_time"] = _iso(self.fee_waiver_until)
        if legacy:  # the pre-2026-03-12 twins, agreeing with the fixed-point fields
            for k in ("yes_bid", "yes_ask", "no_bid", "no_ask", "last_price"):
                m[k] = int(Decimal(m[f"{k}_dollars"]) * 100)
            m["volume"], m["open_interest"] = int(self.volume), int(self.volume / 2)
            m["response_price_units"] = "usd_cent"
        if spec != "3.20":  # spec 3.34: removed since 3.20 (July and September 2026), and added
            for k in REMOVED_FIELDS:
                m.pop(k, None)
            m["price_ranges"] = self.price_ranges or [{"start": "0.0000", "end": "1.0000", "step": d4(self.tick)}]
            m["settlement_bounds_type"] = self.settlement_bounds_type  # required from 3.31
            if self.settlement_floor is not None:
                m["settlement_floor_dollars"] = self.settlement_floor
            m["exchange_index"] = self.exchange_index
        return m

    def orderbook(self, legacy: bool = False) -> dict[str, Any]:
        """``orderbook_fp`` as Kalshi lists it: bids only, ascending (best last)."""
        yes = [[d4(p), fp(q)] for p, q in self.yes_levels()][::-1]
        no = [[d4(p), fp(q)] for p, q in self.no_levels()][::-1]
        ob: dict[str, Any] = {"yes_dollars": yes, "no_dollars": no}
        if legacy:
            ob["yes"] = [[int(Decimal(p) * 100), int(Decimal(q))] for p, q in yes]
            ob["no"] = [[int(Decimal(p) * 100), int(Decimal(q))] for p, q in no]
        return ob


@dataclass
class FakeSeries:
    ticker: str
    fee_type: str = "quadratic"
    fee_multiplier: Decimal = Decimal("1")

    def to_json(self, spec: str = "3.34") -> dict[str, Any]:
        out = {
            "ticker": self.ticker,
            "frequency": "daily",
            "title": f"Series {self.ticker}",
            "category": "Test",
            "tags": [],
            "settlement_sources": [],
            "contract_url": "",
            "contract_terms_url": "",
            "fee_type": self.fee_type,
            "fee_multiplier": self.fee_multiplier,
            "additional_prohibitions": [],
        }
        if spec != "3.20":  # spec 3.34: discovery categories (required) and the exchange shard
            out["categories"] = ["Test"]
            out["exchange_index"] = 0
        return out


class _Enc(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):  # a JSON number, written exactly (Kalshi's fee_multiplier is one)
            return float(o) if o != o.to_integral_value() else int(o)
        return super().default(o)


@dataclass
class FakeKalshi:
    """The server's state. Tests change it between requests; handlers read it under a lock."""

    markets: list[FakeMarket] = field(default_factory=list)
    series: dict[str, FakeSeries] = field(default_factory=dict)
    event_series: dict[str, str] = field(default_factory=dict)  # event ticker -> series ticker
    page_size: int = 5
    slow_seconds: float = 3.0
    repeat_cursor: bool = False
    empty_books: bool = False
    legacy: bool = False
    combos: int = 0  # multivariate markets listed unless mve_filter=exclude
    bad_rows: set[str] = field(default_factory=set)
    public_key: Any = None  # with a key id: order books need a valid signature
    key_id: str | None = None
    require_signature: bool = True
    huge_body_bytes: int = 20 * 1024 * 1024
    account_limits: dict[str, Any] | None = field(default_factory=lambda: dict(BASIC_LIMITS))
    batch_books: bool = True
    bulk_series: int = 0
    spec: str = "3.34"  # the shapes answered in: SPECS
    accept_language: list[str] = field(default_factory=list)
    _series_body: bytes | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    signed: list[str] = field(default_factory=list)  # paths whose signature verified
    # Fees beyond the series' own, as Kalshi's spec 3.34 shapes them (dicts as sent):
    series_fee_changes: list[dict[str, Any]] = field(default_factory=list)  # SeriesFeeChange
    event_fee_changes: list[dict[str, Any]] = field(default_factory=list)  # EventFeeChange
    event_fee_overrides: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # event -> (type, multiplier)
    # events whose markets are mutually exclusive (3.34 EventData ``mutually_exclusive`` true,
    # ``collateral_return_type`` MECNET); the others answer false
    exclusive_events: set[str] = field(default_factory=set)
    down: set[str] = field(default_factory=set)  # paths (after /trade-api/v2) that answer 503 every time
    # GET /exchange/status: shards not trading (spec 3.34 ``exchange_index_statuses``); the listed
    # shards; ``exchange_status=False``: 404, as a server without the endpoint
    halted_shards: set[int] = field(default_factory=set)
    shards: tuple[int, ...] = (0, 1)
    exchange_status: bool = True
    prints: list[dict[str, Any]] = field(default_factory=list)  # GET /markets/trades (add_print)
    historical_prints: list[dict[str, Any]] = field(default_factory=list)  # GET /historical/trades
    candles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # ticker -> candlesticks (add_candle)
    _faults: deque = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def with_markets(cls, n: int = 12, seed: int = 1, **kw: Any) -> FakeKalshi:
        """``n`` active binary markets with two-sided books; every third on the 0.1-cent grid
        (sub-penny), sizes fractional. Two series (fee multipliers 1 and 0.5)."""
        r = random.Random(seed)
        ms = []
        for i in range(n):
            if i % 3 == 2:
                tick = Decimal("0.001")
                bid = Decimal(r.randint(100, 850)) * tick
                ask = bid + Decimal(r.randint(1, 40)) * tick
            else:
                tick = Decimal("0.01")
                bid = Decimal(r.randint(10, 85)) * tick
                ask = bid + Decimal(r.randint(1, 4)) * tick
            ms.append(
                FakeMarket(
                    ticker=f"KXFAKE-26JAN05-T{i:02d}",
                    bid=bid,
                    ask=ask,
                    tick=tick,
                    size=Decimal("10.00") + Decimal(i) / 4,
                )
            )
        st = cls(markets=ms, **kw)
        st.add_series("KXFAKE", "quadratic", Decimal("1"), events=["KXFAKE-26JAN05"])
        return st

    def add_series(
        self, ticker: str, fee_type: str = "quadratic", multiplier: Decimal | str = "1", events: list[str] = ()
    ) -> None:
        self.series[ticker] = FakeSeries(ticker, fee_type, Decimal(multiplier))
        for e in events:
            self.event_series[e] = ticker

    def lifecycle_zoo(self) -> None:
        """Add a market in every lifecycle status, a sub-penny tail market (0.0030 / 0.9930
        prices), a quiet market, a scalar market, and a second series with another fee."""
        self.add_series("KXZOO", "quadratic_with_maker_fees", "0.5", events=["KXZOO-26JAN05"])
        for s in LIFECYCLE:
            result = {"determined": "yes", "amended": "no", "finalized": "yes", "disputed": "yes"}.get(s, "")
            self.markets.append(
                FakeMarket(
                    ticker=f"KXZOO-26JAN05-{s.upper()[:4]}",
                    bid=Decimal("0.40"),
                    ask=Decimal("0.43"),
                    status=s,
                    result=result,
                )
            )
        self.markets.append(
            FakeMarket(
                ticker="KXZOO-26JAN05-TAIL",
                bid=Decimal("0.0030"),
                ask=Decimal("0.0050"),
                tick=Decimal("0.001"),
                size=Decimal("2.50"),
            )
        )
        self.markets.append(
            FakeMarket(
                ticker="KXZOO-26JAN05-HIGH",
                bid=Decimal("0.9930"),
                ask=Decimal("0.9950"),
                tick=Decimal("0.001"),
                size=Decimal("0.75"),
            )
        )
        self.markets.append(FakeMarket(ticker="KXZOO-26JAN05-QUIET", bid=None, ask=None))
        self.add_series("KXSCAL", "flat", "2", events=["KXSCAL-26JAN05"])
        self.markets.append(
            FakeMarket(ticker="KXSCAL-26JAN05-S1", bid=Decimal("0.55"), ask=Decimal("0.58"), market_type="scalar")
        )
        self.markets.append(
            FakeMarket(
                ticker="KXSCAL-26JAN05-S2",
                bid=None,
                ask=None,
                market_type="scalar",
                status="finalized",
                result="scalar",
                settlement_value=Decimal("0.6250"),
            )
        )

    def add_print(
        self,
        ticker: str,
        price: str,
        count: str = "1.00",
        *,
        ts_ms: int | None = None,
        side: str = "yes",
        book_side: str = "ask",
        block: bool = False,
        trade_id: str | None = None,
        historical: bool = False,
        old: bool = False,
    ) -> dict[str, Any]:
        """A public print as spec 3.34's ``Trade`` writes it (``old``: as 3.20 did, without
        ``taker_outcome_side``, ``taker_book_side`` and ``is_block_trade``), served by GET
        /markets/trades (``historical``: GET /historical/trades). Returns it (tests may spoil it)."""
        ts = int(time.time() * 1000) if ts_ms is None else ts_ms
        when = datetime.fromtimestamp(ts // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ts % 1000:03d}Z"
        rows = self.historical_prints if historical else self.prints
        t: dict[str, Any] = {
            "trade_id": trade_id or f"print-{len(self.prints) + len(self.historical_prints) + 1}",
            "ticker": ticker,
            "count_fp": fp(count),
            "yes_price_dollars": d4(price),
            "no_price_dollars": d4(1 - Decimal(price)),
            "taker_side": side,
            "created_time": when,
        }
        if not old:
            t.update(taker_outcome_side=side, taker_book_side=book_side, is_block_trade=block)
        with self.lock:
            rows.append(t)
        return t

    def add_candle(
        self,
        ticker: str,
        end_period_ts: int,
        close: str,
        *,
        volume: str = "10.00",
        bid: str | None = None,
        ask: str | None = None,
    ) -> dict[str, Any]:
        """A candlestick (spec 3.34 ``MarketCandlestick``; an archived market's in the historical
        shape) ending at ``end_period_ts`` (epoch seconds) whose last trade was ``close``."""
        b, a = d4(bid or close), d4(ask or close)
        c = {
            "end_period_ts": end_period_ts,
            "yes_bid": {"open_dollars": b, "low_dollars": b, "high_dollars": b, "close_dollars": b},
            "yes_ask": {"open_dollars": a, "low_dollars": a, "high_dollars": a, "close_dollars": a},
            "price": {
                "open_dollars": d4(close),
                "low_dollars": d4(close),
                "high_dollars": d4(close),
                "close_dollars": d4(close),
                "mean_dollars": d4(close),
                "previous_dollars": d4(close),
            },
            "volume_fp": fp(volume),
            "open_interest_fp": fp(volume),
        }
        with self.lock:
            self.candles.setdefault(ticker, []).append(c)
        return c

    def fail_next(self, *faults: str) -> None:
        """Queue faults: each answers one request, in order ("ok": that request is answered normally)."""
        for f in faults:
            if f not in FAULTS:
                raise ValueError(f"unknown fault {f!r}; one of {FAULTS}")
        with self.lock:
            self._faults.extend(faults)

    def take_fault(self) -> str | None:
        with self.lock:
            return self._faults.popleft() if self._faults else None

    def market(self, ticker: str) -> FakeMarket | None:
        return next((m for m in self.markets if m.ticker == ticker), None)

    def combo_rows(self, now: datetime) -> list[dict[str, Any]]:
        rows = []
        for i in range(self.combos):
            m = FakeMarket(
                ticker=f"KXMVECROSSCATEGORY-S2026-{i:05X}", bid=None, ask=None, event="KXMVECROSSCATEGORY-S2026"
            ).to_json(now, self.legacy, self.spec)
            if self.spec != "3.20":  # combos: their own shard and grid (3.34)
                m["exchange_index"] = 1
                m["price_level_structure"] = "center_deci_edge_centi_cent"
                m["price_ranges"] = [
                    {"start": "0.0000", "end": "0.0100", "step": "0.0001"},
                    {"start": "0.0100", "end": "0.9900", "step": "0.0010"},
                    {"start": "0.9900", "end": "1.0000", "step": "0.0001"},
                ]
            m["mve_collection_ticker"] = "KXMVECROSSCATEGORY"
            m["mve_selected_legs"] = [
                {"event_ticker": "KXFAKE-26JAN05", "market_ticker": "KXFAKE-26JAN05-T00", "side": "yes"}
            ]
            rows.append(m)
        return rows

    def bad_row_list(self, first: dict[str, Any]) -> list[Any]:
        rows: list[Any] = []
        b = self.bad_rows
        if "ask-below-bid" in b:
            rows.append({**first, "ticker": "KXBAD-ASKBID", "yes_bid_dollars": "0.6000", "yes_ask_dollars": "0.4000"})
        if "price-over-1" in b:
            rows.append({**first, "ticker": "KXBAD-PRICE", "yes_ask_dollars": "1.2000"})
        if "missing-ticker" in b:
            rows.append({k: v for k, v in first.items() if k != "ticker"})
        if "settled-no-result" in b:
            rows.append({**first, "ticker": "KXBAD-SETTLED", "status": "finalized", "result": ""})
        if "volume-1e30" in b:
            rows.append({**first, "ticker": "KXBAD-VOLUME", "volume_fp": "1" + "0" * 30 + ".00"})
        if "close-time-1e30" in b:
            rows.append({**first, "ticker": "KXBAD-CLOSE", "close_time": 10**30})
        if "surrogate-ticker" in b:
            rows.append({**first, "ticker": "KXBAD-\ud800"})
        if "nul-ticker" in b:
            rows.append({**first, "ticker": "KXBAD-\x00NUL"})
        if "long-ticker" in b:
            rows.append({**first, "ticker": "KX" + "L" * 4998})
        if "traversal-ticker" in b:
            rows.append({**first, "ticker": "KX/../../portfolio/orders"})
        if "dict-ticker" in b:
            rows.append({**first, "ticker": {"nested": "KXBAD"}})
        if "null-row" in b:
            rows.append(None)
        if "number-row" in b:
            rows.append(42)
        if "string-row" in b:
            rows.append("KXBAD-STRING")
        if "legacy-mismatch" in b:
            rows.append({**first, "ticker": "KXBAD-LEGACY", "yes_bid": 41, "yes_bid_dollars": first["yes_bid_dollars"]})
        if "legacy-garbage" in b:
            rows.append({**first, "ticker": "KXBAD-FORTY", "yes_bid": "forty"})
        if "thrice-ticker" in b:  # one market three times in one page, each copy its own quote
            rows += [{**first, "ticker": "KXBAD-THRICE", "yes_bid_dollars": p} for p in ("0.0100", "0.0200", "0.0300")]
        if "twice-identical" in b:  # one market twice in one page, the copies the same
            rows += [{**first, "ticker": "KXBAD-TWICE"}] * 2
        return rows

    def market_rows(self, now: datetime, q: dict[str, list[str]]) -> list[Any] | None:
        """Markets as GET /markets lists them for query ``q``; None for a query Kalshi refuses."""
        one = {k: v[0] for k, v in q.items()}
        if "min_updated_ts" in one and set(one) - {"min_updated_ts", "mve_filter", "limit", "cursor"}:
            return None  # "Incompatible with all filters besides mve_filter=exclude"
        wanted = _STATUS_FILTER.get(one.get("status", ""))
        if one.get("status") and wanted is None:
            return None
        tickers = set(one["tickers"].split(",")) if one.get("tickers") else None
        since_ms = int(one["min_updated_ts"]) * 1000 if one.get("min_updated_ts") else None
        rows: list[Any] = []
        mve = one.get("mve_filter", "")
        if mve != "exclude" and wanted in (None, ("active",)) and since_ms is None:
            rows += [c for c in self.combo_rows(now) if tickers is None or c["ticker"] in tickers]
        if mve != "only":
            for m in self.markets:
                if m.archived or (wanted is not None and m.status not in wanted):
                    continue
                if tickers is not None and m.ticker not in tickers:
                    continue
                if one.get("event_ticker") and m.event != one["event_ticker"]:
                    continue
                if one.get("series_ticker") and self.event_series.get(m.event) != one["series_ticker"]:
                    continue
                if since_ms is not None and m.updated_ms <= since_ms:
                    continue
                rows.append(m.to_json(now, self.legacy, self.spec))
            real = [r for r in rows if isinstance(r, dict) and "mve_collection_ticker" not in r]
            if real and self.bad_rows and tickers is None and since_ms is None:
                rows += self.bad_row_list(real[0])
        return rows

    def series_body(self) -> bytes:
        """GET /series's answer: every series, and ``bulk_series`` more (made once)."""
        real = [s.to_json(self.spec) for s in self.series.values()]
        if not self.bulk_series:
            return json.dumps({"series": real}, cls=_Enc).encode()
        if self._series_body is None:
            pad = "Settled on the official source named in the contract terms. " * 18
            bulk = [
                {**FakeSeries(f"KXBULK{i:05d}", "quadratic", Decimal("1")).to_json(self.spec), "contract_url": pad}
                for i in range(self.bulk_series)
            ]
            self._series_body = json.dumps({"series": bulk}, cls=_Enc).encode()
        head = json.dumps(real, cls=_Enc).encode()[1:-1]  # the real series first, then the bulk
        opening = b'{"series": ['
        return opening + head + (b", " if head else b"") + self._series_body[len(opening) :]

    def event_json(self, event: str) -> dict[str, Any]:
        out = {
            "event_ticker": event,
            "series_ticker": self.event_series[event],
            "title": f"Event {event}",
            "sub_title": "",
            "mutually_exclusive": False,
            "collateral_return_type": "binary",
            "available_on_brokers": False,
            "product_metadata": None,
        }
        if self.spec != "3.20":  # spec 3.34's EventData: no available_on_brokers; netting type "" or
            # MECNET / DIRECNET; the official sources (nullable, always present); the exchange shard
            del out["available_on_brokers"]
            out["collateral_return_type"] = ""
            out["settlement_sources"] = []
            out["exchange_index"] = 0
        if event in self.exclusive_events:  # at most one market resolves YES
            out["mutually_exclusive"] = True
            out["collateral_return_type"] = "MECNET" if self.spec != "3.20" else "binary"
        if event in self.event_fee_overrides:  # (3.34 EventData: the override in force, nullable)
            out["fee_type_override"], out["fee_multiplier_override"] = self.event_fee_overrides[event]
        return out

    def verify(self, headers: Any, raw_path: str) -> str | None:
        """None when the request carries a valid signature; else Kalshi's kind of complaint."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        kid, ts, sig = (
            headers.get("KALSHI-ACCESS-KEY"),
            headers.get("KALSHI-ACCESS-TIMESTAMP"),
            headers.get("KALSHI-ACCESS-SIGNATURE"),
        )
        if not (kid and ts and sig):
            return "authentication required: missing KALSHI-ACCESS headers"
        if self.public_key is None or kid != self.key_id:
            return "unknown API key"
        if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 30_000:
            return "request timestamp outside the allowed window"
        from cryptography.hazmat.primitives.asymmetric import ed25519

        text = (ts + "GET" + raw_path.split("?", 1)[0]).encode()
        try:
            if isinstance(self.public_key, ed25519.Ed25519PublicKey):  # the same text, signed with Ed25519
                self.public_key.verify(base64.b64decode(sig), text)
            else:
                self.public_key.verify(
                    base64.b64decode(sig),
                    text,
                    padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
                    hashes.SHA256(),
                )
        except (InvalidSignature, ValueError):
            return "invalid signature"
        return None


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeKalshi/2.0"
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: with Nagle's algorithm on, the body waited for
    # the client's delayed ACK (about 40 ms a request on loopback)
    disable_nagle_algorithm = True
    state: FakeKalshi  # set per server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, cls=_Enc).encode()
        self.send_response(code)
        hs = {"Content-Type": "application/json", **(headers or {})}
        for k, v in hs.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self) -> None:
        self.state.requests.append((self.command, self.path))
        self._json(405, {"code": "method_not_allowed", "message": "fake server is read-only"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def _fault(self, fault: str) -> bool:
        st = self.state
        if fault == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return True
        if fault == "slow":
            time.sleep(st.slow_seconds)
            return False
        if fault == "429":
            self._json(429, {"error": "too many requests"})
        elif fault == "429-retry-after":
            self._json(429, {"error": "too many requests"}, {"Retry-After": "1"})
        elif fault in ("500", "502", "503"):
            self._json(int(fault), {"code": "internal", "message": f"fault {fault}"})
        elif fault == "401":
            self._json(401, {"code": "authentication_error", "message": "API key revoked"})
        elif fault == "403":
            self._json(403, {"error": "forbidden: account not enabled for this endpoint"})
        elif fault == "malformed-json":
            self._json(200, b'{"markets": [{"ticker": "X", ')
        elif fault == "gzip-garbage":
            self._json(200, os.urandom(512), {"Content-Encoding": "gzip"})
        elif fault == "deep-json":
            self._json(200, b'{"markets": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
        elif fault == "html-200":
            self._json(200, b"<!DOCTYPE html><html><body>Maintenance</body></html>", {"Content-Type": "text/html"})
        elif fault == "huge-body":
            pad = b" " * st.huge_body_bytes
            self._json(200, b'{"markets": [], "cursor": ""' + pad + b"}")
        else:
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802
        st = self.state
        st.requests.append(("GET", self.path))
        if "Accept-Language" in self.headers:
            st.accept_language.append(self.headers["Accept-Language"])
        fault = st.take_fault()
        if fault and self._fault(fault):
            return
        url = urlparse(self.path)
        raw = url.path[len(PREFIX) :] if url.path.startswith(PREFIX) else None
        q = parse_qs(url.query)
        now = datetime.now(UTC)
        if raw is None:
            return self._json(404, {"code": "not_found", "message": "no such endpoint"})
        parts = [unquote(p) for p in raw.split("/")]  # escaped segments stay whole: %2F is no separator
        if raw in st.down:
            return self._json(503, {"code": "service_unavailable", "message": "down for the test"})
        if raw == "/markets":
            rows = st.market_rows(now, q)
            if rows is None:
                return self._json(400, {"code": "bad_request", "message": "incompatible filters"})
            start = int(q.get("cursor", ["0"])[0] or 0)
            limit = min(int(q.get("limit", [str(st.page_size)])[0]), st.page_size)
            page = rows[start : start + limit]
            nxt = "" if start + limit >= len(rows) else str(start + limit)
            if st.repeat_cursor and nxt:
                nxt = str(limit)  # the second page forever
            return self._json(200, {"markets": page, "cursor": nxt})
        if raw == "/exchange/status":
            if not st.exchange_status:
                return self._json(404, {"code": "not_found", "message": "no such endpoint"})
            statuses = [  # ExchangeIndexStatus (spec 3.34): every field required
                {
                    "exchange_index": i,
                    "description": "combos" if i == 1 else f"shard {i}",
                    "exchange_active": True,
                    "trading_active": i not in st.halted_shards,
                    "intra_exchange_transfers_active": True,
                }
                for i in st.shards
            ]
            body = {
                "exchange_active": True,
                "trading_active": 0 not in st.halted_shards,
                "intra_exchange_transfers_active": True,
                "exchange_index_statuses": statuses,
            }
            return self._json(200, body)
        if raw in ("/markets/trades", "/historical/trades"):
            rows = st.historical_prints if raw == "/historical/trades" else st.prints
            one = {k: v[0] for k, v in q.items()}
            try:
                lo = int(one["min_ts"]) * 1000 if one.get("min_ts") else None
                hi = int(one["max_ts"]) * 1000 if one.get("max_ts") else None
            except ValueError:
                return self._json(400, {"code": "bad_request", "message": "min_ts and max_ts are unix seconds"})
            block = one.get("is_block_trade")
            picked = []
            for t in rows:
                ts = _print_ms(t)
                if one.get("ticker") and t.get("ticker") != one["ticker"]:
                    continue
                if (lo is not None and ts is not None and ts < lo) or (hi is not None and ts is not None and ts > hi):
                    continue
                if block is not None and str(t.get("is_block_trade")).lower() != block:
                    continue
                picked.append(t)
            picked.sort(key=lambda t: _print_ms(t) or 0, reverse=True)  # newest first
            start = int(q.get("cursor", ["0"])[0] or 0)
            limit = min(int(q.get("limit", ["100"])[0]), 1000, st.page_size)
            nxt = "" if start + limit >= len(picked) else str(start + limit)
            return self._json(200, {"trades": picked[start : start + limit], "cursor": nxt})
        if raw == "/historical/markets":
            one = {k: v[0] for k, v in q.items()}
            tickers = set(one["tickers"].split(",")) if one.get("tickers") else None
            rows = [
                m.to_json(now, st.legacy, st.spec)
                for m in st.markets
                if m.archived and (tickers is None or m.ticker in tickers)
            ]
            start = int(q.get("cursor", ["0"])[0] or 0)
            limit = min(int(q.get("limit", ["100"])[0]), 1000, st.page_size)
            nxt = "" if start + limit >= len(rows) else str(start + limit)
            return self._json(200, {"markets": rows[start : start + limit], "cursor": nxt})
        historical_candles = len(parts) == 5 and parts[1:3] == ["historical", "markets"] and parts[4] == "candlesticks"
        if historical_candles or (
            len(parts) == 6 and parts[1] == "series" and parts[3] == "markets" and parts[5] == "candlesticks"
        ):
            ticker = parts[3] if historical_candles else parts[4]
            m = st.market(ticker)
            if m is None or m.archived != historical_candles:
                return self._json(404, {"code": "not_found", "message": "market not found"})
            if not historical_candles and st.event_series.get(m.event) != parts[2]:
                return self._json(404, {"code": "not_found", "message": "market not in that series"})
            one = {k: v[0] for k, v in q.items()}
            try:
                lo, hi, period = int(one["start_ts"]), int(one["end_ts"]), int(one["period_interval"])
            except (KeyError, ValueError):
                return self._json(
                    400, {"code": "bad_request", "message": "start_ts, end_ts and period_interval needed"}
                )
            if period not in (1, 60, 1440):
                return self._json(400, {"code": "bad_request", "message": "period_interval is 1, 60 or 1440"})
            got = [c for c in st.candles.get(ticker, []) if lo <= c.get("end_period_ts", 0) <= hi]
            if historical_candles:
                got = [_historical_candle(c) for c in got]
            return self._json(200, {"ticker": ticker, "candlesticks": got})
        if raw == "/account/limits":
            if st.account_limits is None:
                return self._json(404, {"code": "not_found", "message": "no such endpoint"})
            why = st.verify(self.headers, url.path)  # account/* is always signed
            if why is not None:
                return self._json(401, {"code": "authentication_error", "message": why})
            st.signed.append(url.path)
            if st.spec == "3.20":
                return self._json(200, st.account_limits)
            return self._json(200, {"grants": [], **st.account_limits})  # 3.34: the usage grants (none)
        if raw == "/markets/orderbooks" and not st.batch_books:
            return self._json(404, {"code": "not_found", "message": "no such endpoint"})
        if raw == "/markets/orderbooks" or (len(parts) == 4 and parts[1] == "markets" and parts[3] == "orderbook"):
            if st.require_signature:
                why = st.verify(self.headers, url.path)
                if why is not None:
                    return self._json(401, {"code": "authentication_error", "message": why})
                st.signed.append(url.path)
            if raw == "/markets/orderbooks":
                tickers = q.get("tickers", [])
                if not 1 <= len(tickers) <= 100:
                    return self._json(400, {"code": "bad_request", "message": "1 to 100 tickers"})
                books = []
                for t in tickers:
                    m = st.market(t)
                    if m is not None and not m.archived:
                        books.append(
                            {
                                "ticker": t,
                                "orderbook_fp": {"yes_dollars": [], "no_dollars": []}
                                if st.empty_books
                                else m.orderbook(st.legacy),
                            }
                        )
                return self._json(200, {"orderbooks": books})
            m = st.market(parts[2])
            if m is None or m.archived:
                return self._json(404, {"code": "not_found", "message": "market not found"})
            return self._json(
                200,
                {"orderbook_fp": {"yes_dollars": [], "no_dollars": []} if st.empty_books else m.orderbook(st.legacy)},
            )
        if len(parts) == 3 and parts[1] == "markets":
            m = st.market(parts[2])
            if m is None or m.archived:
                return self._json(404, {"code": "not_found", "message": "market not found"})
            return self._json(200, {"market": m.to_json(now, st.legacy, st.spec)})
        if len(parts) == 4 and parts[1:3] == ["historical", "markets"]:
            m = st.market(parts[3])
            if m is None or not m.archived:
                return self._json(404, {"code": "not_found", "message": "market not found"})
            return self._json(200, {"market": m.to_json(now, st.legacy, st.spec)})
        if raw == "/series/fee_changes":
            return self._json(200, {"series_fee_change_arr": list(st.series_fee_changes)})
        if raw == "/events/fee_changes":
            start = int(q.get("cursor", ["0"])[0] or 0)
            limit = min(int(q.get("limit", ["100"])[0]), 1000, st.page_size)
            rows = st.event_fee_changes
            nxt = "" if start + limit >= len(rows) else str(start + limit)
            return self._json(200, {"event_fee_changes": rows[start : start + limit], "cursor": nxt})
        if raw == "/events":
            status = q.get("status", [""])[0]
            live = {
                m.event
                for m in st.markets
                if not m.archived and (not status or m.status in _STATUS_FILTER.get(status, ()))
            }
            rows = [st.event_json(e) for e in sorted(live) if e in st.event_series]
            start = int(q.get("cursor", ["0"])[0] or 0)
            limit = min(int(q.get("limit", ["200"])[0]), 200, st.page_size)
            nxt = "" if start + limit >= len(rows) else str(start + limit)
            return self._json(200, {"events": rows[start : start + limit], "cursor": nxt})
        if raw == "/series":
            return self._json(200, st.series_body())
        if len(parts) == 3 and parts[1] == "events":
            series = st.event_series.get(parts[2])
            if series is None:
                return self._json(404, {"code": "not_found", "message": "event not found"})
            return self._json(200, {"event": st.event_json(parts[2]), "markets": []})
        if len(parts) == 3 and parts[1] == "series":
            s = st.series.get(parts[2])
            if s is None:
                return self._json(404, {"code": "not_found", "message": "series not found"})
            return self._json(200, {"series": s.to_json(st.spec)})
        return self._json(404, {"code": "not_found", "message": "no such endpoint"})


def _print_ms(t: Any) -> int | None:
    """A served print's ``created_time`` in epoch ms (None when a test spoiled it)."""
    try:
        return int(datetime.fromisoformat(t["created_time"].replace("Z", "+00:00")).timestamp() * 1000)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _historical_candle(c: dict[str, Any]) -> dict[str, Any]:
    """A candlestick as GET /historical/markets/{t}/candlesticks writes it (``MarketCandlestickHistorical``)."""

    def plain(d: dict[str, Any]) -> dict[str, Any]:
        return {k.removesuffix("_dollars"): v for k, v in d.items()}

    return {
        "end_period_ts": c["end_period_ts"],
        "yes_bid": plain(c["yes_bid"]),
        "yes_ask": plain(c["yes_ask"]),
        "price": plain(c["price"]),
        "volume": c["volume_fp"],
        "open_interest": c["open_interest_fp"],
    }


class _HTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (Kakashi refusing a body over its cap) is what a real
        server sees every day: not printed. Anything else is, as ``socketserver`` does."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeKalshiServer:
    """Start with ``with FakeKalshiServer(state) as srv: srv.base_url``."""

    def __init__(self, state: FakeKalshi | None = None, port: int = 0) -> None:
        self.state = state or FakeKalshi.with_markets()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = _HTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{PREFIX}"

    def start(self) -> FakeKalshiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeKalshiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_test_key(directory: str | os.PathLike[str], key_id: str = "test-key-id", kind: str = "rsa") -> tuple[str, Any]:
    """A throwaway key (``kind``: "rsa", "ed25519", or "ec" for a kind Kalshi does not take)
    written to ``directory/kalshi.pem`` with mode 0600: (path, public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    key: Any
    if kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif kind == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = os.path.join(os.fspath(directory), "kalshi.pem")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return path, key.public_key()


def main() -> None:
    ap = argparse.ArgumentParser(description="A Kalshi-compatible server on 127.0.0.1 for demos")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--markets", type=int, default=12)
    ap.add_argument("--combos", type=int, default=0, help="combo markets hidden by mve_filter=exclude")
    ap.add_argument("--spec", choices=SPECS, default=SPECS[0], help="answer in the shapes of this Kalshi spec")
    ap.add_argument("--no-signature", action="store_true", help="serve order books without signed headers")
    ap.add_argument("--ed25519", action="store_true", help="make the --key-dir key an Ed25519 key (default RSA)")
    ap.add_argument(
        "--key-dir",
        metavar="DIR",
        help="make a throwaway API key in DIR/kalshi.pem (0600) that "
        "this server accepts, and print the two variables that make Kakashi sign with it",
    )
    args = ap.parse_args()
    st = FakeKalshi.with_markets(args.markets, combos=args.combos, page_size=1000, spec=args.spec)
    st.lifecycle_zoo()
    st.require_signature = not args.no_signature
    srv = FakeKalshiServer(st, port=args.port).start()
    print(f"fake Kalshi at {srv.base_url} (Ctrl-C to stop)", flush=True)
    if args.key_dir:
        st.key_id = st.key_id or "demo-key-id"
        path, st.public_key = make_test_key(args.key_dir, st.key_id, "ed25519" if args.ed25519 else "rsa")
        print(f"export KAKASHI_KALSHI_KEY_ID={st.key_id} KAKASHI_KALSHI_KEY_FILE={path}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
