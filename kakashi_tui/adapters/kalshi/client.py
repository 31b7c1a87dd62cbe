"""Kalshi's Trade API v2 over HTTP, read-only (httpx).

The client has exactly one way to talk to Kalshi: ``_get``. There is no method that sends
anything but GET, so Kakashi cannot place, amend or cancel an order.

Requests:
- paced by a client-side token bucket (``reads_per_s``; Kalshi's Basic tier allows 20 reads/s
  and its 429 carries no ``Retry-After``), so a tick does not burst into 429s; with a key, the
  account's own read budget (``GET /account/limits``: ``pace_from_account``) replaces it;
- signed (``KALSHI-ACCESS-*`` headers, see ``auth``) when a key is configured;
- retried a bounded number of times on 429, 5xx, timeouts and dropped connections, with
  exponential backoff and full jitter (``Retry-After`` honoured, capped); 401/403 is one
  clear line with Kalshi's own message (``KalshiAuthError``), never retried here (the source
  keeps the refusal and tries again later); any other failure raises ``KalshiHTTPError``;
- bounded: a total deadline per request (retries and waits included), a cap on the body size,
  on JSON nesting, and ``stop()`` (from another thread) ends a fetch in progress at once.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from kakashi_tui.adapters.kalshi.schemas import (
    BookEntry,
    BookList,
    Candlesticks,
    EventFeeChangesPage,
    EventsPage,
    MarketsPage,
    RowError,
    SeriesFeeChanges,
    SeriesList,
    TradesPage,
    Wire,
    _safe,
    parse,
)
from kakashi_tui.core.backoff import Backoff

PRODUCTION_BASE = "https://external-api.kalshi.com/trade-api/v2"
DEMO_BASE = "https://external-api.demo.kalshi.co/trade-api/v2"
RETRY_STATUS = {429, 500, 502, 503, 504}
AUTH_STATUS = {401, 403}
MAX_BODY_BYTES = 16 * 1024 * 1024  # a 1,000-market page is about 2 MB
ROUND_TRIPS_KEPT = 200  # the round trips the "auto" paper-order latency is the median of (issue #23)
# GET /series has no pages: one answer with every series, about 14,000 and 18 MB in 2026, and
# growing. Its cap alone is higher (the bulk listing saves thousands of one-by-one look-ups).
SERIES_MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_JSON_DEPTH = 32  # Kalshi's deepest shape (a book level) is 5 levels down
BOOKS_PER_CALL = 100  # GET /markets/orderbooks takes 1..100 tickers
TICKERS_PER_LISTING = 100
READ_COST_TOKENS = 10  # Kalshi's read bucket counts tokens; a GET costs 10 (docs "Rate limits")
MAX_READS_PER_S = 1000.0  # an account budget past this is taken as this ([kalshi] reads_per_s's ceiling)


class KalshiHTTPError(Exception):
    """A failure the client will not (or can no longer) retry. One line, no secrets."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KalshiAuthError(KalshiHTTPError):
    """401/403: Kalshi refused the key (or wants one). Never retried."""


class _Deadline(httpx.TimeoutException):
    """The request's total deadline passed."""


class KalshiStopped(KalshiHTTPError):
    """``stop()`` was called: the fetch in progress ends."""

    def __init__(self) -> None:
        super().__init__("stopped")


def _retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        x = float(value)
        return max(0.0, x) if x == x else None
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, dt.timestamp() - time.time())


