"""The embedded simulated exchange: Kakashi's default source, deterministic from a seed.

Several binary markets whose hidden probability drifts (a random walk in log-odds,
drift-corrected so the probability itself is a martingale: ``step_log_odds``); quotes lag it
with noise, with spreads of 1-4 cents and several depth levels, some sizes fractional
(hundredths of a contract, as Kalshi's ``*_fp`` counts). One market in four is
``tapered_deci_cent``: in the tails (below 10 cents, above 90) it quotes on the 0.1-cent grid
(0.0030, 0.9930). Markets are ``active``, then ``closed`` at their close, ``determined``
(YES with their hidden probability) the tick after and ``finalized`` the tick after that;
one settled market in twenty is ``disputed`` and ``amended`` to the other result before it is
finalized. Each quote is stamped with the simulated exchange's own time of that quote. Most
steps re-quote every live market at that step's instant; now and then a market's makers step
away (``quiet_rate``, the chance per market per step, for 1 to ``QUIET_MAX_STEPS`` steps) and
it is not re-quoted: the feed re-sends its last quote with that quote's old time, so the risk
gate's stale-quote guard refuses to trade on it. Quiet spells are drawn from a stream of their
own: the same seed draws the same prices and sizes whatever the rate.
Between two steps takers trade against the book in force (issue #23): public prints, each with
the taker's outcome side and book side, at the touch and never more than its displayed size,
which they consume (``SimPrint``), and now and then a block trade matched off the book
(``block_trade_rate``); the book's changes (prints consuming levels, the next quote) can be
handed over as ``book_deltas`` rows (``SimBookEvent``). Prints come from a stream of their own
too: a seed's prices, quotes, settlements and the oracle's beliefs are the same with or without
them (``prints_per_step`` 0: none).
Bracket events (``bracket_events``, issue #24 item 5): besides those markets, events of
``BRACKETS`` mutually exclusive brackets each (``SIMB-<seed>-<n>-B1`` ..., their market rows
say ``event_exclusive``), whose hidden probabilities are one softmax over the event's drifting
log-weights (each probability a martingale: ``step_log_weights``): they close together and
exactly one resolves YES, drawn jointly. Everything about them (weights, quotes, sizes, the
outcome) is drawn from a stream of their own, so a seed's other markets are the same with or
without them; they are re-quoted every step (no quiet spells), and
have no prints or book rows.
Time is a simulated clock: each tick advances ``step_ms`` of market time, so the simulator can
run far faster than real time. Raw rows follow
adapters/source.py (decimal strings for prices and counts). Everything here is SIMULATED.
"""

from __future__ import annotations

import math
import operator
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from kakashi_tui.adapters.source import Estimator, FetchBatch, RawRow, Source, TapeEvent
from kakashi_tui.core.models import GRID, Estimate, Side, qty_text
from kakashi_tui.core.money import price

if TYPE_CHECKING:
    from kakashi_tui.adapters.kalshi.wire import Trade

ORACLE_SOURCE = "sim-oracle (simulated)"
NOISE_SOURCE = "sim-noise (simulated)"
QUIET_RATE = 0.05  # default: the chance per market per step that its makers step away
QUIET_MAX_STEPS = 3  # a quiet spell lasts 1 to this many steps
PRINTS_PER_STEP = 1.0  # default: the mean number of prints per market per step (Poisson)
BLOCK_TRADE_RATE = 0.05  # default: the share of prints that are block trades (off the book)
BRACKETS = 4  # the markets of a simulated bracket event (mutually exclusive: exactly one resolves YES)
PRINT_SOURCE = "sim"  # the catalog's ``source`` of the simulator's prints and book rows
BOOK_SID = 1  # the simulator's one "subscription" (book rows' ``sid``; ``seq`` counts its rows)
_PRICE_SCALE = 10_000  # $1 in centicents
Levels = tuple[tuple[int, int], ...]  # a book side as (price_cc, hundredths) pairs, best first
_BY_TIME = operator.itemgetter(0)
_ESTIMATE_FIELDS = set(Estimate.model_fields)  # every field given (shared: nothing changes it)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


#: A step of the hidden log-odds: its standard deviation, and the bounds it is held within.
STEP_SD = 0.06
X_BOUND = 4.0  # (p in [0.018, 0.982])
_STEP_VAR = STEP_SD * STEP_SD


