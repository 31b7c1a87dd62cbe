"""Live order books and trade prints over Kalshi's WebSocket feed (read-only).

``BookFeed`` keeps one connection in a background thread: it subscribes to
``orderbook_delta`` for the markets it is told to watch (and to ``trade``; with ``lifecycle``
to ``market_lifecycle_v2`` too), keeps each book from its ``orderbook_snapshot`` plus
``orderbook_delta`` messages, and checks each subscription's ``seq``. A gap (Kalshi's error
25, a subscription buffer overflow, is one) or a frame it cannot apply drops the books and
asks for fresh snapshots on the same subscription (``get_snapshot``; a resubscribe when the
server refuses it); a reconnect rebuilds every book from a fresh snapshot; reconnects back off
exponentially (with jitter) and every wait ends promptly on ``stop()``. Kalshi's ``heartbeat``
pings are answered by the websockets library itself. ``event_fee_update`` frames are kept for
``LiveBookSource`` to hand to the source's fee state (``on_fee_update``) in the engine's
thread; ``market_lifecycle_v2`` messages likewise to ``on_lifecycle`` (``KalshiSource.apply_lifecycle``).

``LiveBookSource`` wraps a polling source (REST): it hands the engine the polled rows with
the book and top of book of every market whose WebSocket book is in sync replaced by that
book, stamped with the time it was read (the stale-quote guard sees real freshness). A
market without a synced book keeps its polled row, so trading never waits on a WebSocket
that is not there. ``feed_status()`` says which feed is live.

Prints: a gap on the trade subscription (error 25 naming it, a skipped ``seq``) has the lost
window fetched once over REST (``KalshiSource.recover_prints``, from the newest print the
stream delivered); while the feed is down, a recording's prints are polled (``KalshiSource.
prints_fallback``). Every print reaches ``on_trades`` once by ``trade_id``.

Recording (``BookFeed(record_books=True)``): every snapshot and delta the feed applies is
kept as a ``BookEvent`` (in catalog units) until the engine's thread takes them
(``LiveBookSource.on_book_events``, the catalog's ``book_deltas`` table). A snapshot is one
``snapshot`` event per level (an empty book: one event without side or price); a book the
feed drops (a sequence gap, a frame it cannot apply, a reconnect, a changed watch list) gets
a ``reset`` event, and its next ``snapshot`` is where a rebuild starts again. Events nobody
takes are bounded: past ``max_book_events`` deltas they are dropped and every book resubscribed
(``reset`` then fresh ``snapshot`` rows mark the hole).

Prices and counts arrive as fixed-point strings (``"0.4200"``, ``"13.00"``); books are kept
in exact integer units ($0.0001, 1/100 contract) and handed over as exact Decimals/ints.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from kakashi_tui.adapters.catalog import from_cc, from_hundredths, trade_problem
from kakashi_tui.adapters.kalshi.schemas import (
    BookDelta,
    BookSnapshot,
    MarketLifecycle,
    RowError,
    Subscribed,
    TradePrint,
    Wire,
    WsError,
    WsMessage,
    _safe,
    frame_exchange_ms,
    parse,
    serial,
    ticker_ok,
)
from kakashi_tui.adapters.kalshi.wire import Trade, tape_row
from kakashi_tui.adapters.source import FetchBatch, RawRow, Source
from kakashi_tui.adapters.tape import BookRow, TapeBuilder
from kakashi_tui.core.backoff import Backoff

HeaderProvider = Callable[[], dict[str, str]]  # fresh signed headers per connection (kalshi_auth)
WS_PATH = "/trade-api/ws/v2"
W = TypeVar("W", bound=Wire)


def ws_url_for(api_base: str) -> str:
    """Kalshi's WebSocket URL for a REST base: ``https://external-api.kalshi.com/trade-api/v2`` ->
    ``wss://external-api-ws.kalshi.com/trade-api/ws/v2`` (demo likewise); any other host (a
    loopback server) serves both on the same host and port."""
    from urllib.parse import urlsplit

    u = urlsplit(api_base)
    scheme = "wss" if u.scheme == "https" else "ws"
    host = u.netloc
    if host.startswith("external-api."):
        host = "external-api-ws." + host.removeprefix("external-api.")
    return f"{scheme}://{host}{WS_PATH}"


class Malformed(ValueError):
    """A frame that cannot be read or applied."""


def _parse(model: type[W], body: Any, what: str) -> W:
    """A frame's body as its schema (``schemas``), or Malformed with the first bad field."""
    try:
        return parse(model, body, what)
    except RowError as e:
        raise Malformed(str(e)) from None


def _serial(name: str, v: Any) -> int:
    """A subscription id or sequence number: an integer a catalog can hold (int64)."""
    try:
        return serial(name, v)
    except RowError as e:
        raise Malformed(str(e)) from None


