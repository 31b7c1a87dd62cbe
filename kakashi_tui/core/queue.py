"""Fill models for paper orders (issue #23): latency, the taker's walk at activation, and three
queue models for resting orders. Pure domain: the caller feeds one market's tape (book
updates, trade prints, feed gaps) in time order and gets the orders' new events back.

Sources: hftbacktest (``docs/order_fill.rst``, ``src/backtest/models/queue.rs``:
``RiskAdverseQueueModel``, ``ProbQueueModel`` with ``PowerProbQueueFunc`` / ``LogProbQueueFunc``)
and NautilusTrader (``docs/concepts/backtesting.md``: ``queue_position``,
``liquidity_consumption``, ``trade_execution``, ``LatencyModel``). Where they and the issue
differ, this module follows (and rules.md "Paper orders and fills (#23)" says the same):

- **Through prints fill up to the print's size**, not fully whatever its size (hftbacktest's
  exchanges fill a resting order fully on a print through its price). NautilusTrader caps a
  trade-driven fill at ``min(leaves_qty, trade.size)``, and the issue's own bound (fills from
  prints never exceed the prints' sizes) needs it: a one-contract print is evidence of one
  contract, not of a hundred.
- **prob draws, or takes hftbacktest's expectation.** hftbacktest moves the queue by the
  expected share of a decrease (``front - (1 - p) chg + min(back - p chg, 0)``); the issue says
  a decrease "falls behind us with probability p". Given the caller's ``random.Random``, one
  draw per decrease puts all of it behind us (with probability p: whatever exceeds the queue
  behind comes off the front) or all of it ahead; its expectation is hftbacktest's. Without a
  generator the model is hftbacktest's expectation exactly.
- **A book change never fills.** hftbacktest's expectation can take the queue ahead below
  zero on a decrease, which its ``is_filled`` then counts as a fill; here the queue ahead is
  floored at zero by book changes: only prints (and a crossing book) fill. (One public bot
  counted book decreases as its own fills and overstated its profit 25x: the issue.)
- ``f``: hftbacktest gives ``PowerProbQueueFunc(n)`` no default; its examples use n = 2 (most)
  and 3. Kakashi's default is ``power`` with n = 2; ``log`` is ``f(x) = ln(1 + x)``.
- **Crossing liquidity is consumed once** (NautilusTrader's ``liquidity_consumption``), more
  strictly than NautilusTrader's: it resets a level's consumption whenever its size changes;
  here only the increase is fresh (a level that shrinks keeps what we took of it).

Kalshi books are bids only: YES bids and NO bids; a YES ask at p is a NO bid at 1 - p. A paper
order is a bid on its side: a YES bid at p, or a NO bid at q (a YES ask at 1 - q). Kalshi's
``book_side`` is the same bit as ``outcome_side``: ``bid`` = yes, ``ask`` = no, always (docs
"Order direction"). A print's taker went long ``taker_outcome_side``; it matched resting orders
that went long the other side, so it hit that side's bids:

=============================  ===========================================  ===============  ===================
our resting order               hit by a print whose taker went long         at our price     through our price
=============================  ===========================================  ===============  ===================
YES bid at p                    NO: ``taker_outcome_side=no`` / ``ask``       yes price = p    yes price < p
                                (the taker sold YES or bought NO)
NO bid at q (YES ask 1 - q)     YES: ``taker_outcome_side=yes`` / ``bid``     yes price = 1-q  yes price > 1 - q
                                (the taker bought YES or sold NO)
=============================  ===========================================  ===============  ===================

A print whose taker side is not given (or whose two fields disagree) fills nothing and moves
no queue. A crossing book: a YES bid at p is crossed by NO bids at q with 1 - q <= p (YES asks at
or under p), a NO bid at q by YES bids at y with 1 - y <= q.

The rules, for all three models (``risk_averse``, the default; ``prob``; ``front``):

- **Latency**: nothing fills before ``activation_ts`` (core/orders.py), nor at or after a
  cancel's effective time or a GTD's expiry. Events at one time: a book update at t is in
  force for an activation at t; an order active at t can be filled by a print at t.
- **The book in force** is the last book update at or before the time (a simulator's step, a
  book kept by WebSocket deltas, a replay's recorded rows and deltas by receive time), except a
  **polled** book (``on_book(..., polled=True)``): known only at its own instant, so an order
  due after it becomes active at the first fetched book at or after its activation, at that
  book's time.
- **Taker at activation**: an ``ioc`` order walks the asks in force at activation up to its
  limit (``broker.walk_asks``, less what our own fills already consumed) and cancels the rest; a
  resting order that is not post-only takes what crosses the same way, then rests; a post-only
  one that would cross is rejected with the reason.
- **Queue ahead** at activation (an order that activates with no book, or inside a gap, gets it
  from the next book it may read): ``risk_averse`` the displayed size at our price on our side;
  a print at our price takes its size off it; a book update caps it at the new displayed size.
  ``prob`` starts alike, prints alike, and a decrease not explained by prints falls behind us
  with probability f(back) / (f(back) + f(front)). ``front``: nothing ahead, ever.
- **Through**: a print at a price worse for its taker than ours fills us, up to its size.
- **At our price**: a print at our price fills what of it passes the queue ahead of us.
- **Cross**: an opposite book that crosses our price fills us up to its (not yet consumed) size.
- **One print, shared once**: a print's size is shared once across all our orders (best price
  first, then queue position, then activation and id); each of our at-price orders needs the
  print to pass its queue ahead and our own orders' fills before it.
- **Block trades** (``is_block_trade``) and **prints inside a feed gap** never fill, and move no
  queue; after a gap nothing fills until the next full snapshot (``on_book(..., snapshot=True)``).
- Every fill is a maker's at our limit price (NautilusTrader: "fills occur at the order's limit
  price rather than potentially better trade prices"), except the taker's walk.

**A restart** resumes the models exactly as of a point in the tape: ``export_state`` hands over
what they know beyond the orders and the book in force (``FillsState``): each resting order's
``QueuePlace`` (the queue ahead, the displayed size when last seen and the prints at its price
since: ``prob``'s next book change reads all three; ``risk_averse`` the first), the gap flag,
and the liquidity our fills consumed (needed: a crossing level we took stays taken while it is
shown, and forgetting it would fill us against it again). ``restore_state`` puts it back once the
orders (their fills and fee accumulators resumed, core/orders.py) are added over the book. The
state holds no generator: the engine's own ``prob`` runs on hftbacktest's expectation (no
``rng``); the band's shadow ``prob`` draws, and core/shadows.py keeps its seed and draw count.

The ordering the issue's band relies on (fills(risk_averse) <= fills(prob) <= fills(front) for
one order) holds because the queue ahead of us is never larger under ``prob`` than under
``risk_averse``, and zero under ``front`` (a property test holds it over random tapes).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from kakashi_tui.core.broker import walk_asks
from kakashi_tui.core.fees import FeeTerms
from kakashi_tui.core.models import GRID, Quote, Side
from kakashi_tui.core.money import count_to_hundredths, hundredths_to_count, price_to_cc
from kakashi_tui.core.orders import OrderEvent, OrderState, PaperOrder, Role, Trigger

QUEUE_MODELS = ("risk_averse", "prob", "front")
DEFAULT_QUEUE_MODEL = "risk_averse"
PROB_FUNCS = ("power", "log")
DEFAULT_POWER_N = 2.0
_FULL = 10_000


@dataclass(frozen=True)
class Print:
    """A public trade print in core units (the engine makes one from the catalog's ``trades``
    row). ``taker_outcome_side``: the side the taker went long (3.34; the deprecated
    ``taker_side`` is the same word); ``taker_book_side``: ``bid`` (= yes) or ``ask`` (= no)."""

    ts: int
    yes_price_cc: int
    count_hundredths: int
    taker_outcome_side: Side | None = None
    taker_book_side: str | None = None
    is_block_trade: bool | None = None

    @property
    def taker_long(self) -> Side | None:
        """The side the taker went long; None when the print does not say or contradicts itself."""
        by_book = {"bid": Side.YES, "ask": Side.NO}.get(self.taker_book_side or "")
        if self.taker_outcome_side is None:
            return by_book
        if by_book is not None and by_book is not self.taker_outcome_side:
            return None
        return self.taker_outcome_side

    @property
    def hits(self) -> Side | None:
        """Whose bids it hit: the side opposite the taker's (None: not known)."""
        t = self.taker_long
        return None if t is None else t.other

    def price_for(self, side: Side) -> int:
        """The print's price as ``side``'s price (a NO bid at q trades at yes price 1 - q)."""
        return self.yes_price_cc if side is Side.YES else _FULL - self.yes_price_cc