def path_segment(text: str) -> str:
    """One URL path segment: everything but unreserved characters escaped (``/`` and ``..``
    included), so a ticker can never walk out of its endpoint."""
    seg = quote(text, safe="")
    return seg.replace(".", "%2E") if seg in (".", "..") or seg.strip(".") == "" else seg


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``; ``take`` waits (interruptibly) for one."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError("reads_per_s must be > 0")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self._tokens = self.burst
        self._clock = clock
        self._t = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        """Add the tokens earned since the last look, up to the burst (the lock held)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
        self._t = now

    def set(self, rate: float, burst: float) -> None:
        """A new budget from now on (the tokens held so far are kept, up to the new burst)."""
        if not rate > 0 or not burst >= 1:
            raise ValueError("a bucket needs rate > 0 and burst >= 1")
        with self._lock:
            self._refill()
            self.rate, self.burst = float(rate), float(burst)
            self._tokens = min(self._tokens, self.burst)

    def delay(self) -> float:
        """Take a token if one is there (0.0), else how long until one will be."""
        with self._lock:
            self._refill()
            if self._tokens >= 1 - 1e-9:  # (a refill a rounding error short is a token: no sub-ulp waits)
                self._tokens = max(0.0, self._tokens - 1)
                return 0.0
            return (1 - self._tokens) / self.rate


def _json_depth_ok(obj: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if d > limit:
            return False
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return True


def parse_body(data: bytes, what: str) -> dict[str, Any]:
    """A 200 body as a JSON object: numbers exact (Decimal, never float), nesting bounded."""
    try:
        body = json.loads(data, parse_float=Decimal, parse_constant=Decimal)
    except (ValueError, RecursionError, UnicodeDecodeError):
        head = data[:64].lstrip().lower()
        kind = "HTML" if head.startswith((b"<!doctype", b"<html")) else "malformed JSON"
        raise KalshiHTTPError(f"{kind} from {what}", 200) from None
    if not isinstance(body, dict):
        raise KalshiHTTPError(f"unexpected response shape from {what}", 200)
    if not _json_depth_ok(body):
        raise KalshiHTTPError(f"JSON nested too deep from {what}", 200)
    return body


def _error_message(status: int, data: bytes) -> str:
    """Kalshi's own words: ``{code, message}``, ``{"error": "..."}`` or ``{"error": {code, message}}``."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return _safe(data[:120].decode("utf-8", "replace").strip() or f"HTTP {status}", 160)
    msg: Any = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            msg = err.get("message") or err.get("code")
        elif isinstance(err, str):
            msg = err
        msg = msg or body.get("message") or body.get("code")
    return _safe(msg if msg else f"HTTP {status}", 160)


@dataclass(eq=False)
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    error: BaseException | None = None