@dataclass
class Book:
    """One market's bids by side, price_cc -> qty_hundredths."""

    ticker: str
    yes: dict[int, int] = field(default_factory=dict)
    no: dict[int, int] = field(default_factory=dict)
    updated_ms: int = 0

    @classmethod
    def from_rules(cls, msg: Any, now_ms: int) -> Book:
        """A book from an ``orderbook_snapshot`` body (``schemas.BookSnapshot``: exact units)."""
        snap = _parse(BookSnapshot, msg, "snapshot")
        return cls(snap.market_ticker, dict(snap.yes_dollars_fp), dict(snap.no_dollars_fp), now_ms)

    def apply(self, msg: Any, now_ms: int) -> tuple[str, int, int]:
        """Apply one ``orderbook_delta`` body (``schemas.BookDelta``); (side, price_cc, delta_hundredths)."""
        delta = _parse(BookDelta, msg, "delta")
        side, p, d = delta.side, delta.price_dollars, delta.delta_fp
        book = self.yes if side == "yes" else self.no
        q = book.get(p, 0) + d
        if q < 0:
            raise Malformed(f"delta takes {side} {p} below zero")
        if q:
            book[p] = q
        else:
            book.pop(p, None)
        self.updated_ms = now_ms
        return side, p, d

    def raw_snapshot(self, ts: int) -> dict[str, Any]:
        """The book as a source's raw snapshot: bids best first, exact values (contract form)."""
        yes = sorted(self.yes.items(), reverse=True)
        no = sorted(self.no.items(), reverse=True)
        return {
            "ticker": self.ticker,
            "ts": ts,
            "yes_bid": from_cc(yes[0][0]) if yes else None,
            "yes_ask": from_cc(10_000 - no[0][0]) if no else None,
            "yes_bids": [[from_cc(p), from_hundredths(q)] for p, q in yes],
            "no_bids": [[from_cc(p), from_hundredths(q)] for p, q in no],
        }


class BookEvent(NamedTuple):
    """One applied book change, in catalog units (a row of the catalog's ``book_deltas``)."""

    ts: int  # when the feed applied it (UTC epoch ms)
    ticker: str
    side: str | None  # yes | no; None for a reset or an empty book's snapshot
    price_cc: int | None
    delta_hundredths: int | None  # snapshot: the level's size; delta: the signed change
    seq: int | None
    sid: int | None
    kind: str  # snapshot | delta | reset
    exchange_ts: int | None = None  # the exchange's time of its frame (None: a reset, or not given)


#: The most a book frame's lag (receive time - the exchange's time) is taken as: an hour (far
#: past any stale-quote limit; a quote stamped further back could fall out of the time range).
MAX_LAG_MS = 3_600_000
MAX_BOOK_EVENTS = 200_000  # events kept for a recorder that has not taken them yet
NOT_BOOKS = ("trade", "subscribed", "unsubscribed", "ok", "error", "event_fee_update", "market_lifecycle_v2")
GET_SNAPSHOT = "get_snapshot"  # a pending command: a resync on the live subscription
BUFFER_OVERFLOW = 25  # Kalshi's error code when a subscription's reader fell behind (3.34): a gap
PRINTS_LOST_LOOKBACK_MS = 600_000  # a gap before any print: recovered from this long before it
FAULTS_FORGOTTEN_MS = 60_000  # a book fault this long after the last starts the rebuild backoff again
HANDED_IDS = 100_000  # trade_ids remembered so a print reaching the recorder twice is dropped


@dataclass
class Health:
    state: str = "idle"  # idle | connecting | live | down
    detail: str = ""
    connects: int = 0
    gaps: int = 0
    resubscribes: int = 0
    resyncs: int = 0  # ``get_snapshot`` requests: books rebuilt on the same subscription
    malformed: int = 0
    last_message_ms: int = 0
    record_overflows: int = 0  # recorded events dropped because nobody took them in time
    rejected: int = 0  # trade prints the row check refused (handed over as rejected rows)
    lifecycle: int = 0  # market_lifecycle_v2 messages read (no consumer yet: counted, then dropped)
    fee_updates: int = 0  # event_fee_update frames received (handed to the source's fee state)
    trade_gaps: int = 0  # error 25 or a sequence gap on the trade subscription: prints lost, fetched over REST


def _now_ms() -> int:
    return int(time.time() * 1000)