def step_log_odds(x: float, shock: float) -> float:
    """The next hidden log-odds from ``x`` and a shock drawn N(0, ``STEP_SD``): a random walk in
    log-odds whose probability is a martingale. The outcome is drawn with the probability at
    the close, so the probability now is only the chance of YES if its expected value at the
    close is itself (issue #24). A plain walk in log-odds is not: the sigmoid is convex below
    1/2 and concave above, so its probability drifted toward 1/2 (about +1.7 centicents a step
    at p = 0.2, near a cent and a half over a market's life), and the market's mid, which trails
    it, with it: a side under 50 cents closed higher than it was bought, on average, for anyone.
    Itô's correction, a drift of ``STEP_SD``² (p - 1/2) in log-odds, cancels it to within a
    thousandth of that (a term of order ``STEP_SD``⁴). The bound at ``X_BOUND`` is the only
    other bias left: no market of 3,000 (seed 1, 3,000 steps) reached it in its life."""
    return min(max(x + _STEP_VAR * (_sigmoid(x) - 0.5) + shock, -X_BOUND), X_BOUND)


def step_log_weights(w: list[float], p: list[float], shocks: list[float]) -> list[float]:
    """A bracket event's next log-weights from ``w`` (its probabilities ``p`` = softmax(``w``))
    and one N(0, ``STEP_SD``) shock each, so that each bracket's probability is a martingale:
    Itô's correction for a softmax of independent walks is a drift of ``STEP_SD``² (p_i - Σ p_j²)
    in weight i (with two brackets, the binary walk's correction)."""
    q = sum(x * x for x in p)
    return [min(max(wi + _STEP_VAR * (pi - q) + e, -X_BOUND), X_BOUND) for wi, pi, e in zip(w, p, shocks)]


@dataclass
class _SimMarket:
    ticker: str
    title: str
    open_tick: int
    close_tick: int
    x: float  # hidden log-odds
    mid: float  # quoted mid, lags the hidden probability
    result: Side | None = None
    tapered: bool = False  # quotes in 0.1-cent ticks in the tails
    bid_cc: int = 0  # centicents
    ask_cc: int = 0
    # (price text, count) as the feed hands levels over, best first: made once per quote and
    # handed over as they are (tuples, which the collector stops tracking: issue #19)
    yes_depth: tuple[tuple[str, int | str], ...] = ()
    no_depth: tuple[tuple[str, int | str], ...] = ()
    volume_hundredths: int = 0  # traded so far (it grows while a market is quiet too)
    quoted_volume_hundredths: int = 0  # as its last quote said
    last_cc: int = 0
    quote_ms: int = 0  # when the exchange last (re)quoted it
    quiet_left: int = 0  # steps its makers stay away (its quote is not refreshed)
    snap: dict | None = None  # the quote as last published
    settled_tick: int = 0
    disputed: bool = False
    # the levels' sizes in hundredths, best first (as ``yes_depth``, ``no_depth``); a side's
    # levels are a cent apart from its best bid (``bid_cc``; NO's is $1 - ``ask_cc``)
    yes_q: tuple[int, ...] = ()
    no_q: tuple[int, ...] = ()
    event: str = ""  # a bracket's event (its market row's ``event_ticker``); "": an event of its own

    @property
    def p(self) -> float:
        return _sigmoid(self.x)


@dataclass
class _SimEvent:
    """A bracket event: its markets, one of which resolves YES. Market i's hidden probability is
    softmax(``w``)_i, kept in its ``x`` as log-odds (so quoting, the oracle and ``p`` read it as
    any market's)."""

    ticker: str
    markets: list[_SimMarket]
    w: list[float]  # hidden log-weights, drifting
    close_tick: int

    def spread_probabilities(self) -> None:
        top = max(self.w)
        e = [math.exp(w - top) for w in self.w]
        total = sum(e)
        for m, v in zip(self.markets, e):
            p = min(max(v / total, 1e-9), 1 - 1e-9)
            m.x = _logit(p)