@dataclass
class Listing:
    """One cursor walk (GET /markets, GET /events), page by page: (objects, when the page arrived)."""

    pages: list[tuple[list[Any], int]] = field(default_factory=list)
    truncated: bool = False

    def items(self) -> Iterator[Any]:
        for page, _ts in self.pages:
            yield from page


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
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        signer: Any = None,
        reads_per_s: float = 20.0,
        reads_cap: float | None = None,
        deadline_s: float | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self.timeout = timeout
        # The whole of one request, retries and waits included.
        self.deadline_s = deadline_s if deadline_s is not None else max(30.0, timeout * (max_retries + 2))
        self.max_body_bytes = max_body_bytes
        self.signer = signer
        self.bucket = TokenBucket(reads_per_s)
        self.reads_cap = reads_cap  # set by the operator ([kalshi] reads_per_s): the account's budget never exceeds it
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._stop = threading.Event()
        self._pending: set[_Pending] = set()
        self._plock = threading.Lock()
        self.requests_made = 0
        self.retries_made = 0
        #: the latest answered requests' round trips (ms, from sending to the whole body read):
        #: ``round_trip_ms`` is their median, the paper orders' "auto" latency (issue #23)
        self.round_trips: deque[float] = deque(maxlen=ROUND_TRIPS_KEPT)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            # No Accept-Language: since August 2026 Kalshi answers it with translated titles and rules.
            headers={"Accept": "application/json", "User-Agent": "kakashi-paper/0.1 (read-only)"},
            event_hooks={"request": [self._sign]},
        )

    def __repr__(self) -> str:  # the signer (a secret) is never shown
        return f"KalshiClient({self.base_url!r}, signed={self.signer is not None})"

    @property
    def signed(self) -> bool:
        return self.signer is not None

    def close(self) -> None:
        self.stop()
        self._http.close()

    def stop(self) -> None:
        """From any thread: waits end now, the request in flight is abandoned (its worker thread
        finishes on its own timeout), and every later request fails with ``KalshiStopped``."""
        self._stop.set()
        with self._plock:
            for p in self._pending:
                p.done.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def __enter__(self) -> KalshiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the only request method ---------------------------------------------------------
    def _sign(self, request: httpx.Request) -> None:
        if request.method != "GET":  # belt and braces: nothing else is ever built here
            raise KalshiHTTPError("refusing to send anything but GET")
        if self.signer is not None:
            path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
            request.headers.update(self.signer.headers("GET", path))

    def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._sleep is not None:  # tests record the waits instead of sleeping
            self._sleep(seconds)
        elif self._stop.wait(seconds):
            raise KalshiStopped()
        if self._stop.is_set():
            raise KalshiStopped()

    def _pace(self, deadline: float) -> None:
        while True:
            d = self.bucket.delay()
            if d <= 0:
                return
            if time.monotonic() + d > deadline:
                raise KalshiHTTPError("request deadline passed while pacing requests")
            if self._stop.wait(d):
                raise KalshiStopped()

    def _attempt(self, path: str, params: Any, deadline: float, limit: int) -> _Pending:
        """One GET in a worker thread; the caller waits for it, for stop() or for the deadline."""
        p = _Pending()

        def work() -> None:
            try:
                with self._http.stream("GET", path, params=params) as resp:
                    p.status = resp.status_code
                    p.headers = {"Retry-After": resp.headers.get("Retry-After", "")}
                    cap = limit if resp.status_code == 200 else 64 * 1024
                    chunks: list[bytes] = []
                    n = 0
                    for chunk in resp.iter_bytes():
                        n += len(chunk)
                        if n > cap:
                            if resp.status_code == 200:
                                raise KalshiHTTPError(f"response from GET {path} larger than {cap} bytes", 200)
                            break
                        if self._stop.is_set() or time.monotonic() > deadline:
                            p.error = _Deadline("deadline passed while reading the body")
                            return
                        chunks.append(chunk)
                    p.data = b"".join(chunks)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                p.error = e
            finally:
                p.done.set()

        with self._plock:
            self._pending.add(p)
        try:
            threading.Thread(target=work, name="kalshi-get", daemon=True).start()
            p.done.wait(max(0.0, deadline - time.monotonic()))
        finally:
            with self._plock:
                self._pending.discard(p)
        if self._stop.is_set():
            raise KalshiStopped()
        if not p.done.is_set():
            p.error = _Deadline("no answer")
        return p

    def _get(self, path: str, params: Any = None, max_body_bytes: int | None = None) -> dict[str, Any]:
        limit = max(self.max_body_bytes, max_body_bytes or 0)  # (an endpoint may be allowed more, never less)
        if isinstance(params, dict):
            params = {k: v for k, v in params.items() if v is not None}
        deadline = time.monotonic() + self.deadline_s
        attempt = 0
        what = f"GET {path.split('?', 1)[0]}"
        while True:
            if self._stop.is_set():
                raise KalshiStopped()
            self._pace(deadline)
            self.requests_made += 1
            wait: float | None = None
            sent = time.perf_counter()
            p = self._attempt(path, params, deadline, limit)
            if p.error is None:
                self.round_trips.append((time.perf_counter() - sent) * 1000)
            if p.error is not None:
                e = p.error
                if isinstance(e, KalshiHTTPError):
                    raise e
                if isinstance(e, _Deadline):
                    problem = f"no answer within the {self.deadline_s:g}s deadline on {what}"
                elif isinstance(e, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)):
                    problem = f"{e.__class__.__name__} on {what}"
                elif isinstance(e, httpx.DecodingError):
                    raise KalshiHTTPError(f"undecodable body (bad compression) from {what}") from None
                elif isinstance(e, httpx.HTTPError):
                    raise KalshiHTTPError(f"{e.__class__.__name__} on {what}") from None
                else:
                    raise KalshiHTTPError(f"{e.__class__.__name__} on {what}") from None
            elif p.status == 200:
                return parse_body(p.data, what)
            else:
                problem = f"HTTP {p.status} on {what}"
                if p.status in AUTH_STATUS:
                    raise KalshiAuthError(
                        f"Kalshi refused the request (HTTP {p.status} on {what}): {_error_message(p.status, p.data)}",
                        p.status,
                    )
                if p.status not in RETRY_STATUS:
                    raise KalshiHTTPError(f"{problem}: {_error_message(p.status, p.data)}", p.status)
                ra = _retry_after_s(p.headers.get("Retry-After"))
                if ra is not None:
                    wait = min(ra, self.retry_after_cap)
            if attempt >= self.max_retries:
                raise KalshiHTTPError(f"{problem}; gave up after {attempt + 1} attempts")
            if wait is None:
                wait = Backoff(self.backoff_base, self.backoff_cap).delay(attempt, self._rng)
            if self._sleep is None and time.monotonic() + wait > deadline:
                raise KalshiHTTPError(f"{problem}; gave up at the {self.deadline_s:g}s deadline")
            attempt += 1
            self.retries_made += 1
            self._wait(wait)

    def round_trip_ms(self) -> int | None:
        """The median of the latest ``ROUND_TRIPS_KEPT`` answered requests' round trips, in whole
        ms (at least 1); None before any was answered."""
        if not self.round_trips:
            return None
        return max(1, round(statistics.median(self.round_trips)))

    # -- endpoints ------------------------------------------------------------------------
    def _pages(
        self,
        path: str,
        page_of: type[MarketsPage | EventsPage | TradesPage],
        params: dict[str, Any],
        limit: int,
        max_pages: int,
    ) -> Listing:
        """``path`` across cursor pages (stops on an empty or a repeated cursor); each page is
        stamped with when it arrived, its elements as sent (the source parses each on its own).
        ``truncated`` when ``max_pages`` ran out with more to come."""
        out = Listing()
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            body = self._get(path, {**params, "limit": limit, "cursor": cursor})
            arrived = self._clock_ms()
            page = _shape(page_of, body, f"GET {path}")
            items = (
                page.markets
                if isinstance(page, MarketsPage)
                else page.trades
                if isinstance(page, TradesPage)
                else page.events
            )
            out.pages.append((items, arrived))
            cursor = page.cursor or None
            if not cursor or cursor in seen:
                return out
            seen.add(cursor)
        out.truncated = True
        return out

    def list_markets(self, params: dict[str, Any], limit: int = 1000, max_pages: int = 100) -> Listing:
        """GET /markets across cursor pages (see ``_pages``)."""
        return self._pages("/markets", MarketsPage, params, limit, max_pages)

    def list_events(self, params: dict[str, Any], limit: int = 200, max_pages: int = 100) -> Listing:
        """GET /events across cursor pages (200 a page at most; combo events are not listed)."""
        return self._pages("/events", EventsPage, params, limit, max_pages)

    def list_trades(
        self, params: dict[str, Any], historical: bool = False, limit: int = 1000, max_pages: int = 20
    ) -> Listing:
        """GET /markets/trades (``historical``: GET /historical/trades, prints before Kalshi's
        cutoff) across cursor pages, newest first: public prints as sent (``ticker``, ``min_ts``,
        ``max_ts`` in epoch seconds). Public: unsigned without a key."""
        return self._pages(
            "/historical/trades" if historical else "/markets/trades", TradesPage, params, limit, max_pages
        )

    def list_historical_markets(self, params: dict[str, Any], limit: int = 1000, max_pages: int = 20) -> Listing:
        """GET /historical/markets across cursor pages: markets archived after settling (``tickers``)."""
        return self._pages("/historical/markets", MarketsPage, params, limit, max_pages)

    def get_candlesticks(
        self,
        series_ticker: str,
        ticker: str,
        start_ts: int,
        end_ts: int,
        period_interval: int = 60,
        historical: bool = False,
    ) -> list[Any]:
        """A market's candlesticks ending in [start_ts, end_ts] (epoch seconds), each as sent:
        GET /series/{series}/markets/{ticker}/candlesticks, or (``historical``, a market archived
        before the cutoff) GET /historical/markets/{ticker}/candlesticks."""
        path = (
            f"/historical/markets/{path_segment(ticker)}/candlesticks"
            if historical
            else f"/series/{path_segment(series_ticker)}/markets/{path_segment(ticker)}/candlesticks"
        )
        body = self._get(path, {"start_ts": start_ts, "end_ts": end_ts, "period_interval": period_interval})
        return _shape(Candlesticks, body, f"GET {path.rsplit('/', 1)[0]}/...").candlesticks

    def list_series(self) -> list[Any]:
        """GET /series: every series, with its fee_type and fee_multiplier, in one answer (no pages;
        about 18 MB: ``SERIES_MAX_BODY_BYTES``)."""
        body = self._get("/series", max_body_bytes=SERIES_MAX_BODY_BYTES)
        return _shape(SeriesList, body, "GET /series").series

    def series_fee_changes(self) -> list[Any]:
        """GET /series/fee_changes: every series' upcoming fee changes, in one answer (each as sent)."""
        body = self._get("/series/fee_changes")
        return _shape(SeriesFeeChanges, body, "GET /series/fee_changes").series_fee_change_arr

    def list_event_fee_changes(self, limit: int = 1000, max_pages: int = 20) -> Listing:
        """GET /events/fee_changes across cursor pages: events' fee overrides (each as sent)."""
        return self._pages("/events/fee_changes", EventFeeChangesPage, {}, limit, max_pages)

    def iter_markets(
        self,
        status: str | None = "open",
        tickers: list[str] | None = None,
        limit: int = 1000,
        max_pages: int = 100,
        **filters: Any,
    ) -> Iterator[Any]:
        """All markets across cursor pages (see ``list_markets``)."""
        params = {"status": status, "tickers": ",".join(tickers) if tickers else None, **filters}
        yield from self.list_markets(params, limit=limit, max_pages=max_pages).items()

    def _one(self, path: str, key: str) -> dict[str, Any]:
        body = self._get(path)
        obj = body.get(key)
        if not isinstance(obj, dict):
            raise KalshiHTTPError(f"unexpected response shape from GET {path}")
        return obj

    def get_account_limits(self) -> dict[str, Any]:
        """GET /account/limits (signed only): the account's read and write token buckets."""
        return self._get("/account/limits")

    def pace_from_account(self, body: dict[str, Any]) -> str:
        """Pace reads from ``GET /account/limits``'s answer: ``read.refill_rate`` tokens a second,
        ``read.bucket_capacity`` at most (Kalshi's read buckets hold two seconds: bursts of twice
        the rate), ``READ_COST_TOKENS`` a GET; never over ``reads_cap`` when the operator set one.
        An older answer's ``read_limit`` (reads a second, a one-second bucket) is read too. One
        line saying the pace; a ``KalshiHTTPError`` (the pace unchanged) when the answer is not one."""
        budget = _read_budget(body)
        if budget is None:
            raise KalshiHTTPError("unexpected response shape from GET /account/limits: no read budget", 200)
        rate, burst = budget
        cap = min(MAX_READS_PER_S, self.reads_cap or MAX_READS_PER_S)
        if rate > cap:
            burst, rate = burst * cap / rate, cap
        self.bucket.set(rate, max(1.0, burst))
        tier = _safe(body.get("usage_tier") or "?", 40)
        capped = f", capped by [kalshi] reads_per_s = {self.reads_cap:g}" if self.reads_cap and rate == cap else ""
        return (
            f"Kalshi: reads paced from the account's limits (tier {tier}): "
            f"{self.bucket.rate:g} reads/s, bursts of {self.bucket.burst:g}{capped}"
        )

    def get_exchange_status(self) -> dict[str, Any]:
        """GET /exchange/status: whether the exchange, and each shard (3.34), is trading."""
        return self._get("/exchange/status")

    def get_market(self, ticker: str) -> dict[str, Any]:
        return self._one(f"/markets/{path_segment(ticker)}", "market")

    def get_historical_market(self, ticker: str) -> dict[str, Any]:
        """A market settled before Kalshi's historical cutoff (``GET /historical/markets/{ticker}``)."""
        return self._one(f"/historical/markets/{path_segment(ticker)}", "market")

    def get_event(self, event_ticker: str) -> dict[str, Any]:
        return self._one(f"/events/{path_segment(event_ticker)}", "event")

    def get_series(self, series_ticker: str) -> dict[str, Any]:
        return self._one(f"/series/{path_segment(series_ticker)}", "series")

    def get_orderbook(self, ticker: str, depth: int | None = None) -> dict[str, Any]:
        body = self._get(f"/markets/{path_segment(ticker)}/orderbook", {"depth": depth})
        return _book_of(body, f"GET /markets/{_safe(ticker, 60)}/orderbook")

    def get_orderbooks(self, tickers: Iterable[str]) -> dict[str, tuple[dict[str, Any], int]]:
        """Books for many markets, ``BOOKS_PER_CALL`` a request: {ticker: (book, when its answer
        arrived)}. Entries that are not books are left out (the caller sees them missing)."""
        ts = list(dict.fromkeys(tickers))
        out: dict[str, tuple[dict[str, Any], int]] = {}
        for i in range(0, len(ts), BOOKS_PER_CALL):
            chunk = ts[i : i + BOOKS_PER_CALL]
            body = self._get("/markets/orderbooks", [("tickers", t) for t in chunk])
            arrived = self._clock_ms()
            for entry in _shape(BookList, body, "GET /markets/orderbooks").orderbooks:
                if not isinstance(entry, dict):
                    continue
                e = BookEntry.model_validate(entry)  # (every field lenient: never raises)
                ob = e.book()
                if e.ticker is not None and e.ticker in chunk and ob is not None:
                    out[e.ticker] = (ob, arrived)
        return out


