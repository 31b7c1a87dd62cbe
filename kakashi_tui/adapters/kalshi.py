"""Read-only Kalshi Trade API v2 client (httpx) and the Kalshi market-data source.

The client has exactly one way to talk to Kalshi: ``_get``. There is no method that sends
anything but GET, so Kakashi cannot place, amend or cancel an order.

Requests:
- paced by a client-side token bucket (``reads_per_s``; Kalshi's Basic tier allows 20 reads/s
  and its 429 carries no ``Retry-After``), so a tick does not burst into 429s;
- signed (``KALSHI-ACCESS-*`` headers, see ``kalshi_auth``) when a key is configured; order
  books need it;
- retried a bounded number of times on 429, 5xx, timeouts and dropped connections, with
  exponential backoff and full jitter (``Retry-After`` honoured, capped); 401/403 is one
  clear line with Kalshi's own message, never retried; any other failure raises
  ``KalshiHTTPError`` with one line;
- bounded: a total deadline per request (retries and waits included), a cap on the body size,
  on JSON nesting, and ``stop()`` (from another thread) ends a fetch in progress at once.

Rows (``market_rows`` / ``convert``) follow CONTRACTS.md: prices and counts as they came off
the wire (exact strings, never float), books best first, a quiet market as "no quote", the
lifecycle status word passed through. A row that cannot be one (not an object, a ticker no
Kalshi market has, a count or time out of any sane range, text SQLite or a terminal cannot hold,
legacy and fixed-point twins that disagree) is rejected on its own with a reason.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx

from kakashi_tui.adapters.source import FetchBatch, RawRow
from kakashi_tui.core.errors import ConfigError

PRODUCTION_BASE = "https://external-api.kalshi.com/trade-api/v2"
DEMO_BASE = "https://external-api.demo.kalshi.co/trade-api/v2"
RETRY_STATUS = {429, 500, 502, 503, 504}
AUTH_STATUS = {401, 403}

MAX_BODY_BYTES = 16 * 1024 * 1024  # a 1,000-market page is about 2 MB
MAX_JSON_DEPTH = 32  # Kalshi's deepest shape (a book level) is 5 levels down
BOOKS_PER_CALL = 100  # GET /markets/orderbooks takes 1..100 tickers
TICKERS_PER_LISTING = 100
MAX_TICKER_LEN = 200  # the spec's maxLength for a ticker in GET /markets/orderbooks
MAX_TEXT_LEN = 2000
MAX_COUNT = Decimal(10) ** 12  # contracts: far above any market's volume, far below SQLite's int
MIN_TS_MS = 946_684_800_000  # 2000-01-01
MAX_TS_MS = 7_258_118_400_000  # 2200-01-01
LIFECYCLE = ("initialized", "inactive", "active", "closed", "determined", "disputed", "amended", "finalized")
LIVE = frozenset(("initialized", "inactive", "active"))  # kept in memory between listings

KEY_RETRY_FIRST_S = 5.0  # a refused key is tried again after this long, doubling each refusal ...
KEY_RETRY_CAP_S = 300.0  # ... up to this: a skewed clock or a re-enabled key can recover while running


@dataclass
class KeyRefusal:
    """Kalshi refused the API key (HTTP 401/403): why, and when to try it again. The source
    asks again after ``KEY_RETRY_FIRST_S``, doubling to ``KEY_RETRY_CAP_S`` (no retry storm),
    and forgets the refusal the first time a signed request succeeds."""

    reason: str = ""
    retry_at_ms: int = 0
    backoff_s: float = 0.0
    listing: bool = False  # the listing itself was refused: nothing can be fetched until it is not

    def refuse(self, reason: str, now_ms: int, listing: bool = False) -> None:
        self.backoff_s = KEY_RETRY_FIRST_S if not self.reason else min(KEY_RETRY_CAP_S, self.backoff_s * 2)
        self.reason, self.listing = reason, listing
        self.retry_at_ms = now_ms + int(self.backoff_s * 1000)

    def due(self, now_ms: int) -> bool:
        return not self.reason or now_ms >= self.retry_at_ms

    def accepted(self, batch: FetchBatch) -> None:
        if self.reason:
            batch.notes.append("Kalshi accepted the API key again")
            self.reason, self.listing, self.backoff_s = "", False, 0.0


NO_KEY_NOTICE = (
    "Kalshi: no API key set, so no order books and no paper fills (set KAKASHI_KALSHI_KEY_ID "
    "and KAKASHI_KALSHI_KEY_FILE, or [kalshi] api_key_id / private_key_file)"
)


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


def _safe(text: Any, limit: int = 200) -> str:
    """Text fit for one log line: printable ASCII (anything else escaped), bounded."""
    s = text if isinstance(text, str) else repr(text)
    s = s[: limit * 2].encode("ascii", "backslashreplace").decode("ascii")
    s = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in s)
    return s if len(s) <= limit else s[: limit - 3] + "..."


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

    def delay(self) -> float:
        """Take a token if one is there (0.0), else how long until one will be."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
            self._t = now
            if self._tokens >= 1:
                self._tokens -= 1
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
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._stop = threading.Event()
        self._pending: set[_Pending] = set()
        self._plock = threading.Lock()
        self.requests_made = 0
        self.retries_made = 0
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
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

    def _attempt(self, path: str, params: Any, deadline: float) -> _Pending:
        """One GET in a worker thread; the caller waits for it, for stop() or for the deadline."""
        p = _Pending()
        limit = self.max_body_bytes

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

    def _get(self, path: str, params: Any = None) -> dict[str, Any]:
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
            p = self._attempt(path, params, deadline)
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
                wait = self._rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))
            if self._sleep is None and time.monotonic() + wait > deadline:
                raise KalshiHTTPError(f"{problem}; gave up at the {self.deadline_s:g}s deadline")
            attempt += 1
            self.retries_made += 1
            self._wait(wait)

    # -- endpoints ------------------------------------------------------------------------
    def _pages(self, path: str, key: str, params: dict[str, Any], limit: int, max_pages: int) -> Listing:
        """``path`` across cursor pages (stops on an empty or a repeated cursor); each page is
        stamped with when it arrived. ``truncated`` when ``max_pages`` ran out with more to come."""
        out = Listing()
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            body = self._get(path, {**params, "limit": limit, "cursor": cursor})
            arrived = self._clock_ms()
            page = body.get(key)
            if page is None:
                page = []
            if not isinstance(page, list):
                raise KalshiHTTPError(f"unexpected response shape from GET {path}: '{key}' is not a list")
            out.pages.append((page, arrived))
            nxt = body.get("cursor")
            cursor = nxt if isinstance(nxt, str) and nxt else None
            if not cursor or cursor in seen:
                return out
            seen.add(cursor)
        out.truncated = True
        return out

    def list_markets(self, params: dict[str, Any], limit: int = 1000, max_pages: int = 100) -> Listing:
        """GET /markets across cursor pages (see ``_pages``)."""
        return self._pages("/markets", "markets", params, limit, max_pages)

    def list_events(self, params: dict[str, Any], limit: int = 200, max_pages: int = 100) -> Listing:
        """GET /events across cursor pages (200 a page at most; combo events are not listed)."""
        return self._pages("/events", "events", params, limit, max_pages)

    def list_series(self) -> list[Any]:
        """GET /series: every series, with its fee_type and fee_multiplier, in one answer."""
        body = self._get("/series")
        series = body.get("series")
        if not isinstance(series, list):
            raise KalshiHTTPError("unexpected response shape from GET /series: 'series' is not a list")
        return series

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
            books = body.get("orderbooks")
            if not isinstance(books, list):
                raise KalshiHTTPError("unexpected response shape from GET /markets/orderbooks")
            for entry in books:
                if isinstance(entry, dict) and isinstance(entry.get("ticker"), str) and entry["ticker"] in chunk:
                    ob = entry.get("orderbook_fp", entry.get("orderbook"))
                    if isinstance(ob, dict) or ob is None:
                        out[entry["ticker"]] = (ob or {}, arrived)
        return out