class SimExchange(Source):
    name = "sim"

    def __init__(
        self,
        seed: int = 7,
        markets: int = 8,
        start_ms: int | None = None,
        step_ms: int = 60_000,
        lifetime_ticks: tuple[int, int] = (40, 160),
        only: frozenset[str] | None = None,
        quiet_rate: float = QUIET_RATE,
        prints_per_step: float = PRINTS_PER_STEP,
        block_trade_rate: float = BLOCK_TRADE_RATE,
        on_trades: Callable[[list[Trade]], None] | None = None,
        on_book_events: Callable[[list[SimBookEvent]], None] | None = None,
        bracket_events: int = 0,
    ) -> None:
        if markets < 1:
            raise ValueError("the simulator needs at least one market")
        if not 0 <= quiet_rate <= 1:
            raise ValueError("quiet_rate is a probability in [0, 1]")
        if not 0 <= prints_per_step <= 50:
            raise ValueError("prints_per_step is a mean number of prints in [0, 50]")
        if not 0 <= block_trade_rate <= 1:
            raise ValueError("block_trade_rate is a probability in [0, 1]")
        if not 0 <= bracket_events <= 1000:
            raise ValueError("bracket_events is a number of events in [0, 1000]")
        self.only = only  # --ticker: the simulation runs whole, only these markets are reported
        self.seed = seed
        self.n_markets = markets
        self.start_ms = start_ms if start_ms is not None else (int(time.time()) // 60) * 60_000
        self.step_ms = step_ms
        self.lifetime = lifetime_ticks
        self.rng = random.Random(seed)
        # A second stream for what the first simulator did not have (tails, fractions, quote
        # times, lifecycle), so the same seed still draws the same prices and sizes.
        self.rng2 = random.Random(f"{seed}:fixed-point")
        # A third for quiet spells, drawn at every step whatever was published (a resumed run
        # fast-forwards into the same spells).
        self.quiet_rate = quiet_rate
        self.rng_quiet = random.Random(f"{seed}:quiet-makers")
        # A fourth for the takers' prints, drawn at every step whoever listens (a resumed run
        # fast-forwards into the same prints): none of the other streams reads it.
        self.prints_per_step = prints_per_step
        self._no_print = math.exp(-prints_per_step)  # the chance of no print in a step
        self.block_trade_rate = block_trade_rate
        self.rng_prints = random.Random(f"{seed}:taker-prints")
        self._print_serial = 0
        # the prints of the step just taken, in time order, as plain tuples (``prints`` makes
        # them ``SimPrint``s when asked): (ts, ticker, yes price, size, taker buys yes, block, n)
        self._prints: list[tuple[int, str, int, int, bool, bool, int]] = []
        self.on_trades = on_trades  # e.g. the catalog recorder's trades()
        self.on_book_events = on_book_events  # e.g. the catalog recorder's book_events()
        self._moves: list[tuple[int, str, str, int, int]] = []  # (exchange ms, ticker, side, price, delta)
        self._known: set[str] = set()  # markets whose book ``on_book_events`` was given (a snapshot)
        # the tape (issue #23): the markets the engine follows (``watch``), each one's book in
        # force before this step's prints (the prints and books of those markets only)
        self._follow: Callable[[], Iterable[str]] | None = None
        self._tape_want: frozenset[str] = frozenset()
        self._tape_was: dict[str, tuple[Levels, Levels]] = {}
        self._seq = 0
        self.tick = 0
        self._serial = 0
        self.live: list[_SimMarket] = [self._new_market() for _ in range(markets)]
        self._settled: list[_SimMarket] = []  # determined, disputed, amended, finalized: reported
        self._closed: list[_SimMarket] = []
        for m in self.live:
            self._quote(m)
        # Bracket events, from a stream of their own (the markets above never see it).
        self.bracket_events = bracket_events
        self.rng_events = random.Random(f"{seed}:bracket-events")
        self._event_serial = 0
        self.events: list[_SimEvent] = [self._new_event() for _ in range(bracket_events)]
        self._ev_closed: list[_SimMarket] = []  # closed this step, their results drawn
        self._ev_settled: list[_SimMarket] = []  # determined, then finalized

    # -- clock ----------------------------------------------------------------------
    def now_ms(self) -> int:
        return self.start_ms + self.tick * self.step_ms

    def close(self) -> None:
        pass

    def watch(self, held: Callable[[], Iterable[str]]) -> None:
        """The markets the engine holds or has orders in: their prints and books go on the tape."""
        self._follow = held

    # -- evolution ------------------------------------------------------------------
    def _new_market(self) -> _SimMarket:
        self._serial += 1
        r = self.rng
        x = _logit(r.uniform(0.15, 0.85))
        life = r.randint(*self.lifetime)
        return _SimMarket(
            ticker=f"SIM-{self.seed}-{self._serial:04d}",
            title=f"Simulated event #{self._serial}",
            open_tick=self.tick,
            close_tick=self.tick + life,
            x=x,
            mid=_sigmoid(x) + r.gauss(0, 0.04),
            tapered=self._serial % 4 == 0,
        )

    def _new_event(self) -> _SimEvent:
        """A bracket event of ``BRACKETS`` markets, quoted (everything from ``rng_events``)."""
        self._event_serial += 1
        r, n = self.rng_events, self._event_serial
        ticker = f"SIMB-{self.seed}-{n:04d}"
        life = r.randint(*self.lifetime)
        ms = [
            _SimMarket(
                ticker=f"{ticker}-B{i + 1}",
                title=f"Simulated bracket {i + 1} of event #{n}",
                open_tick=self.tick,
                close_tick=self.tick + life,
                x=0.0,
                mid=0.0,
                event=ticker,
            )
            for i in range(BRACKETS)
        ]
        ev = _SimEvent(ticker, ms, [r.gauss(0, 0.5) for _ in ms], self.tick + life)
        ev.spread_probabilities()
        for m in ms:
            m.mid = m.p + r.gauss(0, 0.04)
            self._quote(m, r, r)
        return ev

    def _advance_events(self) -> None:
        """One step of the bracket events (``rng_events`` only): the weights drift; an event past
        its close closes whole, its outcome drawn jointly (exactly one bracket YES, bracket i with
        its hidden probability), determined the next step and finalized the one after."""
        r = self.rng_events
        for m in self._ev_closed:
            m.settled_tick = self.tick
        self._ev_settled = [m for m in self._ev_settled if self.tick - m.settled_tick <= 1] + self._ev_closed
        self._ev_closed = []
        still: list[_SimEvent] = []
        for ev in self.events:
            ev.w = step_log_weights(ev.w, [m.p for m in ev.markets], [r.gauss(0, STEP_SD) for _ in ev.w])
            ev.spread_probabilities()
            for m in ev.markets:
                m.mid += 0.25 * (m.p - m.mid) + r.gauss(0, 0.012)
            if self.tick >= ev.close_tick:
                u, acc, winner = r.random(), 0.0, ev.markets[-1]
                for m in ev.markets:
                    acc += m.p
                    if u < acc:
                        winner = m
                        break
                for m in ev.markets:
                    m.result = Side.YES if m is winner else Side.NO
                self._ev_closed += ev.markets
            else:
                for m in ev.markets:
                    self._quote(m, r, r)
                    m.snap = None
                still.append(ev)
        while len(still) < self.bracket_events:
            still.append(self._new_event())
        self.events = still

    def _live_markets(self) -> list[_SimMarket]:
        """Every market quoting now: the markets, then the brackets of the live events."""
        return self.live + [m for ev in self.events for m in ev.markets] if self.events else self.live

    def _quote(self, m: _SimMarket, r: random.Random | None = None, r2: random.Random | None = None) -> None:
        """A new quote of ``m``, drawn from ``r`` and ``r2`` (default: the markets' streams)."""
        r = self.rng if r is None else r
        r2 = self.rng2 if r2 is None else r2
        spread = r.randint(1, 4)
        mid_c = min(max(m.mid * 100, 2.0), 98.0)
        bid = int(round(mid_c - spread / 2))
        bid = min(max(bid, 1), 98)
        ask = min(bid + spread, 99)
        bid_cc, ask_cc = bid * 100, ask * 100
        if m.tapered:  # 0.1-cent ticks in the tails: 0.0230, 0.9770
            if bid < 10:
                bid_cc += 10 * r2.randint(0, 9)
            if ask > 90:
                ask_cc -= 10 * r2.randint(0, 9)
        m.bid_cc, m.ask_cc = bid_cc, ask_cc
        levels = r.randint(3, 5)
        # (drawn in the order the first simulator drew them: YES sizes, then NO sizes)
        m.yes_q = tuple([self._size(r.randint(5, 120), r2) for i in range(levels) if bid - i >= 1])
        m.yes_depth = tuple([(str(GRID[bid_cc - i * 100]), _count(q)) for i, q in enumerate(m.yes_q)])
        no_best = 10_000 - ask_cc
        m.no_q = tuple([self._size(r.randint(5, 120), r2) for i in range(levels) if no_best - i * 100 >= 1])
        m.no_depth = tuple([(str(GRID[no_best - i * 100]), _count(q)) for i, q in enumerate(m.no_q)])
        m.volume_hundredths += r.randint(0, 50) * 100
        m.quoted_volume_hundredths = m.volume_hundredths
        m.last_cc = min(max(int(round(m.mid * 100)), 1), 99) * 100
        m.quote_ms = self.now_ms()  # the simulated exchange's time of this quote

    def _size(self, n: int, r2: random.Random) -> int:
        """A level's size in hundredths: whole contracts, or now and then a fraction (12.50)."""
        return n * 100 + (r2.choice((25, 50, 75)) if r2.random() < 0.3 else 0)

    def advance(self) -> None:
        """One tick of simulated time: drift; takers trade against the book in force since the
        last step (``_trade``); markets past their close stop quoting (closed), are determined
        on the next tick and finalized on the one after; replacements open."""
        since = self.now_ms()
        self._prints = []
        self._moves = []
        self._tape_was = {}
        want = self._tape_want
        self.tick += 1
        r = self.rng
        for m in self._closed:
            m.result = Side.YES if r.random() < m.p else Side.NO
            m.settled_tick = self.tick
            m.disputed = self.rng2.random() < 0.05
        self._settled = [m for m in self._settled if self.tick - m.settled_tick <= (4 if m.disputed else 1)]
        self._settled += self._closed
        self._closed = []
        still: list[_SimMarket] = []
        for m in self.live:
            m.x = step_log_odds(m.x, r.gauss(0, STEP_SD))
            m.mid += 0.25 * (m.p - m.mid) + r.gauss(0, 0.012)
            if self.tick >= m.close_tick:
                self._closed.append(m)
                if m.ticker in want:
                    self._tape_was[m.ticker] = _levels(m)  # the book the step's prints trade against
                was = _levels(m) if self.on_book_events is not None else ((), ())
                left = self._trade(m, since)  # it traded until its close; then its book is gone
                self._requoted(m, left, was, ((), ()))
            elif self._quiet(m):  # its makers are away: the last quote stands, with its time
                kept = (m.bid_cc, m.ask_cc, m.yes_depth, m.no_depth, m.quoted_volume_hundredths, m.last_cc, m.quote_ms)
                kept_q = (m.yes_q, m.no_q)  # (and no taker trades: its book does not move)
                self._quote(m)  # (drawn all the same: the price stream does not depend on quiet spells)
                m.bid_cc, m.ask_cc, m.yes_depth, m.no_depth, m.quoted_volume_hundredths, m.last_cc, m.quote_ms = kept
                m.yes_q, m.no_q = kept_q
                still.append(m)
            else:
                if m.ticker in want:
                    self._tape_was[m.ticker] = _levels(m)
                was = _levels(m) if self.on_book_events is not None else ((), ())
                left = self._trade(m, since)
                self._quote(m)
                self._requoted(m, left, was, _levels(m) if self.on_book_events is not None else ((), ()))
                m.snap = None
                still.append(m)
        while len(still) < self.n_markets:
            nm = self._new_market()
            self._quote(nm)
            still.append(nm)
        self.live = still
        if self.bracket_events:
            self._advance_events()
        self._prints.sort(key=_BY_TIME)  # (stable: one market's prints keep their order)
        self._moves.sort(key=_BY_TIME)

    def _trade(self, m: _SimMarket, since: int) -> tuple[_Side, _Side] | None:
        """The takers' prints in ``m`` between ``since`` and now, against its book in force (the
        last quote), drawn from the prints' stream only; the book they leave (YES, NO levels).

        The rule: a taker buying YES (outcome side ``yes``, book side ``bid``: Kalshi's
        ``bid`` is ``yes``) lifts the YES ask, that is it takes the best NO bid, at YES price
        $1 - that bid; a taker buying NO (``no``, ``ask``) hits the best YES bid at its price.
        A print is at the touch as it stands then, never more than the size displayed there,
        and consumes it (a level taken to 0 is gone, the next is the touch). A block trade
        (``block_trade_rate`` of prints) is matched off the book: any cent price in [0.01,
        0.99] near the hidden probability, any size; it leaves the book alone. Takers lean
        toward the side the hidden probability favours over the quote (informed flow).

        What it returns: None when there was no print, else each side's state as the prints
        left it (``_Side``, ``_left``)."""
        r = self.rng_prints
        n = _poisson(r, self._no_print)
        if n == 0:
            return None
        rand = r.random  # (uniforms scaled by hand: randint costs several times more, per print)
        lo = since + 1
        span = max(self.now_ms() - 1 - lo, 0) + 1  # strictly between the two steps
        times = sorted([lo + int(rand() * span) for _ in range(n)])
        lean = min(max(0.5 + 4 * (m.p - m.mid), 0.2), 0.8)
        block_rate, ticker, out = self.block_trade_rate, m.ticker, self._prints
        moves = self._moves if self.on_book_events is not None else None
        # each side: its best price, its sizes, the index of its touch and the size left there
        yes = _Side(m.bid_cc, m.yes_q, 0, m.yes_q[0] if m.yes_q else 0)
        no = _Side(_PRICE_SCALE - m.ask_cc, m.no_q, 0, m.no_q[0] if m.no_q else 0)
        for ts in times:
            block = rand() < block_rate
            taker_yes = rand() < lean
            self._print_serial += 1
            if block:
                cents = min(max(round((m.p + r.gauss(0, 0.03)) * 100), 1), 99)
                out.append(
                    (ts, ticker, cents * 100, (50 + int(rand() * 451)) * 100, taker_yes, True, self._print_serial)
                )
                continue
            want = (1 + int(rand() * 30)) * 100
            if rand() < 0.2:
                want += (25, 50, 75)[int(rand() * 3)]
            book = no if taker_yes else yes  # the bids it trades against
            sizes, i, shown = book.sizes, book.i, book.shown
            if i >= len(sizes):  # nothing displayed there: no print
                continue
            at = book.best - i * 100
            size = min(want, shown)
            if shown == size:  # the level is gone: the next is the touch
                book.i = i = i + 1
                book.shown = sizes[i] if i < len(sizes) else 0
            else:
                book.shown = shown - size
            out.append((ts, ticker, _PRICE_SCALE - at if taker_yes else at, size, taker_yes, False, self._print_serial))
            if moves is not None:
                moves.append((ts, ticker, "no" if taker_yes else "yes", at, -size))
        return yes, no

    def _requoted(
        self, m: _SimMarket, left: tuple[_Side, _Side] | None, was: tuple[Levels, Levels], now_lv: tuple[Levels, Levels]
    ) -> None:
        """The book's changes from what the prints left (``left``, or the quote ``was`` when
        none traded) to the new quote ``now_lv`` (empty: closed), at the quote's time, as moves
        (for ``on_book_events`` only)."""
        if self.on_book_events is None:
            return
        if left is not None:
            was = (_left(left[0]), _left(left[1]))
        now = self.now_ms()
        for side, a, b in (("yes", was[0], now_lv[0]), ("no", was[1], now_lv[1])):
            old, new = dict(a), dict(b)
            for p in sorted(old.keys() | new.keys(), reverse=True):
                d = new.get(p, 0) - old.get(p, 0)
                if d:
                    self._moves.append((now, m.ticker, side, p, d))

    def _quiet(self, m: _SimMarket) -> bool:
        """Whether ``m`` goes unquoted this step (a spell under way, or one starting)."""
        if m.quiet_left:
            m.quiet_left -= 1
            return True
        if self.quiet_rate and self.rng_quiet.random() < self.quiet_rate:
            m.quiet_left = self.rng_quiet.randint(1, QUIET_MAX_STEPS) - 1
            return True
        return False

    def _lifecycle(self, m: _SimMarket) -> tuple[str, Side | None]:
        """(status, result) of a settled market this tick."""
        age = self.tick - m.settled_tick
        if not m.disputed:
            return ("determined" if age == 0 else "finalized"), m.result
        assert m.result is not None
        return (
            ("determined", m.result),
            ("disputed", m.result),
            ("amended", m.result.other),
            ("amended", m.result.other),
            ("finalized", m.result.other),
        )[min(age, 4)]

    def fast_forward(self, tick: int) -> None:
        while self.tick < tick:
            self.advance()
        self._prints, self._moves = [], []  # (nobody saw those steps: books are sent afresh)

    # -- the feed -------------------------------------------------------------------
    def _market_row(self, m: _SimMarket, status: str, result: Side | None = None) -> dict:
        row = {
            "ticker": m.ticker,
            "title": m.title,
            "series": "SIM",
            # each simulated market is an event of its own: their outcomes are independent draws, so a
            # report's intervals, which resample events, treat them as independent (issue #24)
            "event_ticker": m.ticker,
            "status": status,
            "market_type": "binary",
            "open_ts": self.start_ms + m.open_tick * self.step_ms,
            "close_ts": self.start_ms + m.close_tick * self.step_ms,
            "result": result.value if result else None,
        }
        if m.event:  # a bracket: its event's, whose markets are mutually exclusive
            row["event_ticker"] = m.event
            row["event_exclusive"] = True
        return row

    def checkpoint(self) -> dict[str, str]:
        """What the store keeps so a restart resumes this exact market state."""
        return {"sim_tick": str(self.tick)}

    def fetch(self) -> FetchBatch:
        """Advance one tick of simulated time, then report the book (and the followed markets'
        tape: ``_tape``)."""
        self._tape_want = frozenset(self._follow()) if self._follow is not None else frozenset()
        self.advance()
        rows: list[RawRow] = []
        for m in self._settled:
            status, result = self._lifecycle(m)
            rows.append(RawRow(market=self._market_row(m, status, result), snapshot=None, payload={"sim": m.ticker}))
        for m in self._closed:
            rows.append(RawRow(market=self._market_row(m, "closed"), snapshot=None, payload={"sim": m.ticker}))
        for m in self.live:
            rows.append(self._live_row(m))
        if self.bracket_events:  # the bracket events' markets after the others
            for m in self._ev_settled:
                status, result = self._lifecycle(m)
                rows.append(
                    RawRow(market=self._market_row(m, status, result), snapshot=None, payload={"sim": m.ticker})
                )
            for m in self._ev_closed:
                rows.append(RawRow(market=self._market_row(m, "closed"), snapshot=None, payload={"sim": m.ticker}))
            rows += [self._live_row(m) for ev in self.events for m in ev.markets]
        if self.only is not None:
            rows = [r for r in rows if r.market["ticker"] in self.only]
        self._hand_over()
        return FetchBatch(rows=rows, tape=self._tape() if self._tape_was else [])

    def _tape(self) -> list[TapeEvent]:
        """The followed markets' step, as the engine's fill models read it (adapters/tape.py's
        rules, which a replay of this run's catalog reads from its ``trades`` and ``book_deltas``):
        each print, then the book it left (prints at one time share one book update), then the
        step's re-quote (a closed market's book: empty), all received at this step's time. A
        quiet market's book does not move (no prints, no re-quote)."""
        from kakashi_tui.adapters.source import TapeBook, TapePrint
        from kakashi_tui.adapters.tape import book_quote
        from kakashi_tui.core.queue import Print

        now = self.now_ms()
        out: list[tuple[tuple[int, int, int], TapeEvent]] = []
        k = 0
        by_ticker: dict[str, list[tuple[int, str, int, int, bool, bool, int]]] = {}
        for p in self._prints:
            if p[1] in self._tape_was:
                by_ticker.setdefault(p[1], []).append(p)
        after = {m.ticker: _levels(m) for m in self.live if m.ticker in self._tape_was}
        for ticker, (yes, no) in self._tape_was.items():
            books = (dict(yes), dict(no))
            prints = by_ticker.get(ticker, [])
            for i, (ts, _t, yes_cc, size, taker_yes, block, _n) in enumerate(prints):
                k += 1
                out.append(((ts, 0, k), TapePrint(ticker, Print(now, yes_cc, size, *_TAKERS[taker_yes], block))))
                if block:
                    continue
                side, at = (books[1], _PRICE_SCALE - yes_cc) if taker_yes else (books[0], yes_cc)
                left = side.get(at, 0) - size
                if left > 0:
                    side[at] = left
                else:
                    side.pop(at, None)
                if i + 1 < len(prints) and prints[i + 1][0] == ts:
                    continue  # the next print is at the same time: one book update after both
                k += 1
                out.append(((ts, 1, k), TapeBook(now, ticker, book_quote(ticker, ts, *books), snapshot=False)))
            new = after.get(ticker, ((), ()))  # (a market that closed this step: its book is gone)
            if (dict(new[0]), dict(new[1])) != books:
                k += 1
                out.append(((now, 1, k), TapeBook(now, ticker, book_quote(ticker, now, *new), snapshot=False)))
        out.sort(key=_BY_TIME)
        return [e for _key, e in out]

    def _live_row(self, m: _SimMarket) -> RawRow:
        """A quoting market's row: its market and its quote as last published (made once a quote)."""
        if m.snap is None:
            m.snap = {
                "ticker": m.ticker,
                "ts": m.quote_ms,
                "yes_bid": str(GRID[m.bid_cc]),
                "yes_ask": str(GRID[m.ask_cc]),
                "last": str(GRID[m.last_cc]),
                "yes_bids": m.yes_depth,  # (not lists: ~45,000 tracked objects a tick at 5,000)
                "no_bids": m.no_depth,
                "volume": _count(m.quoted_volume_hundredths),
            }
        return RawRow(market=self._market_row(m, "active"), snapshot=m.snap, payload={"sim": m.ticker})

    def _hand_over(self) -> None:
        """This step's prints to ``on_trades`` (as the Kalshi feed's ``Trade``, received now) and
        its book changes to ``on_book_events``: deltas for a book already sent, a snapshot of
        the book in force for one not yet sent (a new market, or every market on a run's first
        fetch), the levels removed for a market that closed (its book is empty)."""
        now = self.now_ms()
        only = self.only
        if self.on_trades is not None:
            from kakashi_tui.adapters.kalshi.wire import Trade

            got = [
                Trade(
                    p.ticker,
                    p.yes_price_cc,
                    p.count_hundredths,
                    p.taker_side,
                    p.ts,
                    p.trade_id,
                    recv_ts=now,
                    taker_book_side=p.taker_book_side,
                    is_block_trade=p.is_block_trade,
                    source=PRINT_SOURCE,
                )
                for p in self.prints
            ]
            if got:
                self.on_trades(got)
        if self.on_book_events is None:
            return
        events: list[SimBookEvent] = []
        known = self._known
        for ts, ticker, side, at, d in self._moves:
            if ticker in known:
                self._seq += 1
                events.append(SimBookEvent(now, ticker, side, at, d, self._seq, BOOK_SID, "delta", ts))
        for m in self._closed:
            known.discard(m.ticker)
        for m in self.live:
            if m.ticker in known or (only is not None and m.ticker not in only):
                continue
            known.add(m.ticker)
            self._seq += 1
            for side, levels in zip(("yes", "no"), _levels(m)):
                for at, q in levels:
                    events.append(SimBookEvent(now, m.ticker, side, at, q, self._seq, BOOK_SID, "snapshot", m.quote_ms))
        if events:
            self.on_book_events(events)

    @property
    def prints(self) -> list[SimPrint]:
        """The prints of the step just taken (of the markets reported: ``only``), in time order."""
        only, seed = self.only, self.seed
        return [
            SimPrint(ts, t, price_cc, size, *(_YES if yes else _NO), block, f"sim-{seed}-{n}")
            for ts, t, price_cc, size, yes, block, n in self._prints
            if only is None or t in only
        ]

    def book(self, ticker: str) -> dict[str, dict[int, int]] | None:
        """A live market's book in force: {"yes": {price_cc: hundredths}, "no": {...}} (as
        ``catalog.rebuild_books`` gives it), or None."""
        for m in self._live_markets():
            if m.ticker == ticker:
                yes, no = _levels(m)
                return {"yes": dict(yes), "no": dict(no)}
        return None

    def hidden_probability(self, ticker: str) -> float | None:
        for m in self._live_markets():
            if m.ticker == ticker:
                return m.p
        return None


class SimPrint(NamedTuple):
    """A simulated public print (the fields of ``kalshi.wire.Trade``, in catalog units)."""

    ts: int  # when it traded, epoch ms (between two steps)
    ticker: str
    yes_price_cc: int
    count_hundredths: int
    taker_side: str  # the taker's outcome side: yes | no
    taker_book_side: str  # Kalshi's book vocabulary for the same bit: bid (= yes) | ask (= no)
    is_block_trade: bool  # matched off the book: never book liquidity
    trade_id: str

    @property
    def on_book(self) -> bool:
        return not self.is_block_trade


class SimBookEvent(NamedTuple):
    """One change of a simulated book, as ``kalshi.ws.BookEvent`` (a ``book_deltas`` row)."""

    ts: int  # when it was handed over (the step's time: the receive time)
    ticker: str
    side: str | None
    price_cc: int | None
    delta_hundredths: int | None  # snapshot: the level's size; delta: the signed change
    seq: int | None
    sid: int | None
    kind: str  # snapshot | delta
    exchange_ts: int | None = None  # the simulated exchange's time of the change
    source: str = PRINT_SOURCE


_YES, _NO = ("yes", "bid"), ("no", "ask")  # a taker's outcome side and book side (bid is yes)
_TAKERS = {True: (Side.YES, "bid"), False: (Side.NO, "ask")}  # (a Print's taker side, book side)


def _levels(m: _SimMarket) -> tuple[Levels, Levels]:
    """A market's book in force as (price_cc, hundredths) levels, best first: YES, NO."""
    no_best = _PRICE_SCALE - m.ask_cc
    return (
        tuple([(m.bid_cc - i * 100, q) for i, q in enumerate(m.yes_q)]),
        tuple([(no_best - i * 100, q) for i, q in enumerate(m.no_q)]),
    )


@dataclass(slots=True)
class _Side:
    """A book side as prints consume it: its best price, its sizes, the touch's index and the
    size left there."""

    best: int
    sizes: tuple[int, ...]
    i: int
    shown: int


def _left(side: _Side) -> Levels:
    """The levels a side's prints left."""
    i, shown = side.i, side.shown
    return tuple([(side.best - k * 100, shown if k == i else q) for k, q in enumerate(side.sizes) if k >= i])


def _poisson(r: random.Random, limit: float) -> int:
    """A Poisson draw of mean -ln(``limit``) (Knuth's product of uniforms: the mean is small);
    ``limit`` 1 (a mean of 0): none, with nothing drawn."""
    if limit >= 1:
        return 0
    k, p = 0, r.random()
    while p > limit:
        k += 1
        p *= r.random()
    return k


def _count(h: int) -> int | str:
    """A count as sources hand it over: an int when whole, else Kalshi's "12.50"."""
    return h // 100 if h % 100 == 0 else qty_text(h)


class _SimForecaster(Estimator):
    """p_hat = a centre the subclass picks, plus Gaussian noise, clipped to [0.01, 0.99]. SIMULATED,
    not a model. The noise is seeded per (seed, salt, ticker, tick): the same run re-estimates
    identically, and no forecaster draws from the exchange's streams (its prices never move)."""

    source: str  # each subclass's label
    salt = ""  # the stream's name beside the seed ("" keeps the oracle's seeds as they were)

    def __init__(self, exchange: SimExchange, noise: float = 0.03, seed: int = 0) -> None:
        self.exchange = exchange
        self.noise = noise
        self.seed = seed

    def centre(self, m: _SimMarket) -> float:
        raise NotImplementedError

    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]:
        out = []
        live = {m.ticker: m for m in reversed(self.exchange._live_markets())}  # (hidden_probability's first match)
        for t in tickers:
            m = live.get(t)
            if m is None:
                continue
            r = random.Random(f"{self.seed}:{self.salt}{t}:{self.exchange.tick}")
            q = min(max(self.centre(m) + r.gauss(0, self.noise), 0.01), 0.99)
            # valid by construction (a ticker, a price in [0.01, 0.99]): made without validation,
            # sharing one fields set (a set per estimate was a tracked object per market per tick)
            out.append(
                Estimate.model_construct(
                    _ESTIMATE_FIELDS, ticker=t, p_hat=price(round(q, 4)), source=self.source, ts=now_ms
                )
            )
        return out


class SimOracle(_SimForecaster):
    """p_hat = the simulator's hidden probability plus Gaussian noise. SIMULATED, not a model."""

    source = ORACLE_SOURCE

    def centre(self, m: _SimMarket) -> float:
        return m.p


class SimNoise(_SimForecaster):
    """p_hat = the market's quoted mid plus zero-mean Gaussian noise: a forecaster with no edge, the
    control a report's scoring must not mistake for skill (``[sim] forecaster = "noise"``).
    SIMULATED, with a noise stream of its own."""

    source = NOISE_SOURCE
    salt = "noise-forecaster:"

    def centre(self, m: _SimMarket) -> float:
        return (m.bid_cc + m.ask_cc) / 20_000  # the quote the market shows now