class BookFeed:
    """One WebSocket connection in a background thread; books readable from any thread."""

    def __init__(
        self,
        url: str,
        headers: HeaderProvider | None = None,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        open_timeout: float = 5.0,
        trades: bool = True,
        clock: Callable[[], int] = _now_ms,
        record_books: bool = False,
        max_book_events: int = MAX_BOOK_EVENTS,
        lifecycle: bool = False,
    ) -> None:
        self.url = url
        self.headers = headers
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.open_timeout = open_timeout
        self.want_trades = trades
        self.want_lifecycle = lifecycle  # market_lifecycle_v2: event_fee_update frames for the source
        self._fee_frames: list[dict[str, Any]] = []  # event_fee_update frames not yet handed over
        self._lifecycle_frames: list[dict[str, Any]] = []  # market_lifecycle_v2 frames not yet handed over
        self.clock = clock
        self._lock = threading.Lock()
        self._books: dict[str, Book] = {}  # in sync only
        self._watch: set[str] = set()
        self._trades: list[Trade] = []
        self._rejects: list[tuple[str, Any]] = []  # (reason, the print as sent) not yet handed over
        self._newest_print_ms: int | None = None  # the newest print the stream delivered
        self._trade_gap: int | None = None  # a gap on the trade subscription: prints lost since (ms)
        self._events: list[BookEvent] | None = [] if record_books else None
        self._event_deltas = 0  # deltas among them (the bound: snapshots come only with a subscription)
        self.max_book_events = max_book_events
        self.health = Health()
        # how late the latest book frame with an exchange time arrived (receive - exchange, ms,
        # 0..MAX_LAG_MS): the books' age, as the stream delivers them in order (``lag_ms``)
        self._lag_ms = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # -- control (any thread) ---------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kalshi-ws", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._poke()
        if self._thread is not None:
            self._thread.join(timeout)

    def watch(self, tickers: Iterable[str]) -> None:
        """The markets whose books to keep; a change resubscribes."""
        new = {t for t in tickers if isinstance(t, str) and t}
        with self._lock:
            if new == self._watch:
                return
            self._watch = new
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop has closed
                pass

    def books(self) -> dict[str, Book]:
        """The books currently in sync (copies)."""
        with self._lock:
            return {t: Book(t, dict(b.yes), dict(b.no), b.updated_ms) for t, b in self._books.items()}

    def books_and_events(self) -> tuple[dict[str, Book], list[BookEvent]]:
        """The books in sync (copies) and the book changes applied since the last take, at one
        instant: every change taken is in the books, none after (the tape and the rows agree)."""
        with self._lock:
            books = {t: Book(t, dict(b.yes), dict(b.no), b.updated_ms) for t, b in self._books.items()}
            events: list[BookEvent] = []
            if self._events:
                events, self._events = self._events, []
                self._event_deltas = 0
        return books, events

    def take_trades(self) -> list[Trade]:
        with self._lock:
            out, self._trades = self._trades, []
        return out

    def take_trade_gap(self) -> int | None:
        """Since when prints may have been lost on the trade subscription (UTC epoch ms: the
        newest print delivered before the gap), or None when no gap came since the last call."""
        with self._lock:
            out, self._trade_gap = self._trade_gap, None
        return out

    def _lost_prints(self, why: str) -> None:
        """A gap on the trade subscription (error 25, a sequence gap): the window from the newest
        print delivered (else the last ``PRINTS_LOST_LOOKBACK_MS``) is to be fetched over REST."""
        self.health.trade_gaps += 1
        self.health.detail = why[:200]
        with self._lock:
            if self._trade_gap is None:  # (two gaps before a recovery: the earlier window covers both)
                newest = self._newest_print_ms
                self._trade_gap = newest if newest is not None else self.clock() - PRINTS_LOST_LOOKBACK_MS

    def take_fee_updates(self) -> list[dict[str, Any]]:
        """The ``event_fee_update`` frames received since the last call, in order, as sent."""
        with self._lock:
            out, self._fee_frames = self._fee_frames, []
        return out

    def take_lifecycle(self) -> list[dict[str, Any]]:
        """The ``market_lifecycle_v2`` frames received since the last call, in order, as sent."""
        with self._lock:
            out, self._lifecycle_frames = self._lifecycle_frames, []
        return out

    def take_rejects(self) -> list[tuple[str, Any]]:
        """The trade prints the row check refused since the last call: (reason, the print as sent)."""
        with self._lock:
            out, self._rejects = self._rejects, []
        return out

    def take_book_events(self) -> list[BookEvent]:
        """The book changes applied since the last call, in order (empty unless recording)."""
        with self._lock:
            if not self._events:
                return []
            out, self._events = self._events, []
            self._event_deltas = 0
        return out

    def _drop_books(self, tickers: Iterable[str] | None = None) -> None:
        """Forget every book, or those of ``tickers`` (the caller holds the lock); a recording
        marks each with ``reset``."""
        gone = sorted(self._books if tickers is None else set(tickers) & self._books.keys())
        if self._events is not None and gone:
            now = self.clock()
            self._events.extend(BookEvent(now, t, None, None, None, None, None, "reset") for t in gone)
        for t in gone:
            del self._books[t]

    @property
    def live(self) -> bool:
        return self.health.state == "live"

    @property
    def lag_ms(self) -> int:
        """How old the books are by the exchange's clock: the latest book frame's receive time
        less its exchange time (``schemas.frame_exchange_ms``), 0 until a frame says (#22)."""
        with self._lock:
            return self._lag_ms

    # -- the connection (its own thread and event loop) ---------------------------------------
    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from websockets.asyncio.client import connect

        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        policy = Backoff(self.backoff_base, self.backoff_max)  # core/backoff.py: as the HTTP client's
        failures = 0  # in a row: the retry's index
        while not self._stop.is_set():
            self.health.state = "connecting"  # (the last failure stays in detail until connected)
            try:
                headers = self.headers() if self.headers is not None else None
                async with connect(
                    self.url,
                    additional_headers=headers,
                    open_timeout=self.open_timeout,
                    ping_interval=10,
                    ping_timeout=10,
                    close_timeout=1,
                    proxy=None,
                ) as ws:
                    self.health.connects += 1
                    self.health.detail = ""
                    failures = 0
                    await self._session(ws)
                if self._stop.is_set():
                    break
                self._down("closed by the server")
            except Exception as e:  # noqa: BLE001 - refused, reset, timeout, bad handshake: back off, retry
                self._down(f"{e.__class__.__name__}: {e}"[:200])
            if self._stop.is_set():
                break
            await self._sleep(policy.delay(failures))
            failures += 1
        self.health.state = "idle"
        with self._lock:
            self._books.clear()

    def _down(self, why: str) -> None:
        self.health.state, self.health.detail = "down", why
        with self._lock:
            self._lag_ms = 0  # the next connection's frames say anew
            self._drop_books()  # a reconnect rebuilds every book from a fresh snapshot

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _session(self, ws: Any) -> None:
        state = _Session(self, ws)
        await state.sync()
        self.health.state = "live"
        while not self._stop.is_set():
            recv = asyncio.ensure_future(ws.recv())
            assert self._wake is not None
            self._wake.clear()
            wake = asyncio.ensure_future(self._wake.wait())
            done, _ = await asyncio.wait({recv, wake}, timeout=state.until_due(), return_when=asyncio.FIRST_COMPLETED)
            if recv not in done:
                recv.cancel()
                wake.cancel()
                if self._stop.is_set():
                    await ws.close()
                    return
                await state.sync()  # the watch list changed, or a resync is due
                continue
            wake.cancel()
            await state.handle(recv.result())