def _book_of(body: dict[str, Any], what: str) -> dict[str, Any]:
    # Today's responses wrap the book as `orderbook_fp`; older recordings as `orderbook`.
    ob = body.get("orderbook_fp", body.get("orderbook"))
    if ob is None:
        return {}
    if not isinstance(ob, dict):
        raise KalshiHTTPError(f"unexpected response shape from {what}")
    return ob


# -- wire format -> raw rows (CONTRACTS.md: exact strings, converted once at validation) --------
class RowError(ValueError):
    """This market cannot be a row: the reason is safe to store and show."""


_TICKER_FORBIDDEN = frozenset("/\\?#%,&=;\"'<>`{}|^[]")


def check_ticker(v: Any, what: str = "ticker") -> str:
    """A ticker Kalshi could have issued: printable ASCII, no spaces and nothing a URL or a
    comma-separated list would read as structure, at most 200 characters."""
    if not isinstance(v, str):
        raise RowError(f"{what} is not text (got {type(v).__name__})")
    if not v:
        raise RowError(f"missing {what}")
    if len(v) > MAX_TICKER_LEN:
        raise RowError(f"{what} too long ({len(v)} characters)")
    for c in v:
        if not (" " < c <= "~") or c in _TICKER_FORBIDDEN:
            raise RowError(f"{what} has a character no Kalshi ticker uses (U+{ord(c):04X})")
    return v