def _levels(quote: Quote | None, side: Side) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``side``'s bids in ``quote``: (prices cc, hundredths), best first."""
    if quote is None:
        return (), ()
    yc, yq, nc, nq = quote._depth
    return (yc, yq) if side is Side.YES else (nc, nq)


def _size_at(quote: Quote | None, side: Side, price_cc: int) -> int:
    cs, qs = _levels(quote, side)
    for c, q in zip(cs, qs):
        if c == price_cc:
            return q
    return 0


@dataclass
class _Queue:
    """One resting order's place: ``ahead`` hundredths before it (None: not yet known),
    ``level`` the displayed size at its price when last seen, ``traded`` the prints at its
    price since then (hftbacktest's ``cum_trade_qty``)."""

    ahead: int | None = None
    level: int = 0
    traded: int = 0


@dataclass(frozen=True)
class QueuePlace:
    """A resting order's place in its market's queue model: ``ahead`` hundredths before it (None:
    not yet known: it became active with no book in force, or in a gap), ``level`` the displayed
    size at its price when last seen, ``traded`` the prints at its price since then. ``prob``
    reads all three at the next book change (the queue behind us is ``level - ahead``; the
    decrease the prints do not explain is ``level - new - traded``); ``risk_averse`` ``ahead``."""

    ahead: int | None
    level: int
    traded: int