class _Session:
    """Subscriptions of one connection: sid -> channel/tickers/expected seq."""

    def __init__(self, feed: BookFeed, ws: Any) -> None:
        self.feed, self.ws = feed, ws
        self.next_id = 1
        self.book_sid: int | None = None
        self.book_tickers: set[str] = set()
        self.trade_sid: int | None = None
        self.seq: dict[int, int] = {}
        self.pending: dict[int, str] = {}  # command id -> channel
        self.trades_requested = False
        self.lifecycle_requested = False
        self.faults = 0  # book rebuilds in a row (each within FAULTS_FORGOTTEN_MS of the last)
        self.last_fault_ms: int | None = None
        self.awaiting: set[str] = set()  # books dropped on the live subscription, until their snapshot
        self.resync_at: float | None = None  # loop time of the get_snapshot a backoff holds back

    async def send(self, cmd: str, params: dict[str, Any], channel: str = "") -> None:
        cid = self.next_id
        self.next_id += 1
        if channel:
            self.pending[cid] = channel
        await self.ws.send(json.dumps({"id": cid, "cmd": cmd, "params": params}))

    def until_due(self) -> float | None:
        """Seconds until a held-back ``get_snapshot`` is due (None: nothing is)."""
        if self.resync_at is None:
            return None
        return max(0.0, self.resync_at - asyncio.get_running_loop().time())

    async def sync(self) -> None:
        """Subscribe to what is watched (once per change of the watch list); send a held-back
        ``get_snapshot`` once its backoff is over."""
        with self.feed._lock:
            want = set(self.feed._watch)
        if self.feed.want_trades and not self.trades_requested:
            self.trades_requested = True
            await self.send("subscribe", {"channels": ["trade"]}, "trade")
        if self.feed.want_lifecycle and not self.lifecycle_requested:
            self.lifecycle_requested = True
            await self.send("subscribe", {"channels": ["market_lifecycle_v2"]}, "market_lifecycle_v2")
        if want != self.book_tickers or self.book_sid is None:
            await self.resubscribe(want)
        elif self.resync_at is not None and self.until_due() == 0:
            await self.get_snapshot()

    async def resubscribe(self, tickers: set[str]) -> None:
        if self.book_sid is not None:
            await self.send("unsubscribe", {"sids": [self.book_sid]})
            self.seq.pop(self.book_sid, None)
            self.book_sid = None
        with self.feed._lock:
            self.feed._drop_books()
        self.awaiting.clear()
        self.resync_at = None
        self.book_tickers = set(tickers)
        if tickers:
            self.feed.health.resubscribes += 1
            await self.send(
                "subscribe", {"channels": ["orderbook_delta"], "market_tickers": sorted(tickers)}, "orderbook_delta"
            )

    async def rebuild(self) -> None:
        """Books we cannot trust (a malformed frame, a sequence gap, error 25, a recording that
        fell behind): drop the books at once and ask for fresh snapshots on the same
        subscription (``update_subscription`` with ``get_snapshot``; deltas for a book awaiting
        its snapshot are skipped, the snapshot already holds them). Without a subscription, or
        when the server refuses the command, subscribe again instead. The first rebuild is at
        once; while faults keep coming back (within ``FAULTS_FORGOTTEN_MS`` of each other) the
        next waits the feed's backoff (``core/backoff``), frames still read meanwhile. A server
        that keeps sending what cannot be applied was asked for every book's snapshot about 90
        times a second (a desk soak: 269 resubscribes in 3 s), which a real exchange would
        throttle or ban; meanwhile the polled rows serve, as with the feed down."""
        feed = self.feed
        if self.resync_at is not None:
            return  # already dropped, and a resync is on its way
        now = feed.clock()
        if self.last_fault_ms is not None and now - self.last_fault_ms > FAULTS_FORGOTTEN_MS:
            self.faults = 0
        self.last_fault_ms = now
        wait = Backoff(feed.backoff_base, feed.backoff_max).delay(self.faults - 1) if self.faults else 0.0
        self.faults += 1
        if self.book_sid is None:
            await self.resubscribe(self.book_tickers)  # (subscribing anew: nothing to resync on)
            return
        with feed._lock:
            feed._drop_books(self.book_tickers)
        self.awaiting = set(self.book_tickers)
        self.seq.pop(self.book_sid, None)  # the numbering goes on from the next frame
        if wait > 0:
            self.resync_at = asyncio.get_running_loop().time() + wait
            return
        await self.get_snapshot()

    async def get_snapshot(self) -> None:
        """Ask for fresh snapshots of the books awaiting one, on the live subscription."""
        self.resync_at = None
        if self.book_sid is None or not self.awaiting:
            return
        self.feed.health.resyncs += 1
        for cid in [c for c, what in self.pending.items() if what == GET_SNAPSHOT]:
            del self.pending[cid]  # (a success may bring only the snapshots: one request is remembered)
        params = {"sids": [self.book_sid], "action": "get_snapshot", "market_tickers": sorted(self.awaiting)}
        await self.send("update_subscription", params, GET_SNAPSHOT)

    async def handle(self, frame: Any) -> None:
        feed = self.feed
        now = feed.clock()
        feed.health.last_message_ms = now
        msg: Any = None
        try:
            msg = json.loads(frame)
            env = _parse(WsMessage, msg, "frame")
            kind = env.type
            if kind == "subscribed":
                body = _parse(Subscribed, env.msg or {}, "subscribed msg")
                cid = env.id
                channel = (self.pending.pop(cid, None) if cid is not None else None) or body.channel
                if channel == "orderbook_delta":
                    self.book_sid = _serial("sid", body.sid)  # (a bad one: no book is taken until resubscribed)
                elif channel == "trade":
                    self.trade_sid = body.sid
                return
            if kind in ("unsubscribed", "ok"):
                if env.id is not None:
                    self.pending.pop(env.id, None)
                return
            if kind == "error":
                err = _parse(WsError, env.msg or {}, "error msg")
                feed.health.detail = f"server error: {err.msg}"[:200]
                if env.id is not None and self.pending.pop(env.id, None) == GET_SNAPSHOT:
                    # a server without get_snapshot (or refusing it now): subscribe again instead
                    feed.health.detail = f"get_snapshot refused ({err.msg}): resubscribed"[:200]
                    await self.resubscribe(self.book_tickers)
                    return
                if err.code == BUFFER_OVERFLOW and self.trade_sid is not None and env.sid in (None, self.trade_sid):
                    feed._lost_prints(f"server error {err.code} (subscription buffer overflow): prints fetched again")
                if err.code == BUFFER_OVERFLOW and self.book_tickers and env.sid in (None, self.book_sid):
                    # the reader fell behind: frames were lost, so the books are a gap's
                    feed.health.gaps += 1
                    feed.health.detail = f"server error {err.code} (subscription buffer overflow): books rebuilt"
                    await self.rebuild()
                return
            if kind in ("orderbook_snapshot", "orderbook_delta"):
                await self._book_message(kind, env, now)
            elif kind == "trade":
                self._trade_seq(env.sid, env.seq)
                self._trade(env.msg, now, env.sending_ts_ms)
            elif kind == "event_fee_update":
                self._fee_update(msg)
            elif kind == "market_lifecycle_v2":
                _parse(MarketLifecycle, env.msg, "market_lifecycle_v2 msg")
                feed.health.lifecycle += 1
                with feed._lock:  # for the source, on the engine's thread (LiveBookSource.on_lifecycle)
                    feed._lifecycle_frames.append(msg)
                    del feed._lifecycle_frames[:-10_000]
        except (Malformed, ValueError, TypeError, AttributeError, RecursionError) as e:  # RecursionError: [[[[...
            feed.health.malformed += 1
            feed.health.detail = f"malformed frame: {e}"[:200]
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind not in NOT_BOOKS and self.book_tickers:
                # it may have carried a book change we cannot apply: rebuild from fresh snapshots
                await self.rebuild()

    async def _book_message(self, kind: str, msg: WsMessage, now: int) -> None:
        feed = self.feed
        sid, seq = msg.sid, msg.seq
        if type(sid) is not int or sid != self.book_sid:
            return  # a subscription we have left
        seq = _serial("seq", seq)
        expected = self.seq.get(sid)
        if expected is not None and seq != expected:
            feed.health.gaps += 1
            feed.health.detail = f"sequence gap on sid {sid}: got {seq}, expected {expected}"
            await self.rebuild()
            return
        self.seq[sid] = seq + 1
        body = msg.msg
        if not isinstance(body, dict):
            raise Malformed(f"{kind} without a msg")
        exch = frame_exchange_ms(body, msg.sending_ts_ms)
        if exch is not None:  # the stream's lag: every book is as old as the frames that bring it
            with feed._lock:
                feed._lag_ms = min(max(now - exch, 0), MAX_LAG_MS)
        if kind == "orderbook_snapshot":
            book = Book.from_rules(body, now)
            self.awaiting.discard(book.ticker)
            with feed._lock:
                feed._books[book.ticker] = book
                if feed._events is not None:
                    levels: list[tuple[str | None, int | None, int | None]] = [
                        (s, p, q) for s in ("yes", "no") for p, q in sorted(getattr(book, s).items())
                    ]
                    feed._events.extend(
                        BookEvent(now, book.ticker, s, p, q, seq, sid, "snapshot", exch)
                        for s, p, q in levels or [(None, None, None)]
                    )
            return
        t = body.get("market_ticker")
        if t in self.awaiting:
            _parse(BookDelta, body, "delta")  # (a bad one is still counted)
            return  # its snapshot, on its way, holds this change
        with feed._lock:
            current = feed._books.get(t) if isinstance(t, str) else None
            if current is None:
                raise Malformed(f"delta for {t!r} before its snapshot")
            side, p, d = current.apply(body, now)
            if feed._events is not None:
                feed._events.append(BookEvent(now, current.ticker, side, p, d, seq, sid, "delta", exch))
                feed._event_deltas += 1
        await self._bound_events()

    async def _bound_events(self) -> None:
        """A recording nobody takes from: drop what it holds and rebuild every book (``reset``,
        then fresh ``snapshot`` events mark the hole)."""
        feed = self.feed
        with feed._lock:
            over = feed._events is not None and feed._event_deltas > feed.max_book_events
            if over:
                feed._events, feed._event_deltas = [], 0
        if over:
            feed.health.record_overflows += 1
            feed.health.detail = f"recording fell behind: {feed.max_book_events} book events dropped"
            await self.rebuild()

    def _fee_update(self, frame: dict[str, Any]) -> None:
        """An ``event_fee_update``, kept as sent for the engine's thread (``LiveBookSource``
        hands it to the source's fee state, which reads it or leaves it); bounded."""
        feed = self.feed
        feed.health.fee_updates += 1
        with feed._lock:
            feed._fee_frames.append(frame)
            del feed._fee_frames[:-1_000]

    def _trade_seq(self, sid: Any, seq: Any) -> None:
        """The trade subscription's ``seq`` where the frame carries one: a number skipped means
        prints were lost (fetched again over REST, ``LiveBookSource``)."""
        if type(sid) is not int or sid != self.trade_sid or type(seq) is not int:
            return
        expected = self.seq.get(sid)
        if expected is not None and seq != expected:
            self.feed._lost_prints(f"sequence gap on the trade subscription: got {seq}, expected {expected}")
        self.seq[sid] = seq + 1

    def _trade(self, body: Any, now: int, env_sent: int | None = None) -> None:
        """One trade print through the row check (``catalog.trade_problem``): kept, or refused
        alone with its reason (handed to the engine as a rejected row with the next fetch)."""
        feed = self.feed
        why: str | None = None
        if not isinstance(body, dict):
            why, tr = "trade print without a msg", None
        else:
            try:
                p = parse(TradePrint, body, "trade print")  # exact units; a name Kalshi could have issued
            except RowError as e:
                why, tr = f"trade print: {e}", None
            else:
                t, price, count = p.market_ticker, p.yes_price_dollars, p.count_fp
                ts_ms = p.time_ms(now)  # ts_ms (3.34), else Kalshi's ts in epoch seconds
                side, tid = p.outcome_side(), p.trade_id or None  # ("" is Kalshi's "not given")
                book_side = p.taker_book_side if p.taker_book_side != "" else None
                block, sent = p.is_block_trade, env_sent
                why = trade_problem(t, ts_ms, now, price, count, side, tid, book_side, block, sent)
                tr = (
                    None
                    if why
                    else Trade(
                        t,
                        price,
                        count,
                        side or "",
                        ts_ms,
                        tid or "",
                        recv_ts=now,
                        taker_book_side=book_side,
                        is_block_trade=block,
                        sending_ts_ms=sent,
                    )
                )
        with feed._lock:
            if tr is not None:
                feed._newest_print_ms = max(tr.ts, feed._newest_print_ms or tr.ts)
                feed._trades.append(tr)
                del feed._trades[:-10_000]  # bounded when nobody reads them
                return
            feed.health.rejected += 1
            if len(feed._rejects) < 1_000:  # bounded likewise (the count goes on)
                feed._rejects.append(
                    (why or "trade print refused", body if isinstance(body, dict) else {"msg": _safe(body, 200)})
                )