def _text(m: dict[str, Any], key: str) -> str:
    v = m.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise RowError(f"{key} is not text (got {type(v).__name__})")
    if len(v) > MAX_TEXT_LEN:
        raise RowError(f"{key} too long ({len(v)} characters)")
    for c in v:
        o = ord(c)
        if o < 0x20 or 0x7F <= o < 0xA0 or 0xD800 <= o <= 0xDFFF:
            raise RowError(f"{key} holds a character that cannot be stored or shown (U+{o:04X})")
    return v


def _word(m: dict[str, Any], key: str) -> str | None:
    v = m.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str) or len(v) > 40 or not v.isascii() or not v.isprintable():
        raise RowError(f"{key} is not a word Kalshi uses ({_safe(v, 40)})")
    return v


def _ts_ms(m: dict[str, Any], key: str) -> int | None:
    v = m.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise RowError(f"{key} is not a time")
    if isinstance(v, int):
        ms = v
    elif isinstance(v, str) and len(v) <= 40:
        s = v.strip()
        try:
            dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
        except ValueError:
            raise RowError(f"{key} is not an RFC 3339 time ({_safe(v, 40)})") from None
        if dt.tzinfo is None or dt.utcoffset() != timedelta(0):
            raise RowError(f"{key} is not in UTC ({_safe(v, 40)})")
        ms = int(dt.timestamp() * 1000)
    else:
        raise RowError(f"{key} is not a time ({_safe(v, 40)})")
    if not MIN_TS_MS <= ms <= MAX_TS_MS:
        raise RowError(f"{key} out of range ({_safe(v, 40)})")
    return ms


