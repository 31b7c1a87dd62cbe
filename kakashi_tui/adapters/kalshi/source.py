"""The Kalshi market-data source: listings, books, series and fees, polled through the client and
converted by ``wire``; a key Kalshi refuses (or one it wants, without a key) is kept apart from
feed errors and tried again.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from kakashi_tui.adapters.kalshi.client import (
    TICKERS_PER_LISTING,
    KalshiAuthError,
    KalshiClient,
    KalshiHTTPError,
    KalshiStopped,
    Listing,
)
from kakashi_tui.adapters.kalshi.fee_state import FeeState
from kakashi_tui.adapters.kalshi.schemas import (
    Event,
    EventFeeChange,
    EventFeeUpdate,
    ExchangeStatus,
    MarketLifecycle,
    RowError,
    Series,
    SeriesFeeChange,
    Wire,
    _safe,
    parse,
    ticker_ok,
)
from kakashi_tui.adapters.kalshi.schemas import dec as _dec
from kakashi_tui.adapters.kalshi.wire import Fees, Trade, convert, rest_print, tape_row
from kakashi_tui.adapters.source import FetchBatch, RawRow, Source, TapePrint
from kakashi_tui.adapters.tape import print_of
from kakashi_tui.core.backoff import Backoff
from kakashi_tui.core.errors import ConfigError

W = TypeVar("W", bound=Wire)
LIVE = frozenset(("initialized", "inactive", "active"))  # kept in memory between listings
SETTLED_WORDS = frozenset(("determined", "amended", "finalized"))  # a listing with a result of its own
KEY_RETRY_FIRST_S = 5.0  # a refused key is tried again after this long, doubling each refusal ...
KEY_RETRY_CAP_S = 300.0  # ... up to this: a skewed clock or a re-enabled key can recover while running
KEY_RETRY = Backoff(KEY_RETRY_FIRST_S, KEY_RETRY_CAP_S, jitter=False)  # (core/backoff.py: the one policy)
LIMITS_RETRY_MS = 600_000  # GET /account/limits failed: the default pace, and asked again this much later


@dataclass
class KeyRefusal:
    """Kalshi refused the API key (HTTP 401/403), or, without a key, wanted one: why, and when
    to try again. The source asks again after ``KEY_RETRY_FIRST_S``, doubling to
    ``KEY_RETRY_CAP_S`` (no retry storm), and forgets the refusal the first time a refused
    request succeeds."""

    reason: str = ""
    retry_at_ms: int = 0
    backoff_s: float = 0.0
    refusals: int = 0  # in a row, after the first (the retry's index in KEY_RETRY)
    listing: bool = False  # the listing itself was refused: nothing can be fetched until it is not
    again: str = "Kalshi accepted the API key again"  # the note when a refused request succeeds

    def refuse(self, reason: str, now_ms: int, listing: bool = False) -> None:
        self.refusals = self.refusals + 1 if self.reason else 0
        self.backoff_s = KEY_RETRY.delay(self.refusals)
        self.reason, self.listing = reason, listing
        self.retry_at_ms = now_ms + int(self.backoff_s * 1000)

    def due(self, now_ms: int) -> bool:
        return not self.reason or now_ms >= self.retry_at_ms

    def accepted(self, batch: FetchBatch) -> None:
        if self.reason:
            batch.notes.append(self.again)
            self.reason, self.listing, self.backoff_s, self.refusals = "", False, 0.0, 0


_SET_A_KEY = "set KAKASHI_KALSHI_KEY_ID and KAKASHI_KALSHI_KEY_FILE, or [kalshi] api_key_id / private_key_file"
NO_KEY_NOTICE = (
    "Kalshi: no API key set, so order books are polled unsigned (Kalshi serves market data without a key) "
    "at the default pace ([kalshi] reads_per_s), and there are no live WebSocket books (the WebSocket "
    f"and the account's own rate limits need a key: {_SET_A_KEY})"
)
PRINTS_POLLED_NOTICE = (
    "Kalshi: trade prints come by polling GET /markets/trades (every {every:g}s, for the markets held, "
    "believed or named), as the WebSocket that streams them needs a key ({key})"
)
PRINTS_FALLBACK_NOTICE = (
    "Kalshi: the WebSocket is down, so trade prints come by polling GET /markets/trades (every {every:g}s, "
    "for the markets held, believed or named) until it is back"
)
PRINTS_EVERY_S = 10.0  # GET /markets/trades polled at most this often (no WebSocket)
PRINTS_LOOKBACK_S = 600  # a market's first poll asks for its prints of the last 10 minutes
PRINTS_PER_POLL = 20  # markets a poll asks about; more are taken in turn
KEY_NEEDED = "a key is needed: no order books and no paper fills until one is set ({}); asked again with backoff"


# -- the source ---------------------------------------------------------------------------
@dataclass
class _Seen:
    market: Any  # the market object as Kalshi sent it
    ts: int  # when its page arrived
    row: RawRow | None = None  # its row without a book, made once for ``made_with`` (series, fees, exclusive)
    made_with: tuple[str, Fees, bool | None] | None = None
    sent: RawRow | None = None  # the row last handed to the engine (another is sent only when it differs)


class KalshiSource(Source):
    """Polls Kalshi's market data and hands the engine raw rows.

    Listing: the first fetch lists every open, non-combo market (``mve_filter=exclude``), or only
    the operator's ``tickers`` / ``series`` / ``events`` (their union). After a full listing,
    each fetch asks only for what changed (``min_updated_ts``; Kalshi counts metadata changes
    there, not trading) plus the markets ``watch_for`` (held) and ``depth_for`` (believed) name,
    re-listed by ticker so their quotes are fresh; a full listing again every
    ``relist_every_s``. Only what changed reaches the engine (issue #22, item 10): a market's
    row is handed over when it differs from the row last handed over (a market listed again
    exactly as it was, and not refreshed for a belief or a position, keeps its row and its
    quote's time); the held and believed markets not handed over are named in
    ``FetchBatch.same``, and the engine decides on the quote it keeps of each, whose time is
    when its page arrived, so the stale-quote guard sees its true age.

    Books: the books of the watched and believed markets, 100 a request, signed with a key
    (``client.signed``) and unsigned without one (the live exchange serves every market-data
    endpoint unsigned; a one-time notice in ``notices`` says the WebSocket needs a key). Without
    a key, a 401 means Kalshi wants one: said once in a note, asked again with backoff, and the
    rest keeps polling. With a key, a 401/403 anywhere is ``key_refused`` (KEY REFUSED), never
    a feed error, and tried again with backoff.

    Pacing: with a key, the first fetch reads the account's read budget (``GET /account/limits``)
    and the client paces from it (one note says the pace); when that fails, the default pace
    stays, said once, and it is asked again ``LIMITS_RETRY_MS`` later.

    ``book_all`` (``kakashi snapshot``): every active market a fetch lists is booked too, not
    only the held and believed ones (100 a request; one by one without the batch endpoint, all
    of them, paced by the client).

    Believed markets are refreshed (re-listed and booked) at most ``believed_per_fetch`` a fetch:
    what the client's rate (``reads_per_s``) can serve in an ``interval_s`` with half its reads.
    A larger belief set is served round-robin, the markets Kalshi lists first, and a note says
    so once; a market not refreshed is named in ``same`` (the engine's quote of it keeps its old
    time: the stale-quote guard sees it). Held markets are always refreshed.

    Series and fees: each market's series comes from its event (GET /events/{event}), and with it
    whether the event's markets are mutually exclusive (``mutually_exclusive``, for the event
    cap: no request of its own), its fees from the series (GET /series/{series}); both cached,
    at most ``lookups_per_fetch`` new look-ups a fetch (watched markets first). Fee changes (GET
    /series/fee_changes, GET /events/fee_changes, an event's own override, ``apply_ws`` for the
    WebSocket's ``event_fee_update``) are read every ``fee_changes_every_s`` into ``fees``
    (fee_state.py); a market's row carries the fee in force at the fetch. A failed read keeps the
    last known: a note, not a feed error.

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
        fee_changes_every_s: float = 600.0,
        exchange_status_every_s: float = 60.0,
        page_limit: int = 1000,
        interval_s: float = 5.0,
        book_all: bool = False,
        on_trades: Callable[[list[Trade]], None] | None = None,
        prints_every_s: float = PRINTS_EVERY_S,
    ) -> None:
        self.client = client
        self.book_all = book_all
        for what, names in (("--ticker", tickers), ("--series", series), ("--event", events)):
            for t in names or ():
                if not ticker_ok(t):
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
        self.fee_changes_every_s = fee_changes_every_s
        self.fees = FeeState()
        self._fee_changes_at: float | None = None  # monotonic time of the last read of the fee changes
        self.exchange_status_every_s = exchange_status_every_s
        self._status_at: float | None = None  # monotonic time of the last read of GET /exchange/status
        self.halted_shards: frozenset[int] | None = None  # None until the exchange's status is read
        self._overlays: dict[str, dict[str, Any]] = {}  # ticker -> lifecycle fields the listing lags
        self._status_said = False
        self.page_limit = page_limit
        self.interval_s = interval_s
        self.believed_per_fetch = believed_budget(interval_s, client.bucket.rate)
        self._turns = _Turns()
        self.notices: list[str] = [] if client.signed else [NO_KEY_NOTICE]
        self.cache: dict[str, _Seen] = {}
        # Only what changed reaches the engine (issue #22, item 10): a market's row is handed over
        # when it differs from the one last sent; the tickers to look at again this fetch, each
        # market's place in listing order (the rows' order), and what the fees were made from
        self._touch: set[str] = set()
        self._pos: dict[str, int] = {}
        self._next_pos = 0
        self._fee_epoch: tuple[int, int, int, int] | None = None
        self._series_version = 0  # bumped when a series' fees as cached change
        #: each event's ``mutually_exclusive`` as read with its series (GET /events, /events/{e}: no
        #: request of its own); bumped when one changes, so the rows are made again
        self.event_exclusive: dict[str, bool | None] = {}
        self._exclusive_version = 0
        self._unresolved: set[str] = set()  # markets whose series or fees were not looked up yet
        self._lookup_scan_at: float | None = None  # monotonic time of the next look-up pass over every market
        self.event_series: dict[str, str] = {}
        self.series_fees: dict[str, tuple[Fees, float]] = {}
        self._listed_at: float | None = None  # monotonic time of the last full listing
        self._since_s: int | None = None  # wall seconds the next min_updated_ts asks from
        self.key = KeyRefusal() if client.signed else KeyRefusal(again="Kalshi answers without an API key again")
        self._key_needed_said = False
        self._limits_at_ms: int | None = 0 if client.signed else None  # when to ask GET /account/limits
        self._limits_said = False
        self._pace_notes: list[str] = []
        self._batch_books = True  # GET /markets/orderbooks answers (an older server: 404, books one by one)
        self._batch_said = False
        # Trade prints polled (no WebSocket): handed to ``on_trades`` (the catalog's recorder)
        self.on_trades = on_trades
        self.prints_every_s = prints_every_s
        self._prints_at: float | None = None  # monotonic time of the next poll
        self._prints_since: dict[str, int] = {}  # ticker -> the newest print's time seen (ms)
        self._prints_ids: dict[str, dict[str, int]] = {}  # ticker -> ids seen at or after that second
        self._prints_turn = 0
        self._prints_failed = False
        self._prints_gate: Callable[[], bool] | None = None  # with a key: poll only while it says so
        self._prints_gate_said = False
        if on_trades is not None:
            self.notices.append(PRINTS_POLLED_NOTICE.format(every=prints_every_s, key=_SET_A_KEY))

    @property
    def narrowed(self) -> bool:
        return bool(self.tickers or self.series or self.events)

    def now_ms(self) -> int:
        return self._clock()

    def watch(self, held: Callable[[], Iterable[str]]) -> None:
        self.watch_for = lambda: set(held())

    def round_trip_ms(self) -> int | None:
        return self.client.round_trip_ms()

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
            self._refused(e, batch, listing=True)
            batch.errors.append(str(e))
        except KalshiHTTPError as e:
            batch.errors.append(str(e))
        except Exception as e:  # noqa: BLE001 - a feed never stops the loop; one line, no trace
            batch.errors.append(f"Kalshi feed: unexpected {e.__class__.__name__}")
        batch.notes.extend(self._pace_notes)  # after the fetch's own notes: a tick line shows the first
        self._pace_notes.clear()
        batch.latency_ms = (time.perf_counter() - t0) * 1000
        batch.key_refused = self.key.reason if self.client.signed else ""  # (no key: a note said it)
        return batch

    def _refused(self, e: KalshiAuthError, batch: FetchBatch, listing: bool = False) -> None:
        """A 401/403 on any request: a key problem, not a feed glitch. One backoff step a
        refusal (a second one while the first's wait runs adds none); without a key, a note
        says once that Kalshi wants one."""
        now = self._clock()
        if self.key.reason and not self.key.due(now):
            self.key.listing |= listing
        else:
            self.key.refuse(str(e), now, listing=listing)
        if not self.client.signed and not self._key_needed_said:
            self._key_needed_said = True
            batch.notes.append(f"{e}: {KEY_NEEDED.format(_SET_A_KEY)}")

    def _fetch(self, batch: FetchBatch) -> None:
        if self.client.stopped:
            raise KalshiStopped()
        if self._limits_at_ms is not None and self._clock() >= self._limits_at_ms:
            self._account_limits(batch, self._pace_notes)
        held = {t for t in self.watch_for() if isinstance(t, str)}
        believed = {t for t in self.depth_for() if isinstance(t, str)}
        watched = held | believed
        fresh: dict[str, _Seen] = {}  # fetched this time: ticker -> market
        bad: list[RawRow] = []
        wall_s = int(time.time())
        old = self.cache  # what was listed before: a market listed again as it was keeps its row
        if self.narrowed:  # a few requests: everything is listed again each time
            listings = list(self._narrow_listings(batch))
            self._relisted()
            self._collect(listings, fresh, bad, keep_all=True)
        else:
            full = self._listed_at is None or time.monotonic() - self._listed_at >= self.relist_every_s
            if full:
                listing = self.client.list_markets(
                    {"status": "open", "mve_filter": "exclude"}, limit=self.page_limit, max_pages=self.max_pages
                )
                self._warn_truncated(batch, listing, "GET /markets (full listing)")
                self._relisted()
                self.event_series = {e: s for e, s in self.event_series.items() if s}  # retry failed look-ups
                self._lookup_scan_at = None
                self._collect([listing], fresh, bad, keep_all=True)
                self._listed_at = time.monotonic()
                self._batch_books = True  # (tried again after each full listing)
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
        # Held markets and this fetch's share of the believed ones are re-listed by ticker, so
        # their quotes are this fetch's, and booked.
        turn = held | self._believed_turn(believed - held, fresh, batch)
        want = sorted(t for t in turn if t not in fresh and ticker_ok(t))
        if want:
            try:
                self._collect(list(self._by_tickers(want)), fresh, bad, keep_all=True)
            except KalshiStopped:
                raise
            except KalshiAuthError as e:
                self._refused(e, batch)
            except KalshiHTTPError as e:
                batch.errors.append(str(e))
            else:
                self._historical([t for t in want if t in held and t not in fresh], fresh, batch)
        self._merge(fresh, old, turn)
        if self._overlays:
            self._overlay()
        if len(self.cache) > self.max_markets:
            drop = [t for t in self.cache if t not in watched][: len(self.cache) - self.max_markets]
            for t in drop:
                self._forget(t)
            batch.notes.append(
                f"Kalshi markets capped at {self.max_markets} in memory; "
                f"{len(drop)} left out (narrow with --series/--event/--ticker)"
            )
        self._lookups(batch, watched)
        self._fee_changes(batch)
        self._exchange_status(batch)
        books = self._books(batch, turn | (set(fresh) if self.book_all else set()), held)
        now_ms = self._clock()
        # The rows that can differ from the ones last sent: the markets listed anew, booked, looked
        # up or changed by the WebSocket; every market when the fees' inputs changed (rare).
        epoch = (self.fees.version, self._series_version, self.fees.due(now_ms), self._exclusive_version)
        if epoch != self._fee_epoch:
            self._fee_epoch = epoch
            order = list(self.cache)
        else:
            pos = self._pos
            order = sorted((t for t in self._touch.union(books) if t in pos), key=pos.__getitem__)
        self._touch.clear()
        sent: set[str] = set()
        for t in order:
            seen = self.cache[t]
            ob, ts = books.get(t, (None, seen.ts))
            ev = seen.market.get("event_ticker") if isinstance(seen.market, dict) else None
            ev = ev if isinstance(ev, str) else None
            series = self.event_series.get(ev, "") if ev is not None else ""
            own = self.series_fees.get(series, (Fees(), 0.0))[0] if series else Fees()
            fees = self.fees.in_force(own, series, ev, now_ms)  # the series' fee, its schedule, the event's
            exclusive = self.event_exclusive.get(ev) if ev is not None else None
            if ob is not None:
                row = convert(seen.market, ts, ob, series, fees, exclusive)
            elif seen.row is not None and seen.made_with == (series, fees, exclusive):
                row = seen.row  # unchanged since it was made: the same row (tens of thousands a tick)
            else:
                row = seen.row = convert(seen.market, ts, None, series, fees, exclusive)
                seen.made_with = (series, fees, exclusive)
            if row is not seen.sent:
                batch.rows.append(row)
                seen.sent = row
                sent.add(t)
            if row.reason is not None:
                self._forget(t)
            elif seen.market.get("status") not in LIVE and t not in watched:
                self._forget(t)  # closed or settled and not followed: said once, then forgotten
        batch.rows.extend(bad)
        # the followed markets not sent again, quoted as last sent (active): the engine decides on
        # the quote it keeps of each (a market closed since has no quote: it is not decided)
        batch.same = sorted(t for t in watched if t not in sent and self._quoted(t))
        # the held markets' books (positions, live paper orders; always fetched again, sent or
        # unchanged) were polled: each known at this fetch only (core/queue.py's polled rule)
        batch.polled = (sent | set(batch.same)) & held
        if self.on_trades is not None:
            self._poll_prints(batch, watched | set(self.tickers or ()))

    def _poll_prints(self, batch: FetchBatch, tickers: set[str]) -> None:
        """Without a WebSocket, the prints of ``tickers`` from GET /markets/trades (cursor pages
        from ``min_ts`` = the newest print seen, in seconds; at most ``PRINTS_PER_POLL`` markets
        a poll, in turn), every ``prints_every_s``, paced by the client's bucket like any read.
        Each print passes the row check (``wire.rest_print``): kept and handed to ``on_trades``
        once (by ``trade_id``), or a rejected row with its reason. A 401 is the key's problem
        (said once); another failure is a note, once until a poll succeeds."""
        mono = time.monotonic()
        if self.on_trades is None or (self._prints_at is not None and mono < self._prints_at):
            return
        if self._prints_gate is not None:  # with a key: only while the WebSocket is down
            if not self._prints_gate():
                return
            if not self._prints_gate_said:
                self._prints_gate_said = True
                batch.notes.append(PRINTS_FALLBACK_NOTICE.format(every=self.prints_every_s))
        self._prints_at = mono + self.prints_every_s
        names = sorted(t for t in tickers if ticker_ok(t))
        if len(names) > PRINTS_PER_POLL:
            start = self._prints_turn % len(names)
            names = (names[start:] + names[:start])[:PRINTS_PER_POLL]
            self._prints_turn = start + PRINTS_PER_POLL
        now = self._clock()
        got = self._prints_of(batch, names, lambda t: self._prints_since.get(t, now - PRINTS_LOOKBACK_S * 1000))
        if got:
            self.on_trades(got)
            # the held markets' prints go on the tape too (issue #23), received now, in the recorded order
            held = {t for t in self.watch_for() if isinstance(t, str)}
            batch.tape.extend(TapePrint(t.ticker, print_of(tape_row(t))) for t in got if t.ticker in held)

    def prints_fallback(self, hand: Callable[[list[Trade]], None], down: Callable[[], bool]) -> None:
        """With a key (``LiveBookSource``): poll GET /markets/trades into ``hand``, as without
        one, but only while ``down()`` (the WebSocket that streams the prints is down); said once
        in a fetch's notes when polling first starts."""
        self.on_trades, self._prints_gate = hand, down

    def recover_prints(self, batch: FetchBatch, tickers: Iterable[str], since_ms: int) -> list[Trade]:
        """The prints of ``tickers`` since ``since_ms`` (GET /markets/trades, ``min_ts`` in
        seconds), fetched once: the window a gap on the WebSocket's trade subscription lost.
        Refused prints become rejected rows of ``batch``; a failure is a note."""
        names = sorted(t for t in tickers if ticker_ok(t))
        return self._prints_of(batch, names, lambda t: since_ms, keep_since=False)

    def _prints_of(
        self, batch: FetchBatch, names: list[str], since_of: Callable[[str], int], keep_since: bool = True
    ) -> list[Trade]:
        """One pass over GET /markets/trades for ``names`` (each from ``since_of(t)``), the prints
        in time order, each once (by ``trade_id``, per market, from the newest second seen)."""
        got: list[Trade] = []
        for t in names:
            since = since_of(t)
            try:
                listing = self.client.list_trades({"ticker": t, "min_ts": since // 1000}, max_pages=10)
            except KalshiStopped:
                raise
            except KalshiAuthError as e:
                self._refused(e, batch)
                break
            except KalshiHTTPError as e:
                if not self._prints_failed:
                    self._prints_failed = True
                    batch.notes.append(f"trade prints not polled this time: {e}")
                break
            self._prints_failed = False
            ids = self._prints_ids.setdefault(t, {}) if keep_since else {}  # (a recovery: its caller drops repeats)
            newest = since
            for page, arrived in listing.pages:
                for raw in page:
                    tr, why = rest_print(raw, arrived)
                    if tr is None:
                        sent = raw if isinstance(raw, dict) else {"print": _safe(raw, 200)}
                        batch.rows.append(RawRow(market={"ticker": t}, snapshot=None, payload=sent, reason=why))
                        continue
                    if tr.ticker != t or (tr.trade_id and tr.trade_id in ids):
                        continue  # (another market's print, or one already handed over)
                    if tr.trade_id:
                        ids[tr.trade_id] = tr.ts
                    newest = max(newest, tr.ts)
                    got.append(tr)
            if keep_since:
                self._prints_since[t] = newest
                cut = newest // 1000 * 1000  # the next poll asks from this second again
                self._prints_ids[t] = {i: ts for i, ts in ids.items() if ts >= cut}
        got.sort(key=lambda tr: tr.ts)
        return got

    def _account_limits(self, batch: FetchBatch, notes: list[str]) -> None:
        """Pace from the account's read budget; on failure the default pace stays (said once)."""
        try:
            notes.append(self.client.pace_from_account(self.client.get_account_limits()))
        except KalshiStopped:
            raise
        except KalshiAuthError as e:
            self._refused(e, batch)
            self._limits_at_ms = self.key.retry_at_ms
            return
        except KalshiHTTPError as e:
            self._limits_at_ms = self._clock() + LIMITS_RETRY_MS
            if not self._limits_said:
                self._limits_said = True
                notes.append(
                    f"Kalshi: the account's rate limits could not be read ({e}); reads paced at the default "
                    f"{self.client.bucket.rate:g} reads/s, asked again in {LIMITS_RETRY_MS // 60_000} min"
                )
            return
        self._limits_at_ms = None
        self.key.accepted(batch)  # a signed request went through
        self.believed_per_fetch = believed_budget(self.interval_s, self.client.bucket.rate)

    def _believed_turn(self, believed: set[str], fresh: dict[str, _Seen], batch: FetchBatch) -> set[str]:
        """The believed markets this fetch refreshes: all of them when they fit in
        ``believed_per_fetch``; else the next ones in turn, markets Kalshi lists (known) before
        the rest (a typo, or a market not open), each set round-robin. Said once when it starts."""
        n = self.believed_per_fetch
        if len(believed) <= n:
            self._turns.said = False
            return believed
        order = self._turns.sorted(believed)
        known = [t for t in order if t in fresh or t in self.cache]
        take = self._turns.next("known", known, n)
        if len(take) < n:
            kset = set(known)
            take += self._turns.next("unknown", [t for t in order if t not in kset], n - len(take))
        if not self._turns.said:
            self._turns.said = True
            every = -(-len(believed) // n) * max(self.interval_s, 1.0)
            batch.notes.append(
                f"beliefs: {len(believed):,} believed markets are more than the {n:,} a fetch can refresh at "
                f"{self.client.bucket.rate:g} reads/s every {self.interval_s:g}s; refreshed {n:,} a fetch in "
                f"turn (listed markets first; each about every {every:,.0f}s)"
            )
        return set(take)

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
                by_ticker: dict[str, list[Any]] = {}  # one page's markets, in its order
                for m in page:
                    t = m.get("ticker") if isinstance(m, dict) else None
                    if not isinstance(t, str) or not ticker_ok(t):
                        bad.append(convert(m, ts))
                        continue
                    by_ticker.setdefault(t, []).append(m)
                for t, copies in by_ticker.items():
                    m = copies[0]
                    if len(copies) > 1:  # one page lists a market more than once: said, never collapsed
                        same = all(c == m for c in copies[1:])
                        bad.append(
                            RawRow(
                                market={"ticker": t},
                                snapshot=None,
                                payload={"ticker": t, "listed": len(copies), "rows": copies[:3]},
                                reason=f"market listed {len(copies)} times in one page: "
                                + ("identical copies, one kept" if same else "the copies differ, none kept"),
                            )
                        )
                        if not same:
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
            except KalshiAuthError as e:
                self._refused(e, batch)
                return
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
                ev = _parsed(Event, e)
                if ev is not None and ev.event_ticker is not None and ticker_ok(ev.event_ticker):
                    self.event_series[ev.event_ticker] = ev.series_ticker
                    self._event_override(ev)
                    self._event_exclusive(ev.event_ticker, ev)
            now = time.monotonic()
            now_ms = self._clock()
            for s in self.client.list_series():
                se = _parsed(Series, s)
                if se is not None and se.ticker is not None and ticker_ok(se.ticker):
                    self._set_series_fees(se.ticker, Fees.of(se), now)
                    self.fees.saw_series(se.ticker, now_ms)
        except KalshiStopped:
            raise
        except KalshiAuthError as e:
            self._refused(e, batch)
        except KalshiHTTPError as e:
            batch.notes.append(f"series and fees looked up one by one instead: {e}")

    def _relisted(self) -> None:
        """A listing of everything (full, or the narrowed set) replaces the cache, in its order."""
        self.cache, self._pos, self._next_pos = {}, {}, 0

    def _merge(self, fresh: dict[str, _Seen], old: dict[str, _Seen], turn: set[str]) -> None:
        """The markets fetched this time into the cache: one listed again exactly as it was, and
        not refreshed for a belief or a position, keeps its row (and its quote's time); the others
        are looked at again. Narrowed (``--ticker``/``--series``/``--event``), every market is
        the operator's: each listing's quotes are this fetch's, handed over (a few markets)."""
        cache, pos = self.cache, self._pos
        for t, s in fresh.items():
            was = old.get(t)
            if was is not None and t not in turn and not self.narrowed and was.market == s.market:
                s = was
            else:
                self._touch.add(t)
            if t not in pos:
                pos[t] = self._next_pos
                self._next_pos += 1
            cache[t] = s

    def _quoted(self, t: str) -> bool:
        """Whether the row last handed over for ``t`` carried a quote (an active market)."""
        seen = self.cache.get(t)
        return seen is not None and seen.sent is not None and seen.sent.snapshot is not None

    def _forget(self, t: str) -> None:
        self.cache.pop(t, None)
        self._pos.pop(t, None)

    def _set_series_fees(self, series: str, fees: Fees, now: float) -> None:
        was = self.series_fees.get(series)
        if was is None or was[0] != fees:
            self._series_version += 1  # every market's row is made again at the next fetch
        self.series_fees[series] = (fees, now)

    def _lookups(self, batch: FetchBatch, watched: set[str]) -> None:
        """Series from events and fees from series, cached; watched markets first, at most
        ``lookups_per_fetch`` requests. Every market is looked at after a full listing and when
        a series' fees come due (``fee_ttl_s``); otherwise only the markets listed anew and those
        left for later."""
        budget = self.lookups_per_fetch
        now = time.monotonic()
        scan = self._lookup_scan_at is None or now >= self._lookup_scan_at
        cands: Iterable[str] = self.cache if scan else [t for t in self._unresolved | self._touch if t in self.cache]
        order = sorted(cands, key=lambda t: (t not in watched, t))
        self._touch.update(order)
        left: set[str] = set()
        pending = 0
        for t in order:
            m = self.cache[t].market
            ev = m.get("event_ticker") if isinstance(m, dict) else None
            if not isinstance(ev, str) or not ticker_ok(ev):
                continue
            if ev not in self.event_series:
                if budget <= 0:
                    pending += 1
                    left.add(t)
                    continue
                budget -= 1
                try:
                    event = self.client.get_event(ev)
                except KalshiStopped:
                    raise
                except KalshiAuthError as e:  # not "tried": asked again next fetch
                    self._refused(e, batch)
                    self._unresolved = left | set(order[order.index(t) :])
                    return
                except KalshiHTTPError as e:
                    batch.notes.append(f"event {_safe(ev, 60)}: {e}")
                    self.event_series[ev] = ""  # tried; asked again after the next full listing
                    continue
                parsed = _parsed(Event, event)
                self.event_series[ev] = parsed.series_ticker if parsed is not None else ""
                if parsed is not None and parsed.event_ticker == ev:
                    self._event_override(parsed)
                    self._event_exclusive(ev, parsed)
            s = self.event_series[ev]
            if not s:
                continue
            cached = self.series_fees.get(s)
            if cached is not None and now - cached[1] < self.fee_ttl_s:
                continue
            if budget <= 0:
                pending += 1
                left.add(t)
                continue
            budget -= 1
            try:
                data = self.client.get_series(s)
            except KalshiStopped:
                raise
            except KalshiAuthError as e:
                self._refused(e, batch)
                self._unresolved = left | set(order[order.index(t) :])
                return
            except KalshiHTTPError as e:
                batch.notes.append(f"series {_safe(s, 60)}: {e}")
                self._set_series_fees(s, cached[0] if cached else Fees(), now)
                continue
            se = _parsed(Series, data)
            self._set_series_fees(s, Fees.of(se) if se is not None else Fees(), now)
            if se is not None:
                self.fees.saw_series(s, self._clock())
        self._unresolved = left
        if scan:  # the next pass over every market: when the first series' fees come due
            due = min((at for _f, at in self.series_fees.values()), default=now) + self.fee_ttl_s
            self._lookup_scan_at = due if due > now else now + self.fee_ttl_s  # (one due now: in ``left``)
        if pending:
            batch.notes.append(
                f"series or fees of {pending} markets not looked up yet "
                f"(at most {self.lookups_per_fetch} look-ups a fetch; the rest follow)"
            )

    def _event_exclusive(self, event: str, ev: Event) -> None:
        """Keep whether ``event``'s markets are mutually exclusive, as Kalshi says (None: it does
        not say); a change makes every row again (rare: once as events are first read)."""
        if self.event_exclusive.get(event) != ev.mutually_exclusive:
            self._exclusive_version += 1
        self.event_exclusive[event] = ev.mutually_exclusive

    def _event_override(self, ev: Event) -> None:
        o = ev.fee_override()
        if o is not None:
            self.fees.event_override(o, self._clock())

    def _fee_changes(self, batch: FetchBatch) -> None:
        """Read the series' scheduled fee changes and the events' overrides, every
        ``fee_changes_every_s``. A failure keeps what was last read (a note: fees stay as known)."""
        now = time.monotonic()
        if self._fee_changes_at is not None and now - self._fee_changes_at < self.fee_changes_every_s:
            return
        self._fee_changes_at = now
        reads = (
            ("GET /series/fee_changes", self._series_fee_changes),
            ("GET /events/fee_changes", self._event_fee_changes),
        )
        for what, read in reads:
            try:
                refused = read(batch)
            except KalshiStopped:
                raise
            except KalshiAuthError as e:  # a key problem, said as one (the last known fees kept)
                self._refused(e, batch)
                continue
            except KalshiHTTPError as e:
                batch.notes.append(f"fee changes not read, the last known kept ({what}: {e})")
                continue
            if refused:
                batch.notes.append(f"{what}: {refused} change(s) Kakashi cannot read, left out")

    def _exchange_status(self, batch: FetchBatch) -> None:
        """Which exchange shards are halted (``GET /exchange/status``, every
        ``exchange_status_every_s``, paced like every read): a shard whose
        ``exchange_index_statuses[].trading_active`` is false (spec 3.34); without that list, the
        top-level ``trading_active`` is shard 0's (the SDK's ``ExchangeStatus``). A failed read
        keeps the last known (a note, once); every fetch hands the known set on."""
        now = time.monotonic()
        if self._status_at is None or now - self._status_at >= self.exchange_status_every_s:
            self._status_at = now
            try:
                st = parse(ExchangeStatus, self.client.get_exchange_status(), "GET /exchange/status")
            except KalshiStopped:
                raise
            except KalshiAuthError as e:
                self._refused(e, batch)
            except (KalshiHTTPError, RowError) as e:
                if not self._status_said:
                    self._status_said = True
                    batch.notes.append(f"exchange status not read, the last known kept (GET /exchange/status: {e})")
            else:
                shards = st.shards()
                if shards:
                    halted = {s.exchange_index for s in shards if s.trading_active is False}
                    self.halted_shards = frozenset(i for i in halted if i is not None)
                else:
                    self.halted_shards = frozenset({0}) if st.trading_active is False else frozenset()
        batch.halted_shards = self.halted_shards

    def _series_fee_changes(self, batch: FetchBatch) -> int:
        got = [_parsed(SeriesFeeChange, c) for c in self.client.series_fee_changes()]
        self.fees.set_series_changes((c for c in got if c is not None), self._clock())
        return sum(c is None for c in got)

    def _event_fee_changes(self, batch: FetchBatch) -> int:
        listing = self.client.list_event_fee_changes(max_pages=self.max_pages)
        self._warn_truncated(batch, listing, "GET /events/fee_changes")
        got = [_parsed(EventFeeChange, c) for c in listing.items()]
        self.fees.set_event_changes(c for c in got if c is not None)
        return sum(c is None for c in got)

    def apply_ws(self, frame: object) -> bool:
        """A WebSocket frame for the fee state: an ``event_fee_update`` (on ``market_lifecycle_v2``)
        sets its event's override from now, null fields cleared; the next fetch's rows carry it.
        False when the frame is not one this reads (left alone). ``ws.LiveBookSource`` hands
        it the feed's ``event_fee_update`` frames at each fetch (``runtime.live_books``)."""
        try:
            u = parse(EventFeeUpdate, frame, "frame")
        except RowError:
            return False
        self.fees.event_override(u.msg, self._clock())
        return True

    def apply_lifecycle(self, frame: object) -> bool:
        """A WebSocket ``market_lifecycle_v2`` frame, applied to the market as last listed, so
        the next fetch's row carries it without waiting for a listing: ``determined`` sets the
        status, result and ``settlement_value`` (a binary market's result from a value of 1 or 0
        when Kalshi names none); ``price_level_structure_updated`` sets ``price_ranges``; an
        ``exchange_index`` carried sets the shard. False when the frame is not one this reads
        or its market is not known (left alone: the listing brings it)."""
        msg = frame.get("msg") if isinstance(frame, dict) else None
        try:
            m = parse(MarketLifecycle, msg, "market_lifecycle_v2 msg")
        except RowError:
            return False
        seen = self.cache.get(m.market_ticker or "")
        if seen is None or not isinstance(seen.market, dict):
            return False
        new = dict(seen.market)
        if m.event_type == "determined":
            value = _dec(m.settlement_value)
            result = m.result or None
            if result is None and new.get("market_type", "binary") == "binary" and value in (0, 1):
                result = "yes" if value == 1 else "no"
            if result is None or (result == "scalar" and value is None):
                return False  # not enough to settle on: the listing brings it
            new["status"], new["result"] = "determined", result
            if m.settlement_value is not None:
                new["settlement_value_dollars"] = m.settlement_value
                new.pop("settlement_value", None)  # (a legacy twin would disagree)
        elif m.event_type == "price_level_structure_updated" and m.price_ranges is not None:
            new["price_ranges"] = m.price_ranges
        if m.exchange_index is not None:
            new["exchange_index"] = m.exchange_index
        changed = {k: v for k, v in new.items() if seen.market.get(k) != v or k not in seen.market}
        if not changed:
            return False
        # kept over the listing until it says the same (a held market is re-listed every fetch,
        # and Kalshi's listing can lag the WebSocket), or the listing has a result of its own
        self._overlays[m.market_ticker or ""] = {**self._overlays.get(m.market_ticker or "", {}), **changed}
        seen.market, seen.row, seen.made_with = new, None, None
        self._touch.add(m.market_ticker or "")
        return True

    def _overlay(self) -> None:
        """The lifecycle changes the WebSocket brought, over the markets as listed (apply_lifecycle)."""
        for t, ov in list(self._overlays.items()):
            seen = self.cache.get(t)
            if seen is None or not isinstance(seen.market, dict):
                continue
            listed = seen.market
            if all(listed.get(k) == v for k, v in ov.items()) or listed.get("status") in SETTLED_WORDS:
                del self._overlays[t]  # the listing caught up
                continue
            seen.market, seen.row, seen.made_with = {**listed, **ov}, None, None
            self._touch.add(t)

    def _books(self, batch: FetchBatch, watched: set[str], held: set[str]) -> dict[str, tuple[dict[str, Any], int]]:
        want = [
            t
            for t in sorted(watched)
            if t in self.cache
            and isinstance(self.cache[t].market, dict)
            and self.cache[t].market.get("status") == "active"
        ]
        if not want or not self.key.due(self._clock()):
            return {}
        try:
            if self._batch_books:
                try:
                    books = self.client.get_orderbooks(want)  # signed with a key, unsigned without
                except KalshiAuthError:
                    raise
                except KalshiHTTPError as e:
                    if e.status != 404:
                        raise
                    self._batch_books = False
                    if not self._batch_said:
                        self._batch_said = True
                        batch.notes.append(
                            f"{e}: order books asked for one market at a time instead "
                            + (
                                f"(every one, at {self.client.bucket.rate:g} reads/s)"
                                if self.book_all
                                else f"(at most {self._books_per_fetch()} a fetch, held markets first)"
                            )
                        )
            if not self._batch_books:
                books = self._books_one_by_one(want, held)
        except KalshiAuthError as e:
            self._refused(e, batch)  # a key problem (or a key wanted), not a feed glitch: tried again later
            return {}
        except KalshiStopped:
            raise
        except KalshiHTTPError as e:
            batch.errors.append(str(e))
            return {}
        self.key.accepted(batch)
        return books

    def _books_per_fetch(self) -> int:
        """Books asked for one by one in a fetch: half the reads an interval allows (``book_all``:
        every one, the client's pace the only bound)."""
        if self.book_all:
            return self.max_markets
        return max(1, int(max(self.interval_s, 1.0) * self.client.bucket.rate / 2))

    def _books_one_by_one(self, want: list[str], held: set[str]) -> dict[str, tuple[dict[str, Any], int]]:
        """``GET /markets/{ticker}/orderbook`` each (a server without the batch endpoint), paced by
        the client, at most ``_books_per_fetch``: the held markets first, the rest in turn."""
        n = self._books_per_fetch()
        first = [t for t in want if t in held]
        rest = [t for t in want if t not in held]
        order = first[:n] + (self._turns.next("books", rest, n - len(first)) if len(first) < n else [])
        out: dict[str, tuple[dict[str, Any], int]] = {}
        for t in order:
            try:
                ob = self.client.get_orderbook(t)
            except KalshiHTTPError as e:
                if isinstance(e, (KalshiAuthError, KalshiStopped)) or e.status != 404:
                    raise
                continue  # that market has no book (gone): the others still do
            out[t] = (ob, self._clock())
        return out


def believed_budget(interval_s: float, reads_per_s: float) -> int:
    """How many believed markets one fetch refreshes: half the reads ``reads_per_s`` allows in an
    interval (at least a second's), each ``TICKERS_PER_LISTING`` markets costing a listing and a
    book request."""
    requests = int(max(interval_s, 1.0) * reads_per_s / 2)
    return max(1, requests // 2) * TICKERS_PER_LISTING


class _Turns:
    """Round-robin over sorted tickers: each pool resumes after the last ticker it served."""

    def __init__(self) -> None:
        self.after: dict[str, str] = {}
        self.said = False
        self._of: frozenset[str] = frozenset()
        self._sorted: list[str] = []

    def sorted(self, tickers: set[str]) -> list[str]:
        if tickers != self._of:  # sorted again only when the belief set changes
            self._of, self._sorted = frozenset(tickers), sorted(tickers)
        return self._sorted

    def next(self, pool: str, tickers: list[str], n: int) -> list[str]:
        if len(tickers) <= n:
            return list(tickers)
        i = bisect.bisect_right(tickers, self.after.get(pool, ""))
        take = tickers[i : i + n]
        take += tickers[: n - len(take)]
        self.after[pool] = take[-1]
        return take


def _parsed(model: type[W], obj: Any) -> W | None:
    """``obj`` as ``model`` (schemas), None when it cannot be one."""
    try:
        return parse(model, obj)
    except RowError:
        return None