class LiveBookSource(Source):
    """A polling source whose books are replaced by the WebSocket's where those are in sync.

    The feed subscribes to the markets held (``watch``, from the engine) and to ``also``'s
    (the believed and named ones); with neither, to those the polled source quoted."""

    def __init__(
        self,
        polled: Source,
        feed: BookFeed,
        also: Callable[[], Iterable[str]] | None = None,
        on_trades: Callable[[list[Trade]], None] | None = None,
        on_book_events: Callable[[list[BookEvent]], None] | None = None,
        on_fee_update: Callable[[dict[str, Any]], object] | None = None,
        on_lifecycle: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        self.polled = polled
        self.feed = feed
        self.name = polled.name
        self.also = also
        self.held: Callable[[], Iterable[str]] | None = None
        self.on_trades = on_trades  # e.g. the catalog recorder's trades()
        self.on_book_events = on_book_events  # e.g. the catalog recorder's book_events()
        self.on_fee_update = on_fee_update  # e.g. KalshiSource.apply_ws (the feed's event_fee_update frames)
        self.on_lifecycle = on_lifecycle  # e.g. KalshiSource.apply_lifecycle (market_lifecycle_v2 frames)
        self.live_rows = 0
        self.live_books = 0
        self._last: dict[str, RawRow] = {}  # each watched market's last polled row (``FetchBatch.same``)
        self._tape = TapeBuilder()  # every book the stream keeps, for the held markets' tape (#23)
        self._tape_trades: list[Trade] = []  # prints handed to ``on_trades`` since the last fetch (the tape's)
        self._handed: dict[str, None] = {}  # trade_ids handed to on_trades (the newest HANDED_IDS)
        fallback = getattr(polled, "prints_fallback", None)
        if on_trades is not None and fallback is not None:  # (KalshiSource) prints polled while it is down
            fallback(self._hand, self._feed_down)

    def watch(self, held: Callable[[], Iterable[str]]) -> None:
        self.held = held
        self.polled.watch(held)

    def watched(self) -> set[str] | None:
        """The markets to subscribe to; None: those the polled source quotes."""
        if self.held is None and self.also is None:
            return None
        return set(self.held() if self.held is not None else ()) | set(self.also() if self.also is not None else ())

    def start(self) -> None:
        """Subscribe to what is watched (before the first poll) and start the feed."""
        self.feed.watch(self.watched() or ())
        self.feed.start()

    def now_ms(self) -> int:
        return self.polled.now_ms()

    def fetch(self) -> FetchBatch:
        if self.on_fee_update is not None:  # before the poll: this fetch's rows carry the new fees
            for frame in self.feed.take_fee_updates():
                self.on_fee_update(frame)
        if self.on_lifecycle is not None:  # likewise: a determined market settles in this fetch
            for frame in self.feed.take_lifecycle():
                self.on_lifecycle(frame)
        batch = self.polled.fetch()
        # the books and the changes that made them, taken together (the tape below and the rows
        # agree), before the tick's time is read (every change taken was received by then)
        books, events = self.feed.books_and_events()
        now = self.polled.now_ms()
        batch.now_ms = now  # the tick's time: the books below are stamped against it
        watched = self.watched()
        if watched is None:
            quoted = (
                r.market.get("ticker") for r in batch.rows if r.snapshot is not None and isinstance(r.market, dict)
            )
            watched = {t for t in quoted if isinstance(t, str)}
        self.feed.watch(watched)
        if not self.feed.live:
            books = {}
        # a book's quote is as old as the stream that brings it: stamped with the exchange's time
        # it reflects (the fetch's time less the latest frame's lag), so the stale-quote guard,
        # the desk's age and the catalog (ts against recv_ts) see a book that arrived 4 s old
        asof = now - self.feed.lag_ms
        self.live_books = len(books)  # held live, whether or not their markets are in this fetch
        self.live_rows = 0
        rows = []
        last = self._last
        for t in [t for t in last if t not in watched]:
            del last[t]
        same = []
        for t in batch.same:  # not polled again, but the WebSocket's book of it is this fetch's
            r = last.get(t)
            if r is not None and t in books:
                batch.rows.append(r)
            else:
                same.append(t)
        batch.same = same
        for r in batch.rows:
            ticker = r.market.get("ticker") if isinstance(r.market, dict) else None
            if isinstance(ticker, str) and ticker in watched and r.snapshot is not None and r.reason is None:
                last[ticker] = r
            b = books.get(ticker) if isinstance(ticker, str) and r.snapshot is not None else None
            if b is not None and r.snapshot is not None and r.reason is None:
                snap = {**r.snapshot, **b.raw_snapshot(asof)}
                r = RawRow(market=r.market, snapshot=snap, payload={"ws_book": snap, "polled": r.payload})
                self.live_rows += 1
                batch.polled.discard(ticker)  # the stream's book: in force until its next change
            rows.append(r)
        for why, sent in self.feed.take_rejects():  # refused trade prints: kept as rejected rows
            t = sent.get("market_ticker")
            rows.append(RawRow(market={"ticker": t} if ticker_ok(t) else {}, snapshot=None, payload=sent, reason=why))
        batch.rows = rows
        trades = self.feed.take_trades()
        if self.on_trades is not None:
            self._hand(trades)
            self._recover(batch, watched)
            # the prints the recorder was handed, in its order (polled while the stream was down,
            # the stream's, a gap's recovery): what a replay of the recording reads
            trades, self._tape_trades = self._tape_trades, []
        if self.on_book_events is not None and events:
            self.on_book_events(events)
        # the tape (issue #23): the held markets' book changes and prints since the last fetch
        # (positions and live paper orders: ``watch``), by adapters/tape.py's one rule
        held = set(self.held()) if self.held is not None else set()
        batch.tape = self._tape.tape(
            (BookRow(*e) for e in events),
            (tape_row(t) for t in trades if t.ticker in held),
            held,
        )
        return batch

    def flush(self) -> None:
        self.drain_book_events()

    def _feed_down(self) -> bool:
        """The WebSocket is down (as ``feed_status`` says: not live, and failed or retrying after
        a failure; not while it first connects)."""
        h = self.feed.health
        return not self.feed.live and (h.state == "down" or (h.state == "connecting" and bool(h.detail)))

    def _hand(self, trades: list[Trade]) -> int:
        """Prints to ``on_trades``, each once by ``trade_id`` whichever way it came (the stream,
        a gap's recovery, polling while the stream was down)."""
        if self.on_trades is None:
            return 0
        seen = self._handed
        fresh = []
        for tr in trades:
            if tr.trade_id:
                if tr.trade_id in seen:
                    continue
                seen[tr.trade_id] = None
            fresh.append(tr)
        while len(seen) > HANDED_IDS:
            del seen[next(iter(seen))]
        self.on_trades(fresh)
        self._tape_trades.extend(fresh)
        return len(fresh)

    def _recover(self, batch: FetchBatch, watched: set[str]) -> None:
        """A gap on the trade subscription: the lost window fetched once over REST (``min_ts`` =
        the newest print delivered before it) for the markets watched; repeats dropped."""
        since = self.feed.take_trade_gap()
        recover = getattr(self.polled, "recover_prints", None)
        if since is None or recover is None:
            return
        n = self._hand(recover(batch, watched, since))
        batch.notes.append(f"trade prints lost at a gap on the WebSocket: {n} fetched again over REST")

    def drain_book_events(self) -> list[BookEvent]:
        """Take the book changes applied so far, handed to ``on_book_events`` (the engine's thread)."""
        events = self.feed.take_book_events()
        if self.on_book_events is not None and events:
            self.on_book_events(events)
        return events

    def round_trip_ms(self) -> int | None:
        return self.polled.round_trip_ms()

    def feed_status(self) -> tuple[str, str]:
        """Which feed is live, and how: ``("websocket", "2 live books")`` or
        ``("polling", "websocket down: <why>")`` (the view's ``FeedStatus``)."""
        h = self.feed.health
        if self.feed.live:
            lag = self.feed.lag_ms
            behind = f", {lag / 1000:.1f} s behind the exchange" if lag >= 1000 else ""
            return "websocket", f"{self.live_books} live books{behind}"
        state = "down" if h.state == "connecting" and h.detail else h.state  # retrying after a failure
        return "polling", f"websocket {state}{': ' + h.detail if h.detail else ''}"

    def close(self) -> None:
        self.feed.stop()
        self.polled.close()

    def stop(self) -> None:
        self.feed.stop(timeout=0.5)
        self.polled.stop()

    def checkpoint(self) -> dict[str, str]:
        return self.polled.checkpoint()