def _dec(v: Any) -> Decimal | None:
    """A finite Decimal from a wire number or decimal string; None when it is not one."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str):
        if len(v) > 40:
            return None
        try:
            d = Decimal(v.strip()) if v.strip() == v else None
        except InvalidOperation:
            return None
    elif isinstance(v, (int, Decimal)):
        if isinstance(v, int) and abs(v) > 10**30:
            return Decimal(10) ** 31
        d = Decimal(v)
    else:
        return None
    return d if d is not None and d.is_finite() else None


def _cents_to_dollars(p: Any) -> Any:
    """A legacy cent price as a dollar string (what validation takes); anything else as sent."""
    d = _dec(p)
    return p if d is None else str((Decimal(d) / 100).quantize(Decimal("0.0001")))


def _twin_ok(legacy: Decimal | None, exact: Decimal | None, scale: int) -> bool:
    """A legacy integer field (cents, whole contracts) agrees with its fixed-point twin when it
    says the same, or, where the twin is finer than an integer can carry (a sub-penny price, a
    fractional count), when it is one of the two integers around it."""
    if legacy is None or exact is None:
        return False
    x = exact * scale
    if legacy == x:
        return True
    return x != x.to_integral_value() and legacy in (
        x.to_integral_value(ROUND_FLOOR),
        x.to_integral_value(ROUND_CEILING),
    )


def _legacy_price(m: dict[str, Any], name: str) -> Any:
    """``<name>_dollars`` as sent; a legacy cent twin, if present, must say the same. With only
    the legacy field (old recordings), its cents become exact dollars."""
    dollars_key = f"{name}_dollars"
    has_d, has_c = m.get(dollars_key) not in (None, ""), m.get(name) not in (None, "")
    if has_c:
        cents = _dec(m.get(name))
        if has_d:
            if not _twin_ok(cents, _dec(m.get(dollars_key)), 100):
                raise RowError(
                    f"inconsistent {name}: legacy {_safe(m.get(name), 30)} vs "
                    f"{dollars_key} {_safe(m.get(dollars_key), 30)}"
                )
        elif cents is not None:
            return str((cents / 100).quantize(Decimal("0.0001")))
        else:
            return m.get(name)
    return m.get(dollars_key) if has_d else None  # as sent: validation judges it


def _count(m: dict[str, Any], name: str) -> Any:
    """``<name>_fp`` as sent (a legacy integer twin must agree), bounded; "0" when absent."""
    fp_key = f"{name}_fp"
    has_f, has_i = m.get(fp_key) not in (None, ""), m.get(name) not in (None, "")
    raw = m.get(fp_key) if has_f else (m.get(name) if has_i else None)
    if has_f and has_i:
        if not _twin_ok(_dec(m.get(name)), _dec(m.get(fp_key)), 1):
            raise RowError(
                f"inconsistent {name}: legacy {_safe(m.get(name), 30)} vs {fp_key} {_safe(m.get(fp_key), 30)}"
            )
    if raw is None:
        return "0"
    d = _dec(raw)
    if d is None:
        raise RowError(f"{fp_key if has_f else name} is not a count ({_safe(raw, 30)})")
    if not 0 <= d <= MAX_COUNT:
        raise RowError(f"{fp_key if has_f else name} out of range ({_safe(raw, 30)})")
    return raw if isinstance(raw, str) else str(d)


_ONE = Decimal(1)


def _levels(ob: dict[str, Any], side: str) -> list[list[Any]]:
    """One side of a Kalshi book (bids ascending, best last) as [price, qty] pairs, best first,
    exactly as sent. A legacy cents twin (``yes`` / ``no``) must list the same levels."""
    dollars = ob.get(f"{side}_dollars")
    legacy = ob.get(side)
    if dollars is None and legacy is None:
        return []
    for levels, key in ((dollars, f"{side}_dollars"), (legacy, side)):
        if levels is not None and not isinstance(levels, list):
            raise RowError(f"order book {key} is not a list")
        for lv in levels or ():
            if not isinstance(lv, list) or len(lv) != 2:
                raise RowError(f"order book {key} has a level that is not a [price, count] pair")
    if dollars is not None and legacy is not None:
        a = [(_dec(p), _dec(q)) for p, q in legacy]
        b = [(_dec(p), _dec(q)) for p, q in dollars]
        if len(a) != len(b) or not all(
            _twin_ok(pa, pb, 100) and _twin_ok(qa, qb, 1) for (pa, qa), (pb, qb) in zip(a, b)
        ):
            raise RowError(f"inconsistent order book: {side} (cents) vs {side}_dollars")
    if dollars is not None:
        out = [[p, q] for p, q in dollars]
    else:
        out = [[_cents_to_dollars(p), q] for p, q in legacy or ()]
    for _p, q in out:
        d = _dec(q)
        if d is not None and not 0 <= d <= MAX_COUNT:
            raise RowError(f"order book {side} count out of range ({_safe(q, 30)})")
    return out[::-1]


def _no_quote(v: Any, empty: Decimal) -> Any:
    d = _dec(v)
    return None if d is not None and d == empty else v


@dataclass(frozen=True)
class Fees:
    fee_type: str | None = None
    fee_multiplier: str | None = None  # the series' number, exact, as a decimal string


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


def _convert(m: Any, ts: int, ob: dict[str, Any] | None, series: str, fees: Fees) -> RawRow:
    if not isinstance(m, dict):
        kind = "null" if m is None else type(m).__name__
        raise RowError(f"market is not an object (got {kind})")
    ticker = check_ticker(m.get("ticker"))
    event = m.get("event_ticker")
    event = "" if event in (None, "") else check_ticker(event, "event_ticker")
    status = _word(m, "status") or ""
    result = _word(m, "result")
    settlement_value = _legacy_price(m, "settlement_value")
    market = {
        "ticker": ticker,
        "title": _text(m, "title"),
        "subtitle": _text(m, "yes_sub_title"),
        "event_ticker": event,
        "series": series,
        "status": status,
        "market_type": _word(m, "market_type") or "binary",
        "result": result,
        "settlement_value": settlement_value,
        "open_ts": _ts_ms(m, "open_time"),
        "close_ts": _ts_ms(m, "close_time"),
        "updated_ts": _ts_ms(m, "updated_time"),
        "fee_type": fees.fee_type,
        "fee_multiplier": fees.fee_multiplier,
        "fee_waiver_until_ts": _ts_ms(m, "fee_waiver_expiration_time"),
    }
    # Read every price and count (the twins are checked even when the row carries no quote).
    bid = _no_quote(_legacy_price(m, "yes_bid"), Decimal(0))
    ask = _no_quote(_legacy_price(m, "yes_ask"), _ONE)
    last = _legacy_price(m, "last_price")
    if _dec(last) is not None and _dec(last) in (0, _ONE):
        last = None  # no trade yet
    for name in ("no_bid", "no_ask", "notional_value"):
        _legacy_price(m, name)
    volume = _count(m, "volume")
    _count(m, "open_interest")
    if ob is not None and not isinstance(ob, dict):
        raise RowError("order book is not an object")
    if status != "active":  # no quote outside trading; the market row carries the lifecycle
        return RawRow(market=market, snapshot=None, payload={"market": m, "orderbook": ob} if ob is not None else m)
    snapshot: dict[str, Any] = {
        "ticker": ticker,
        "ts": ts,
        "yes_bid": bid,
        "yes_ask": ask,
        "last": last,
        "volume": volume,
    }
    if ob is not None:
        yes, no = _levels(ob, "yes"), _levels(ob, "no")
        snapshot["yes_bids"], snapshot["no_bids"] = yes, no
        # The book is the fresher truth for the top: take it from the levels.
        snapshot["yes_bid"] = yes[0][0] if yes else None
        if no:
            p = _dec(no[0][0])
            snapshot["yes_ask"] = str(_ONE - p) if p is not None else no[0][0]
        else:
            snapshot["yes_ask"] = None
    return RawRow(market=market, snapshot=snapshot, payload={"market": m, "orderbook": ob} if ob is not None else m)


def market_row(m: dict[str, Any], series: str = "", fees: Fees | None = None) -> dict[str, Any]:
    """The market dict of a listed market (raises RowError when it cannot be one)."""
    return _convert(m, MIN_TS_MS, None, series, fees or Fees()).market


def snapshot_row(m: dict[str, Any], ts: int, ob: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The snapshot dict of a listed market (None outside trading; raises RowError)."""
    return _convert(m, ts, ob, "", Fees()).snapshot


