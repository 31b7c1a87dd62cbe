"""Read-only Kalshi Trade API v2 client (httpx) and the Kalshi market-data source.

The client has exactly one way to talk to Kalshi: ``_get``. There is no method that
sends anything but GET, so Kakashi cannot place, amend or cancel an order.

Retries: 429, 5xx, timeouts and dropped connections are retried a bounded number of
times with exponential backoff and full jitter, honouring ``Retry-After`` (capped).
Any other failure raises ``KalshiHTTPError`` with one clear line.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from kakashi_tui.adapters.source import FetchBatch, RawRow
from kakashi_tui.core.models import parse_utc_ms
from kakashi_tui.core.money import ONE, round_ask, round_bid

PRODUCTION_BASE = "https://api.elections.kalshi.com/trade-api/v2"
DEMO_BASE = "https://demo-api.kalshi.co/trade-api/v2"
RETRY_STATUS = {429, 500, 502, 503, 504}


class KalshiHTTPError(Exception):
    """A failure the client will not (or can no longer) retry."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, dt.timestamp() - time.time())


class KalshiClient:
    def __init__(
        self,
        base_url: str = PRODUCTION_BASE,
        timeout: float = 10.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        retry_after_cap: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.requests_made = 0
        self.retries_made = 0
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport,
            headers={"Accept": "application/json", "User-Agent": "kakashi-paper/0.1 (read-only)"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "KalshiClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the only request method ---------------------------------------------------------
    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        attempt = 0
        while True:
            self.requests_made += 1
            wait: float | None = None
            try:
                resp = self._http.get(path, params={k: v for k, v in (params or {}).items() if v is not None})
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as e:
                problem = f"{e.__class__.__name__} on GET {path}"
            else:
                if resp.status_code == 200:
                    try:
                        body = resp.json()
                    except ValueError as e:
                        raise KalshiHTTPError(f"malformed JSON from GET {path}", 200) from e
                    if not isinstance(body, dict):
                        raise KalshiHTTPError(f"unexpected response shape from GET {path}", 200)
                    return body
                problem = f"HTTP {resp.status_code} on GET {path}"
                if resp.status_code not in RETRY_STATUS:
                    raise KalshiHTTPError(f"{problem}: {_error_message(resp)}", resp.status_code)
                ra = _retry_after_s(resp.headers.get("Retry-After"))
                if ra is not None:
                    wait = min(ra, self.retry_after_cap)
            if attempt >= self.max_retries:
                raise KalshiHTTPError(f"{problem}; gave up after {attempt + 1} attempts")
            if wait is None:
                wait = self._rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** attempt))
            attempt += 1
            self.retries_made += 1
            self._sleep(wait)

    # -- endpoints ------------------------------------------------------------------------
    def iter_markets(self, status: str | None = "open", tickers: list[str] | None = None,
                     limit: int = 1000, max_pages: int = 100) -> Iterator[dict[str, Any]]:
        """All markets across cursor pages; stops on an empty or a repeated cursor."""
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            body = self._get("/markets", {"limit": limit, "cursor": cursor, "status": status,
                                          "tickers": ",".join(tickers) if tickers else None})
            page = body.get("markets") or []
            if not isinstance(page, list):
                raise KalshiHTTPError("unexpected response shape from GET /markets: 'markets' is not a list")
            yield from page
            cursor = body.get("cursor") or None
            if not cursor or cursor in seen:
                return
            seen.add(cursor)

    def get_market(self, ticker: str) -> dict[str, Any]:
        body = self._get(f"/markets/{ticker}")
        m = body.get("market")
        if not isinstance(m, dict):
            raise KalshiHTTPError(f"unexpected response shape from GET /markets/{ticker}")
        return m

    def get_orderbook(self, ticker: str, depth: int | None = None) -> dict[str, Any]:
        body = self._get(f"/markets/{ticker}/orderbook", {"depth": depth})
        # Current docs wrap the book as `orderbook_fp` (dollar strings); older responses as `orderbook`.
        ob = body.get("orderbook_fp", body.get("orderbook"))
        if ob is None:
            return {}
        if not isinstance(ob, dict):
            raise KalshiHTTPError(f"unexpected response shape from GET /markets/{ticker}/orderbook")
        return ob


def _error_message(resp: httpx.Response) -> str:
    try:
        err = resp.json().get("error", {})
        return str(err.get("message") or err.get("code") or resp.reason_phrase)[:200]
    except Exception:
        return resp.reason_phrase or "error"


# -- wire format -> Kakashi units (the one conversion, here at the edge) -------------------
_STATUS = {"initialized": "unopened", "unopened": "unopened", "active": "open", "open": "open",
           "closed": "closed", "determined": "settled", "settled": "settled", "finalized": "settled"}


def _price(d: dict[str, Any], name: str) -> Any:
    """A quote as a probability: ``<name>_dollars`` ("0.4200") preferred, else cents (42).

    Returns the raw value when it cannot be parsed, so validation rejects the row with it.
    """
    raw = d.get(f"{name}_dollars")
    if raw is not None and raw != "":
        try:
            return Decimal(str(raw))
        except InvalidOperation:
            return raw
    raw = d.get(name)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        return raw
    try:
        return Decimal(str(raw)) / 100
    except InvalidOperation:
        return raw


def _qty(v: Any) -> Any:
    if isinstance(v, str):
        try:
            d = Decimal(v)
        except InvalidOperation:
            return v
        return int(d) if d == d.to_integral_value() else v
    return v