def _count(x: Any) -> float | None:
    """A positive finite JSON number as a float; None for anything else (a bool, text, NaN, 0)."""
    if isinstance(x, bool) or not isinstance(x, (int, Decimal)):
        return None
    f = float(x)
    return f if math.isfinite(f) and f > 0 else None


def _read_budget(body: dict[str, Any]) -> tuple[float, float] | None:
    """(reads a second, burst in reads) from ``GET /account/limits``: ``read`` {refill_rate,
    bucket_capacity} in tokens, or an older answer's ``read_limit`` in reads a second."""
    read = body.get("read")
    if isinstance(read, dict):
        refill, capacity = _count(read.get("refill_rate")), _count(read.get("bucket_capacity"))
        if refill is None or capacity is None:
            return None
        return refill / READ_COST_TOKENS, capacity / READ_COST_TOKENS
    limit = _count(body.get("read_limit"))
    return None if limit is None else (limit, limit)


W = TypeVar("W", bound=Wire)


def _shape(model: type[W], body: dict[str, Any], what: str) -> W:
    """A response's envelope (``schemas``), or one line naming what is wrong with it."""
    try:
        return parse(model, body)
    except RowError as e:
        raise KalshiHTTPError(f"unexpected response shape from {what}: {e}") from None


def _book_of(body: dict[str, Any], what: str) -> dict[str, Any]:
    # Today's responses wrap the book as `orderbook_fp`; older recordings as `orderbook`.
    ob = body.get("orderbook_fp", body.get("orderbook"))
    if ob is None:
        return {}
    if not isinstance(ob, dict):
        raise KalshiHTTPError(f"unexpected response shape from {what}")
    return ob