# -- the source ---------------------------------------------------------------------------
@dataclass
class _Seen:
    market: Any  # the market object as Kalshi sent it
    ts: int  # when its page arrived
    row: RawRow | None = None  # its row without a book, made once for ``made_with`` (series, fees)
    made_with: tuple[str, Fees] | None = None


class KalshiSource:
    """Polls Kalshi's market data and hands the engine raw rows.

    Listing: the first fetch lists every open, non-combo market (``mve_filter=exclude``), or only
    the operator's ``tickers`` / ``series`` / ``events`` (their union). After a full listing,
    each fetch asks only for what changed (``min_updated_ts``; Kalshi counts metadata changes
    there, not trading) plus the markets ``watch_for`` (held) and ``depth_for`` (believed) name,
    re-listed by ticker so their quotes are fresh; a full listing again every
    ``relist_every_s``. Markets not re-fetched reach the engine from memory with the time their
    page arrived, so the stale-quote guard sees their true age.

    Books: with a key (``client.signed``), the books of the watched and believed markets, 100 a
    request. Without one, a one-time notice in ``notices`` says why there are no fills.

    Series and fees: each market's series comes from its event (GET /events/{event}), its fees
    from the series (GET /series/{series}); both cached, at most ``lookups_per_fetch`` new
    look-ups a fetch (watched markets first).

    A cap (``max_pages`` a listing, ``max_markets`` held in memory) never truncates silently:
    the fetch reports it in ``FetchBatch.errors`` as a warning.
    """

    name = "kalshi"

    def __init__(
        self,
        client: KalshiClient,
        tickers: list[str] | None = None,
        depth_for: Callable[[], set[str]] | None = None,
        clock: Callable[[], int] | None = None,
        series: list[str] | None = None,
        events: list[str] | None = None,
        watch_for: Callable[[], set[str]] | None = None,
        relist_every_s: float = 600.0,
        max_pages: int = 100,
        max_markets: int = 50_000,
        lookups_per_fetch: int = 50,
        fee_ttl_s: float = 3600.0,
        page_limit: int = 1000,
    ) -> None:
        self.client = client
        for what, names in (("--ticker", tickers), ("--series", series), ("--event", events)):
            for t in names or ():
                if not _ticker_ok(t):
                    raise ConfigError(f"{what} {_safe(t, 60)}: not a name Kalshi could list")
        self.tickers = list(dict.fromkeys(tickers or [])) or None
        self.series = list(dict.fromkeys(series or [])) or None
        self.events = list(dict.fromkeys(events or [])) or None
        self.depth_for = depth_for or (lambda: set())
        self.watch_for: Callable[[], set[str]] = watch_for or (lambda: set())
        self._clock = clock or (lambda: int(time.time() * 1000))
        client._clock_ms = self._clock
        self.relist_every_s = relist_every_s
        self.max_pages = max_pages
        self.max_markets = max_markets
        self.lookups_per_fetch = lookups_per_fetch
        self.fee_ttl_s = fee_ttl_s
        self.page_limit = page_limit
        self.notices: list[str] = [] if client.signed else [NO_KEY_NOTICE]
        self.cache: dict[str, _Seen] = {}
        self.event_series: dict[str, str] = {}
        self.series_fees: dict[str, tuple[Fees, float]] = {}
        self._listed_at: float | None = None  # monotonic time of the last full listing
        self._since_s: int | None = None  # wall seconds the next min_updated_ts asks from
        self.key = KeyRefusal()

    @property
    def narrowed(self) -> bool:
        return bool(self.tickers or self.series or self.events)

    def now_ms(self) -> int:
        return self._clock()

    def stop(self) -> None:
        self.client.stop()

    def close(self) -> None:
        self.client.close()

    # -- one fetch ------------------------------------------------------------------------
    def fetch(self) -> FetchBatch:
        t0 = time.perf_counter()
        batch = FetchBatch()
        try:
            if self.key.listing and not self.key.due(self._clock()):
                wait = (self.key.retry_at_ms - self._clock()) // 1000
                batch.errors.append(f"{self.key.reason} (tried again in {wait}s)")
            else:
                self._fetch(batch)
                if self.key.listing:
                    self.key.accepted(batch)
        except KalshiAuthError as e:
            self.key.refuse(str(e), self._clock(), listing=True)
            batch.errors.append(str(e))
        except KalshiHTTPError as e:
            batch.errors.append(str(e))
        except Exception as e:  # noqa: BLE001 - a feed never stops the loop; one line, no trace
            batch.errors.append(f"Kalshi feed: unexpected {e.__class__.__name__}")
        batch.latency_ms = (time.perf_counter() - t0) * 1000
        batch.key_refused = self.key.reason
        return batch

    def _fetch(self, batch: FetchBatch) -> None:
        if self.client.stopped:
            raise KalshiStopped()
        held = {t for t in self.watch_for() if isinstance(t, str)}
        watched = held | {t for t in self.depth_for() if isinstance(t, str)}
        fresh: dict[str, _Seen] = {}  # fetched this time: ticker -> market
        bad: list[RawRow] = []
        wall_s = int(time.time())
        if self.narrowed:  # a few requests: everything is listed again each time
            listings = list(self._narrow_listings(batch))
            self.cache.clear()
            self._collect(listings, fresh, bad, keep_all=True)
        else:
            full = self._listed_at is None or time.monotonic() - self._listed_at >= self.relist_every_s
            if full:
                listing = self.client.list_markets(
                    {"status": "open", "mve_filter": "exclude"}, limit=self.page_limit, max_pages=self.max_pages
                )
                self._warn_truncated(batch, listing, "GET /markets (full listing)")
                self.cache.clear()
                self.event_series = {e: s for e, s in self.event_series.items() if s}  # retry failed look-ups
                self._collect([listing], fresh, bad, keep_all=True)
                self._listed_at = time.monotonic()
                self._prefill(batch)
            else:
                listing = self.client.list_markets(
                    {"min_updated_ts": self._since_s, "mve_filter": "exclude"},
                    limit=self.page_limit,
                    max_pages=self.max_pages,
                )
                self._warn_truncated(batch, listing, "GET /markets (changes)")
                self._collect([listing], fresh, bad, keep_all=False)
            self._since_s = wall_s - 5  # overlap a little: clocks differ
        # Held and believed markets are re-listed by ticker, so their quotes are this fetch's.
        want = sorted(t for t in watched if t not in fresh and _ticker_ok(t))
        if want:
            try:
                self._collect(list(self._by_tickers(want)), fresh, bad, keep_all=True)
            except KalshiStopped:
                raise
            except KalshiHTTPError as e:
                batch.errors.append(str(e))
            else:
                self._historical([t for t in want if t in held and t not in fresh], fresh, batch)
        self.cache.update(fresh)
        if len(self.cache) > self.max_markets:
            drop = [t for t in self.cache if t not in watched][: len(self.cache) - self.max_markets]
            for t in drop:
                del self.cache[t]
            batch.notes.append(
                f"Kalshi markets capped at {self.max_markets} in memory; "
                f"{len(drop)} left out (narrow with --series/--event/--ticker)"
            )
        self._lookups(batch, watched)
        books = self._books(batch, watched)
        for t, seen in list(self.cache.items()):
            ob, ts = books.get(t, (None, seen.ts))
            ev = seen.market.get("event_ticker") if isinstance(seen.market, dict) else None
            series = self.event_series.get(ev, "") if isinstance(ev, str) else ""
            fees = self.series_fees.get(series, (Fees(), 0.0))[0] if series else Fees()
            if ob is not None:
                row = convert(seen.market, ts, ob, series, fees)
            elif seen.row is not None and seen.made_with == (series, fees):
                row = seen.row  # unchanged since it was made: the same row (tens of thousands a tick)
            else:
                row = seen.row = convert(seen.market, ts, None, series, fees)
                seen.made_with = (series, fees)
            batch.rows.append(row)
            if row.reason is not None:
                del self.cache[t]
            elif seen.market.get("status") not in LIVE and t not in watched:
                del self.cache[t]  # closed or settled and not followed: said once, then forgotten
        batch.rows.extend(bad)

    def _warn_truncated(self, batch: FetchBatch, listing: Listing, what: str) -> None:
        if listing.truncated:
            n = sum(len(p) for p, _ in listing.pages)
            batch.notes.append(
                f"{what} stopped at {self.max_pages} pages ({n} items); "
                f"more were listed (narrow with --series/--event/--ticker)"
            )

    def _collect(self, listings: Iterable[Listing], fresh: dict[str, _Seen], bad: list[RawRow], keep_all: bool) -> None:
        watched = None
        for listing in listings:
            for page, ts in listing.pages:
                for m in page:
                    t = m.get("ticker") if isinstance(m, dict) else None
                    if not isinstance(t, str) or not _ticker_ok(t):
                        bad.append(convert(m, ts))
                        continue
                    if not keep_all and t not in self.cache:
                        # a change to a market we do not follow: follow it only if it trades
                        if watched is None:
                            watched = self.watch_for() | self.depth_for()
                        if m.get("status") != "active" and t not in watched:
                            continue
                    fresh[t] = _Seen(m, ts)

    def _narrow_listings(self, batch: FetchBatch) -> Iterator[Listing]:
        for s in self.series or ():
            listing = self.client.list_markets(
                {"series_ticker": s, "status": "open", "mve_filter": "exclude"},
                limit=self.page_limit,
                max_pages=self.max_pages,
            )
            self._warn_truncated(batch, listing, f"GET /markets for series {_safe(s, 40)}")
            yield listing
        for e in self.events or ():
            listing = self.client.list_markets(
                {"event_ticker": e, "mve_filter": "exclude"}, limit=self.page_limit, max_pages=self.max_pages
            )
            self._warn_truncated(batch, listing, f"GET /markets for event {_safe(e, 40)}")
            yield listing
        if self.tickers:
            yield from self._by_tickers(self.tickers)

    def _by_tickers(self, tickers: list[str]) -> Iterator[Listing]:
        for i in range(0, len(tickers), TICKERS_PER_LISTING):
            chunk = tickers[i : i + TICKERS_PER_LISTING]
            yield self.client.list_markets(
                {"tickers": ",".join(chunk)}, limit=self.page_limit, max_pages=self.max_pages
            )

    def _historical(self, missing: list[str], fresh: dict[str, _Seen], batch: FetchBatch) -> None:
        """A held market the live listing no longer has settled before Kalshi's historical cutoff:
        it is still settled, from ``GET /historical/markets/{ticker}``."""
        for t in missing:
            try:
                m = self.client.get_historical_market(t)
            except KalshiStopped:
                raise
            except KalshiHTTPError as e:
                batch.errors.append(f"held market {_safe(t, 60)} not listed, and historical: {e}")
                continue
            fresh[t] = _Seen(m, self._clock())

    def _prefill(self, batch: FetchBatch) -> None:
        """After a full listing: every open event's series (GET /events, 200 a page) and every
        series' fees (GET /series, one answer), so the per-market look-ups are only for misses."""
        try:
            events = self.client.list_events({"status": "open"}, max_pages=self.max_pages)
            self._warn_truncated(batch, events, "GET /events")
            for e in events.items():
                if isinstance(e, dict) and _ticker_ok(e.get("event_ticker")) and _ticker_ok(e.get("series_ticker")):
                    self.event_series[e["event_ticker"]] = e["series_ticker"]
            now = time.monotonic()
            for s in self.client.list_series():
                if isinstance(s, dict) and _ticker_ok(s.get("ticker")):
                    self.series_fees[s["ticker"]] = (_fees_of(s), now)
        except KalshiStopped:
            raise
        except KalshiHTTPError as e:
            batch.notes.append(f"series and fees looked up one by one instead: {e}")

    def _lookups(self, batch: FetchBatch, watched: set[str]) -> None:
        """Series from events and fees from series, cached; watched markets first, at most
        ``lookups_per_fetch`` requests."""
        budget = self.lookups_per_fetch
        order = sorted(self.cache, key=lambda t: (t not in watched, t))
        pending = 0
        now = time.monotonic()
        for t in order:
            m = self.cache[t].market
            ev = m.get("event_ticker") if isinstance(m, dict) else None
            if not isinstance(ev, str) or not _ticker_ok(ev):
                continue
            if ev not in self.event_series:
                if budget <= 0:
                    pending += 1
                    continue
                budget -= 1
                try:
                    event = self.client.get_event(ev)
                except KalshiStopped:
                    raise
                except KalshiHTTPError as e:
                    batch.notes.append(f"event {_safe(ev, 60)}: {e}")
                    self.event_series[ev] = ""  # tried; asked again after the next full listing
                    continue
                s = event.get("series_ticker")
                self.event_series[ev] = s if isinstance(s, str) and _ticker_ok(s) else ""
            s = self.event_series[ev]
            if not s:
                continue
            cached = self.series_fees.get(s)
            if cached is not None and now - cached[1] < self.fee_ttl_s:
                continue
            if budget <= 0:
                pending += 1
                continue
            budget -= 1
            try:
                data = self.client.get_series(s)
            except KalshiStopped:
                raise
            except KalshiHTTPError as e:
                batch.notes.append(f"series {_safe(s, 60)}: {e}")
                self.series_fees[s] = (cached[0] if cached else Fees(), now)
                continue
            self.series_fees[s] = (_fees_of(data), now)
        if pending:
            batch.notes.append(
                f"series or fees of {pending} markets not looked up yet "
                f"(at most {self.lookups_per_fetch} look-ups a fetch; the rest follow)"
            )

    def _books(self, batch: FetchBatch, watched: set[str]) -> dict[str, tuple[dict[str, Any], int]]:
        want = [
            t
            for t in sorted(watched)
            if t in self.cache
            and isinstance(self.cache[t].market, dict)
            and self.cache[t].market.get("status") == "active"
        ]
        if not want or not self.client.signed or not self.key.due(self._clock()):
            return {}
        try:
            books = self.client.get_orderbooks(want)
        except KalshiAuthError as e:
            self.key.refuse(str(e), self._clock())  # a key problem, not a feed glitch: tried again later
            return {}
        except KalshiStopped:
            raise
        except KalshiHTTPError as e:
            batch.errors.append(str(e))
            return {}
        self.key.accepted(batch)
        return books


def _ticker_ok(t: Any) -> bool:
    try:
        check_ticker(t)
    except RowError:
        return False
    return True


def _fees_of(series: dict[str, Any]) -> Fees:
    ft = series.get("fee_type")
    fm = _dec(series.get("fee_multiplier"))
    return Fees(
        fee_type=ft if isinstance(ft, str) and ft.isascii() and ft.isprintable() and len(ft) <= 40 else None,
        fee_multiplier=str(fm) if fm is not None and 0 <= fm <= 100 else None,
    )