def _levels(ob: dict[str, Any], side: str) -> list[dict[str, Any]]:
    """Kalshi lists bids ascending (best last) as [cents, qty] or ["0.4200", qty]. -> best first."""
    dollars = ob.get(f"{side}_dollars")
    if dollars:
        out = [{"price": Decimal(str(p)), "qty": _qty(q)} for p, q in dollars]
    else:
        out = [{"price": Decimal(str(p)) / 100, "qty": _qty(q)} for p, q in (ob.get(side) or [])]
    merged: dict[Decimal, Any] = {}
    for lv in out:  # sub-cent levels round conservatively: bids down to the cent
        p = round_bid(lv["price"])
        merged[p] = merged.get(p, 0) + lv["qty"] if isinstance(lv["qty"], int) else lv["qty"]
    return [{"price": p, "qty": q} for p, q in sorted(merged.items(), reverse=True)]


def market_row(m: dict[str, Any]) -> dict[str, Any]:
    status = str(m.get("status") or "")
    result = m.get("result") or None
    event = str(m.get("event_ticker") or "")
    return {
        "ticker": m.get("ticker") or "",
        "title": str(m.get("title") or ""),
        "series": event.split("-", 1)[0] if event else "",
        "event_ticker": event,
        "status": _STATUS.get(status, status),
        "open_ts": _ts(m.get("open_time")),
        "close_ts": _ts(m.get("close_time")),
        "result": result if result in ("yes", "no") else (None if result in (None, "") else result),
    }


def _ts(v: Any) -> Any:
    try:
        return parse_utc_ms(v)
    except ValueError:
        return v


def snapshot_row(m: dict[str, Any], ts: int, ob: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Top of book from the market object (and depth from its orderbook, when fetched).

    A 0 bid / 100 ask (or a missing quote) is no resting order, not a price. Sub-cent
    quotes round conservatively to the cent: bids down, asks up.
    """
    bid = _price(m, "yes_bid")
    ask = _price(m, "yes_ask")
    last = _price(m, "last_price")
    if isinstance(bid, Decimal):
        bid = None if bid == 0 else round_bid(bid)
    if isinstance(ask, Decimal):
        ask = None if ask == ONE else round_ask(ask)
    if isinstance(last, Decimal):
        last = None if last in (0, ONE) else round_bid(last)
    row: dict[str, Any] = {"ticker": m.get("ticker") or "", "ts": ts, "yes_bid": bid, "yes_ask": ask,
                           "last": last, "volume": m.get("volume") or 0}
    if ob:
        yes, no = _levels(ob, "yes"), _levels(ob, "no")
        row["yes_bids"], row["no_bids"] = yes, no
        # The book is the fresher truth for the top: take it from the levels.
        row["yes_bid"] = yes[0]["price"] if yes else None
        row["yes_ask"] = ONE - no[0]["price"] if no else None
    if m.get("status") not in ("active", "open", None):
        return None if row["yes_bid"] is None and row["yes_ask"] is None else row
    return row


class KalshiSource:
    """Polls Kalshi's public market data. Depth is fetched for the markets that have a p_hat.

    It lists the open markets (or the operator's tickers), plus the markets ``watch_for`` names
    (the engine's open positions) that the listing left out: a held market that closes must
    still be seen until it settles, or its position would never be paid out.
    """

    name = "kalshi"

    def __init__(self, client: KalshiClient, tickers: list[str] | None = None,
                 depth_for: Callable[[], set[str]] | None = None, clock: Callable[[], int] | None = None) -> None:
        self.client = client
        self.tickers = tickers or None
        self.depth_for = depth_for or (lambda: set())
        self.watch_for: Callable[[], set[str]] = lambda: set()
        self._clock = clock or (lambda: int(time.time() * 1000))

    def now_ms(self) -> int:
        return self._clock()

    def close(self) -> None:
        self.client.close()

    def fetch(self) -> FetchBatch:
        t0 = time.perf_counter()
        batch = FetchBatch()
        try:
            if self.tickers:  # the operator's list, and whatever is still held from before
                markets = list(self.client.iter_markets(status=None,
                                                        tickers=sorted(set(self.tickers) | self.watch_for())))
            else:
                markets = list(self.client.iter_markets(status="open"))
        except KalshiHTTPError as e:
            batch.errors.append(str(e))
            batch.latency_ms = (time.perf_counter() - t0) * 1000
            return batch
        if not self.tickers:
            listed = {m.get("ticker") for m in markets if isinstance(m, dict)}
            gone = sorted(self.watch_for() - listed)
            if gone:  # held, but no longer open: closed, or settled with a result
                try:
                    markets += list(self.client.iter_markets(status=None, tickers=gone))
                except KalshiHTTPError as e:
                    batch.errors.append(str(e))
        want_depth = self.depth_for()
        now = self.now_ms()
        for m in markets:
            if not isinstance(m, dict):
                batch.rows.append(RawRow(market={"ticker": "", "status": "open"}, snapshot=None, payload=m))
                continue
            ob = None
            t = m.get("ticker")
            if t and t in want_depth:
                try:
                    ob = self.client.get_orderbook(t)
                except KalshiHTTPError as e:
                    batch.errors.append(str(e))
            try:
                batch.rows.append(RawRow(market=market_row(m), snapshot=snapshot_row(m, now, ob), payload=m))
            except (InvalidOperation, TypeError, ValueError) as e:
                batch.rows.append(RawRow(market={}, snapshot=None, payload={"market": m, "orderbook": ob},
                                         reason=f"unreadable row: {e.__class__.__name__} {e}"[:200]))
        batch.latency_ms = (time.perf_counter() - t0) * 1000
        return batch