@dataclass(frozen=True)
class FillsState:
    """What one market's fill models know that the orders and the book in force do not (issue
    #23, restart): each resting order's place (by order id), whether the feed is in a gap (no
    fill until the next full snapshot), and the opposite liquidity our fills consumed, as
    (side, price cc, the level's size when last seen, hundredths consumed): one print or level
    is never filled against twice. ``MarketFills.export_state`` hands it over at the end of a
    tick; ``restore_state`` puts it back on a restart, after the orders are added. Pure values."""

    places: dict[str, QueuePlace]
    gap: bool = False
    consumed: tuple[tuple[Side, int, int, int], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.places or self.gap or self.consumed)


class MarketFills:
    """The fill models of one market's paper orders. Feed its tape in time order:
    ``on_book`` (the book in force from ``ts``; ``snapshot`` False for a book made by deltas),
    ``on_print``, ``on_gap``, and ``advance`` to a time (the caller's clock). Each returns the
    orders' new events, in order. ``rng`` draws ``prob``'s decreases (the caller's seeded
    ``random.Random``; None: hftbacktest's expectation)."""

    def __init__(
        self,
        terms: FeeTerms,
        model: str = DEFAULT_QUEUE_MODEL,
        rng: random.Random | None = None,
        prob_func: str = "power",
        power_n: float = DEFAULT_POWER_N,
    ) -> None:
        if model not in QUEUE_MODELS:
            raise ValueError(f"queue model {model!r} is not one of {', '.join(QUEUE_MODELS)}")
        if prob_func not in PROB_FUNCS:
            raise ValueError(f"prob function {prob_func!r} is not one of {', '.join(PROB_FUNCS)}")
        if not (math.isfinite(power_n) and power_n > 0):
            raise ValueError(f"power n {power_n} is not a number > 0")
        self.terms, self.model, self.rng = terms, model, rng
        self.prob_func, self.power_n = prob_func, power_n
        self.book: Quote | None = None
        self.gap = False
        self.orders: list[PaperOrder] = []
        self._queue: dict[str, _Queue] = {}
        self._pending: list[PaperOrder] = []  # submitted, not yet activated
        #: a polled book is known only at its instant (its time here; None: the book in force is
        #: known until the next update); orders due after it wait for the next book (``_waiting``)
        self._polled_at: int | None = None
        self._waiting: list[PaperOrder] = []
        #: our consumption of bids (side, price cc) -> (size when last seen, hundredths consumed)
        self._consumed: dict[tuple[Side, int], tuple[int, int]] = {}
        self._out: list[tuple[PaperOrder, OrderEvent]] = []

    # -- the caller's API --------------------------------------------------------------------
    def add(self, order: PaperOrder) -> list[tuple[PaperOrder, OrderEvent]]:
        """Take an order (``orders.submit``'s): its events so far are reported."""
        if any(o.id == order.id for o in self.orders):
            raise ValueError(f"order {order.id} is already here")
        self.orders.append(order)
        if order.state is OrderState.SUBMITTED:
            self._pending.append(order)
            self._pending.sort(key=lambda o: (o.activation_ts, o.id))
        return [(order, e) for e in order.events]

    def live(self) -> list[PaperOrder]:
        """The orders that can still fill (not done)."""
        return [o for o in self.orders if not o.state.done]

    def twin(self, model: str, rng: random.Random | None = None) -> MarketFills:
        """A fill model of another queue model for the same market, with no orders, starting from
        this one's state: the book in force, a gap, a polled book's instant and what our fills
        consumed of the book (the band's shadow models, core/shadows.py)."""
        t = MarketFills(self.terms, model, rng, self.prob_func, self.power_n)
        t.book, t.gap, t._polled_at = self.book, self.gap, self._polled_at
        t._consumed = dict(self._consumed)
        return t

    def forget_done(self) -> None:
        """Let go of the orders that are done (a caller keeping the models for a long run)."""
        self.orders = [o for o in self.orders if not o.state.done]

    def queue_ahead(self, order_id: str) -> int | None:
        """Hundredths ahead of a resting order (None: not resting, or not yet known)."""
        q = self._queue.get(order_id)
        return None if q is None else q.ahead

    def export_state(self) -> FillsState:
        """The queue places of the resting orders, the gap flag and the consumed liquidity, as they
        stand (no I/O: the engine stores them in the tick's transaction)."""
        live = {o.id for o in self.orders if not o.state.done}  # (an order the caller cancelled keeps no place)
        places = {oid: QueuePlace(q.ahead, q.level, q.traded) for oid, q in self._queue.items() if oid in live}
        consumed = tuple((side, c, size, used) for (side, c), (size, used) in sorted(self._consumed.items()))
        return FillsState(places, self.gap, consumed)

    def restore_state(self, state: FillsState) -> None:
        """Put back what ``export_state`` handed over (a restart: after ``add`` took the live
        orders and ``on_book`` the book in force). A resting order that is active with no place
        in ``state`` (a file written before places were kept) takes its place from the book in
        force, as at activation; a place for an order that is not resting here is ignored."""
        self.gap = state.gap
        self._consumed = {(side, c): (size, used) for side, c, size, used in state.consumed}
        for o in self.orders:
            if not o.resting or o.state.done or o.state is OrderState.SUBMITTED:
                continue
            got = state.places.get(o.id)
            q = self._queue[o.id] = _Queue()
            if got is not None:
                q.ahead, q.level, q.traded = got.ahead, got.level, got.traded
            elif self.book is not None and not self.gap:
                self._init_queue(o, q)

    def advance(self, ts: int) -> list[tuple[PaperOrder, OrderEvent]]:
        """Book what is due by ``ts``: activations, cancels and expiries."""
        self._due(ts, inclusive=True)
        return self._flush()

    def on_gap(self, ts: int) -> list[tuple[PaperOrder, OrderEvent]]:
        """The feed lost data at ``ts``: nothing fills until the next full snapshot."""
        self._due(ts, inclusive=False)
        self.gap = True
        return self._flush()

    def on_book(
        self, ts: int, quote: Quote, snapshot: bool = True, polled: bool = False
    ) -> list[tuple[PaperOrder, OrderEvent]]:
        """The book in force from ``ts``. Queues move by it, then a crossing book fills.
        ``polled``: a book fetched by polling, known only at ``ts`` (what it was between two
        fetches nobody saw): an order due after it becomes active at the first fetched book at
        or after its activation, at that book's time (issue #23 item 1, "live by polling")."""
        self._due(ts, inclusive=False)
        self._consume_update(quote)
        self.book = quote
        if snapshot:
            self.gap = False
        self._polled_at = ts if polled else None
        waiting, self._waiting = self._waiting, []
        for o in waiting:
            self._activate(o, ts)
        for o in self._resting():
            self._queue_on_book(o)
        self._due(ts, inclusive=True)
        if not self.gap:
            self._cross(ts)
        return self._flush()

    def on_print(self, p: Print) -> list[tuple[PaperOrder, OrderEvent]]:
        """A trade print: through and at-price fills, queue progress (never a block print or one
        inside a gap)."""
        self._due(p.ts, inclusive=True)
        hit = p.hits
        if self.gap or p.is_block_trade is True or hit is None or p.count_hundredths <= 0:
            return self._flush()
        price = p.price_for(hit)
        live = [o for o in self._resting() if o.side is hit and o.live_at(p.ts)]
        pool = p.count_hundredths
        through = sorted((o for o in live if o.limit_cc > price), key=lambda o: (-o.limit_cc, o.activation_ts, o.id))
        for o in through:
            n = min(o.remaining_hundredths, pool)
            if n > 0:
                self._fill(o, p.ts, Role.MAKER, Trigger.THROUGH, [(o.limit_cc, n)])
                pool -= n
        at = [o for o in live if o.limit_cc == price and self._queue[o.id].ahead is not None]
        at.sort(key=lambda o: (self._ahead(o), o.activation_ts, o.id))
        passed = 0  # how far into the print our earlier orders' fills reach
        for o in at:
            q = self._queue[o.id]
            ahead = self._ahead(o)
            start = max(ahead, passed)
            n = min(o.remaining_hundredths, max(0, p.count_hundredths - start), pool)
            q.ahead, q.traded = max(0, ahead - p.count_hundredths), q.traded + p.count_hundredths
            if n > 0:
                pool -= n
                passed = start + n
                self._fill(o, p.ts, Role.MAKER, Trigger.AT_PRICE_QUEUE, [(o.limit_cc, n)])
        return self._flush()

    # -- lifecycle -----------------------------------------------------------------------------
    def _due(self, ts: int, inclusive: bool) -> None:
        """Activations due before ``ts`` (or at it), then cancels and expiries due by ``ts``, in
        time order."""
        while self._pending:
            o = self._pending[0]
            a = o.activation_ts
            if a > ts or (a == ts and not inclusive):
                break
            self._pending.pop(0)
            if self._polled_at is not None and a > self._polled_at:
                self._waiting.append(o)  # no book seen at or after its activation yet
                continue
            self._close_due(a)
            self._activate(o, a)
        self._close_due(ts)

    def _close_due(self, ts: int) -> None:
        """Cancels and expiries due by ``ts``, at their own time (an order cancelled before it was
        ever active is cancelled then, with no ``active`` event: it never reached the exchange)."""
        for o in self.orders:
            if not o.state.done and o.close(ts):
                self._queue.pop(o.id, None)
                self._out.append((o, o.events[-1]))

    def _activate(self, o: PaperOrder, ts: int) -> None:
        if o.state is not OrderState.SUBMITTED:
            return
        end = o.ends_at()
        if end is not None and end <= ts:  # cancelled before it ever reached the exchange
            self._emit(o, lambda: o.close(ts))
            return
        if o.post_only and self._crossing(o):
            best = self._crossing(o)[0][0]
            self._emit(
                o, lambda: o.reject(ts, f"post-only would cross: best ask {GRID[best]} <= limit {GRID[o.limit_cc]}")
            )
            return
        self._emit(o, lambda: o.activate(ts))
        if not o.resting or (not o.post_only and self._crossing(o)):
            self._take(o, ts)
        if not o.resting:
            why = "ioc: rest cancelled" if o.filled_hundredths else "ioc: nothing at or under the limit"
            if self.book is None or self.gap:
                why = "ioc: no book in force" if self.book is None else "ioc: feed gap, no book in force"
            self._emit(o, lambda: o.cancel_rest(ts, why))
            return
        if not o.state.done:
            q = _Queue()
            self._queue[o.id] = q
            if self.book is not None and not self.gap:
                self._init_queue(o, q)

    def _emit(self, o: PaperOrder, change: Callable[[], object]) -> None:
        n = len(o.events)
        change()
        self._out.extend((o, e) for e in o.events[n:])

    def _flush(self) -> list[tuple[PaperOrder, OrderEvent]]:
        out, self._out = self._out, []
        return out

    def _resting(self) -> list[PaperOrder]:
        return [o for o in self.orders if o.id in self._queue and not o.state.done]

    # -- queues --------------------------------------------------------------------------------
    def _init_queue(self, o: PaperOrder, q: _Queue) -> None:
        q.level = _size_at(self.book, o.side, o.limit_cc)
        q.ahead = 0 if self.model == "front" else q.level
        q.traded = 0

    def _ahead(self, o: PaperOrder) -> int:
        a = self._queue[o.id].ahead
        return 0 if a is None else a

    def _queue_on_book(self, o: PaperOrder) -> None:
        q = self._queue[o.id]
        if self.gap:
            return
        if q.ahead is None:
            self._init_queue(o, q)
            return
        new = _size_at(self.book, o.side, o.limit_cc)
        prev, traded = q.level, q.traded
        q.level, q.traded = new, 0
        if self.model == "front":
            return
        if self.model == "risk_averse":
            q.ahead = min(q.ahead, new)
            return
        chg = prev - new - traded  # the decrease the prints do not explain
        if chg <= 0:
            q.ahead = min(q.ahead, new)
            return
        front = q.ahead
        back = max(0, prev - front)
        p = self._prob(front, back)
        if self.rng is None:  # hftbacktest's expectation
            est = front - (1 - p) * chg + min(back - p * chg, 0.0)
            ahead = math.floor(est)
        elif self.rng.random() < p:  # behind us; what exceeds the queue behind comes off the front
            ahead = front + min(back - chg, 0)
        else:
            ahead = front - chg
        q.ahead = max(0, min(ahead, new, front))

    def _prob(self, front: int, back: int) -> float:
        """hftbacktest's f(back) / (f(back) + f(front)): the chance a decrease is behind us."""
        if self.prob_func == "log":
            fb, ff = math.log1p(back), math.log1p(front)
        else:
            fb, ff = float(back) ** self.power_n, float(front) ** self.power_n
        if fb + ff == 0:
            return 1.0  # nothing on either side: hftbacktest's infinite/NaN case, read as behind
        return fb / (fb + ff)

    # -- crossing liquidity and the taker's walk ----------------------------------------------
    def _consume_update(self, quote: Quote) -> None:
        """A new book: a level keeps what we consumed of it, less any decrease; an increase is fresh."""
        for key, (old, used) in list(self._consumed.items()):
            side, price = key
            new = _size_at(quote, side, price)
            used = max(0, new - old + used) if new < old else min(used, new)
            if used <= 0:
                del self._consumed[key]
            else:
                self._consumed[key] = (new, used)

    def _available(self, side: Side, price_cc: int, size: int) -> int:
        got = self._consumed.get((side, price_cc))
        return size - got[1] if got is not None else size

    def _consume(self, side: Side, price_cc: int, size: int, n: int) -> None:
        got = self._consumed.get((side, price_cc))
        self._consumed[(side, price_cc)] = (size, (got[1] if got else 0) + n)

    def _crossing(self, o: PaperOrder) -> list[tuple[int, int]]:
        """The opposite bids that cross ``o``, as (ask price cc for ``o``'s side, hundredths still
        available), cheapest first."""
        if self.book is None:
            return []
        cs, qs = _levels(self.book, o.side.other)
        out = []
        for c, q in zip(cs, qs):
            ask = _FULL - c
            if ask > o.limit_cc:
                break
            n = self._available(o.side.other, c, q)
            if n > 0:
                out.append((ask, n))
        return out

    def _take(self, o: PaperOrder, ts: int) -> None:
        """The taker's walk at activation (the broker's), less what our fills consumed."""
        if self.book is None or self.gap:
            return
        other = o.side.other

        def available(asks: list[tuple[Decimal, Decimal]]) -> list[tuple[Decimal, Decimal]]:
            out = []
            for p, q in asks:
                c = _FULL - price_to_cc(p)
                n = self._available(other, c, count_to_hundredths(q))
                if n > 0:
                    out.append((p, hundredths_to_count(n)))
            return out

        taken = walk_asks(o.side, hundredths_to_count(o.remaining_hundredths), GRID[o.limit_cc], self.book, available)
        levels = [(price_to_cc(p), count_to_hundredths(n)) for p, n in taken]
        if not levels:
            return
        for c, n in levels:
            self._consume(other, _FULL - c, _size_at(self.book, other, _FULL - c), n)
        self._fill(o, ts, Role.TAKER, Trigger.TAKER, levels)

    def _cross(self, ts: int) -> None:
        """Resting orders the opposite book crosses fill up to its available size (best price
        first, then activation, id)."""
        live = [o for o in self._resting() if o.live_at(ts)]
        live.sort(key=lambda o: (-o.limit_cc, o.activation_ts, o.id))
        for o in live:
            for ask, n in self._crossing(o):
                take = min(n, o.remaining_hundredths)
                if take <= 0:
                    break
                c = _FULL - ask
                self._consume(o.side.other, c, _size_at(self.book, o.side.other, c), take)
                self._fill(o, ts, Role.MAKER, Trigger.CROSS, [(o.limit_cc, take)])
                if o.state.done:
                    break

    def _fill(self, o: PaperOrder, ts: int, role: Role, trigger: Trigger, levels: list[tuple[int, int]]) -> None:
        self._emit(o, lambda: o.record_fill(ts, role, trigger, levels, self.terms))
        if o.state.done:
            self._queue.pop(o.id, None)
