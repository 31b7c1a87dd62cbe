"""Paper orders (issue #23): what one order is, when it can fill, and its append-only history.
No I/O: the engine decides, the fill models (core/queue.py) fill, the store keeps the events.

Units: prices in centicents (``limit_cc``, the price of the order's own side: a NO bid at
$0.58 is ``side=NO, limit_cc=5800``), counts in hundredths of a contract, time UTC epoch ms.

Time, for every order (the issue's "latency, for every paper order"):

- ``decided_ts``: when the strategy decided; ``insert_latency_ms`` is stored with the order so a
  replay uses the same one; ``activation_ts = decided_ts + insert_latency_ms``. Nothing fills
  before activation, ever (a print at exactly ``activation_ts`` may: the order is there).
- A cancel requested at ``t`` takes effect at ``t + cancel_latency_ms``; fills can happen until
  then (a print at exactly the effective time no longer fills).
- GTD: the order expires at ``expires_ts`` (a print at exactly that time no longer fills).

Time in force: ``ioc`` (the taker's order: walk the book in force at activation up to the
limit, cancel the rest, as the broker's instant fill does today), ``gtc`` and ``gtd`` (resting
orders), and ``post_only`` on a resting order: one that would cross the book in force at its
activation is rejected with the reason (``post-only would cross: ...``). A resting order that
is not post-only and crosses at activation takes what crosses (taker fills) and rests the
rest (maker fills), through one fee accumulator, as Kalshi's runs across an order's fills
"regardless of whether the fills are taker or maker" (docs "Fee Rounding").

States, as an append-only list of events: ``submitted``, ``active``, ``partially_filled``,
``filled``, ``cancelled``, ``expired``, ``rejected`` (each with its reason where it has one).
A fill event carries the fill: what triggered it (``through``, ``at_price_queue``, ``cross``,
``taker``), the role (maker or taker), its price, count, value and fee.

Fees by role (core/fees.py, one rule): a taker's fills pay the market's ``FeeTerms``; a
maker's pay ``FeeTerms.maker()`` (``quadratic`` 0, ``quadratic_with_maker_fees`` a quarter,
``quadratic_with_combo_maker_fees`` half, ``flat`` its schedule); every fill's fee is rounded up
to $0.0001 through the order's one ``FeeAccumulator``, and each fill's value against the trader
to the centicent (``broker.priced``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from kakashi_tui.core.broker import priced
from kakashi_tui.core.fees import FeeAccumulator, FeeTerms, fee_cc_units, fee_ratio
from kakashi_tui.core.grid import PriceGrid
from kakashi_tui.core.models import GRID, Side
from kakashi_tui.core.money import hundredths_to_count
from kakashi_tui.core.sizing import worst_fee_price_cc

#: The insert latency where Kakashi has no measured round trips of its own (issue #23).
DEFAULT_INSERT_LATENCY_MS = 500
DEFAULT_CANCEL_LATENCY_MS = 500
_MAX_LATENCY_MS = 3_600_000  # an hour: anything longer is a mistake, not a latency


class TimeInForce(str, Enum):
    IOC = "ioc"  # the taker's order: take at activation, cancel the rest
    GTC = "gtc"
    GTD = "gtd"


class OrderState(str, Enum):
    SUBMITTED = "submitted"
    ACTIVE = "active"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def done(self) -> bool:
        """No more fills can come (filled, cancelled, expired, rejected)."""
        return self in _DONE


_DONE = frozenset((OrderState.FILLED, OrderState.CANCELLED, OrderState.EXPIRED, OrderState.REJECTED))


class Role(str, Enum):
    MAKER = "maker"
    TAKER = "taker"


class Trigger(str, Enum):
    """What filled: a print at a price worse for its taker than ours (``through``); a print at
    our price once the queue ahead of us is gone (``at_price_queue``); the opposite book
    crossing our price (``cross``); our own order taking the book at activation (``taker``)."""

    THROUGH = "through"
    AT_PRICE_QUEUE = "at_price_queue"
    CROSS = "cross"
    TAKER = "taker"


@dataclass(frozen=True)
class OrderFill:
    """One exchange fill of a paper order: ``levels`` are (price cc, hundredths) taken (one for
    a maker's fill, at our limit; a taker's walk may take several); ``value_cc`` what they
    cost (rounded up per level), ``fee_cc`` the fee the accumulator charged for them,
    ``fee_exact`` their fee before rounding, in dollars (what the accumulator added: stored with
    the fill, so a restart resumes the accumulator exactly, ``PaperOrder.resume_fills``)."""

    ts: int
    role: Role
    trigger: Trigger
    hundredths: int
    value_cc: int
    fee_cc: int
    levels: tuple[tuple[int, int], ...]
    fee_exact: Decimal = Decimal(0)

    @property
    def price_cc(self) -> int:
        """The fill's price: the one level's, or the worst (last) of a taker's walk."""
        return self.levels[-1][0]


@dataclass(frozen=True)
class OrderEvent:
    ts: int
    state: OrderState
    reason: str = ""
    fill: OrderFill | None = None


@dataclass
class PaperOrder:
    """One paper order and its history. Made by ``submit`` (which checks it); changed only by
    ``record_fill``, ``request_cancel`` and the fill models, all of which append events."""

    id: str
    ticker: str
    side: Side
    limit_cc: int
    quantity_hundredths: int
    tif: TimeInForce
    decided_ts: int
    post_only: bool = False
    expires_ts: int | None = None
    insert_latency_ms: int = DEFAULT_INSERT_LATENCY_MS
    cancel_latency_ms: int = DEFAULT_CANCEL_LATENCY_MS
    cancel_requested_ts: int | None = None
    events: list[OrderEvent] = field(default_factory=list)
    filled_hundredths: int = 0
    acc: FeeAccumulator | None = None

    @property
    def activation_ts(self) -> int:
        return self.decided_ts + self.insert_latency_ms

    @property
    def cancel_effective_ts(self) -> int | None:
        return None if self.cancel_requested_ts is None else self.cancel_requested_ts + self.cancel_latency_ms

    @property
    def state(self) -> OrderState:
        return self.events[-1].state

    @property
    def remaining_hundredths(self) -> int:
        return self.quantity_hundredths - self.filled_hundredths

    @property
    def resting(self) -> bool:
        return self.tif is not TimeInForce.IOC

    @property
    def fills(self) -> list[OrderFill]:
        return [e.fill for e in self.events if e.fill is not None]

    @property
    def fee_cc(self) -> int:
        return sum(f.fee_cc for f in self.fills)

    def ends_at(self) -> int | None:
        """When it stops being able to fill, cancels and expiry alike (None: not yet known)."""
        ends = [t for t in (self.cancel_effective_ts, self.expires_ts) if t is not None]
        return min(ends) if ends else None

    def live_at(self, ts: int) -> bool:
        """Whether a fill at ``ts`` is possible: active (activation reached), not done, its
        cancel not yet effective, not expired."""
        if self.state.done or self.state is OrderState.SUBMITTED or ts < self.activation_ts:
            return False
        end = self.ends_at()
        return end is None or ts < end

    def resume_fills(self, terms: FeeTerms) -> None:
        """After a restart put its events back (fills included, in order): what has filled, and
        the fee accumulator where its fills left it (the sum of their exact fees and of their
        charged fees), so the next fill is charged as if the run had never stopped."""
        fills = self.fills
        self.filled_hundredths = sum(f.hundredths for f in fills)
        self.acc = None
        if fills:
            exact = sum((f.fee_exact for f in fills), Decimal(0))
            self.acc = FeeAccumulator(terms, fills[-1].ts, exact, sum(f.fee_cc for f in fills))

    def _append(self, ev: OrderEvent) -> None:
        if self.events and self.state.done:
            raise ValueError(f"order {self.id} is {self.state.value}: no more events")
        self.events.append(ev)

    def activate(self, ts: int) -> None:
        self._append(OrderEvent(ts, OrderState.ACTIVE))

    def reject(self, ts: int, reason: str) -> None:
        self._append(OrderEvent(ts, OrderState.REJECTED, reason))

    def request_cancel(self, ts: int) -> None:
        """Ask to cancel at ``ts``: effective ``cancel_latency_ms`` later (the first request counts)."""
        if self.cancel_requested_ts is None and not self.state.done:
            self.cancel_requested_ts = ts

    def close(self, ts: int) -> bool:
        """Book the cancel or the expiry due by ``ts`` (the earlier of the two); whether it did."""
        if self.state.done:
            return False
        end = self.ends_at()
        if end is None or ts < end:
            return False
        if self.expires_ts is not None and end == self.expires_ts and self.expires_ts != self.cancel_effective_ts:
            self._append(OrderEvent(end, OrderState.EXPIRED))
        else:
            self._append(OrderEvent(end, OrderState.CANCELLED, "cancel requested"))
        return True

    def cancel_rest(self, ts: int, reason: str) -> None:
        """Cancel what is left at once (a taker's order after its walk; a market that closed)."""
        if not self.state.done:
            self._append(OrderEvent(ts, OrderState.CANCELLED, reason))

    def record_fill(
        self, ts: int, role: Role, trigger: Trigger, levels: list[tuple[int, int]], terms: FeeTerms
    ) -> OrderFill:
        """Book a fill of ``levels`` ((price cc, hundredths), their sum at most what remains),
        priced by the broker's rule, its fee at ``terms`` for the role through the order's
        accumulator."""
        h = sum(n for _c, n in levels)
        if h <= 0 or h > self.remaining_hundredths:
            raise ValueError(f"fill of {h} hundredths on order {self.id} with {self.remaining_hundredths} left")
        if self.acc is None:
            self.acc = FeeAccumulator(terms, ts)
        self.acc.now_ms = ts  # the waiver in force at the fill's time
        fee_terms = terms.maker() if role is Role.MAKER else terms
        before = self.acc.exact
        value, fee = priced([(GRID[c], hundredths_to_count(n)) for c, n in levels], True, self.acc, fee_terms)
        fill = OrderFill(ts, role, trigger, h, value, fee, tuple(levels), self.acc.exact - before)
        self.filled_hundredths += h
        state = OrderState.FILLED if self.remaining_hundredths == 0 else OrderState.PARTIALLY_FILLED
        self._append(OrderEvent(ts, state, fill=fill))
        return fill


def submit(
    order_id: str,
    ticker: str,
    side: Side,
    limit_cc: int,
    quantity_hundredths: int,
    decided_ts: int,
    tif: TimeInForce = TimeInForce.IOC,
    *,
    post_only: bool = False,
    expires_ts: int | None = None,
    insert_latency_ms: int = DEFAULT_INSERT_LATENCY_MS,
    cancel_latency_ms: int = DEFAULT_CANCEL_LATENCY_MS,
    grid: PriceGrid | None = None,
) -> PaperOrder:
    """A new order, ``submitted`` at ``decided_ts``; or ``rejected`` with the reason when it is
    not an order the exchange would take (price off the market's grid or outside (0, 1), no
    count, a GTD without a later expiry, post-only on a taker's order). Latencies out of
    [0, an hour] are a ValueError (the caller's mistake, not the market's)."""
    for name, v in (("insert_latency_ms", insert_latency_ms), ("cancel_latency_ms", cancel_latency_ms)):
        if not 0 <= v <= _MAX_LATENCY_MS:
            raise ValueError(f"{name} {v} is not in [0, {_MAX_LATENCY_MS}]")
    o = PaperOrder(
        order_id,
        ticker,
        side,
        limit_cc,
        quantity_hundredths,
        tif,
        decided_ts,
        post_only=post_only,
        expires_ts=expires_ts,
        insert_latency_ms=insert_latency_ms,
        cancel_latency_ms=cancel_latency_ms,
    )
    o.events.append(OrderEvent(decided_ts, OrderState.SUBMITTED))
    why = _invalid(o, grid)
    if why:
        o.reject(decided_ts, why)
    return o


def _invalid(o: PaperOrder, grid: PriceGrid | None) -> str:
    if not 0 < o.limit_cc < 10_000:
        return f"limit {o.limit_cc} cc is not a price inside (0, 1)"
    if grid is not None:
        # the grid is the market's YES prices: a NO bid at q is the YES ask 1 - q (core/grid.py off_grid)
        yes_cc = o.limit_cc if o.side is Side.YES else 10_000 - o.limit_cc
        if not grid.has(yes_cc):
            return f"limit {GRID[o.limit_cc]} is off the market's price grid"
    if o.quantity_hundredths <= 0:
        return "quantity is not positive"
    if o.tif is TimeInForce.GTD and (o.expires_ts is None or o.expires_ts <= o.activation_ts):
        return "GTD order expires before it would be active"
    if o.tif is not TimeInForce.GTD and o.expires_ts is not None:
        return f"{o.tif.value} order has an expiry"
    if o.post_only and o.tif is TimeInForce.IOC:
        return "post-only on a taker's (ioc) order"
    return ""


def reserved_cc(order: PaperOrder, terms: FeeTerms, now_ms: int) -> int:
    """A live order's worst-case loss as if what remains of it filled (issue #23 item 5: every
    cap counts a resting order's reservation): the remaining count at the limit (rounded up),
    plus the largest fee it could pay, plus a centicent of rounding per hundredth left (each
    fill's value is rounded up by less than a centicent, and a fill is at least a hundredth;
    none on a whole-cent limit, where no fill's value has a fraction of a centicent).

    The fee: an order that may still take (not yet active and not post-only) at the taker's
    terms at the worst price up to its limit; a resting one (active, or post-only) at the maker's
    terms at its limit (maker fills are at the limit); a GTC or GTD order's without a fee waiver
    (``FeeTerms.lasting``: it may outlive one). 0 once the order is done."""
    h = order.remaining_hundredths
    if order.state.done or h <= 0:
        return 0
    if order.tif is not TimeInForce.IOC:
        terms = terms.lasting()  # a resting order may outlive a fee waiver: no worst case counts on it
    may_take = order.state is OrderState.SUBMITTED and not order.post_only
    if may_take:
        fee = fee_cc_units(h, worst_fee_price_cc(1, order.limit_cc), fee_ratio(terms, now_ms))
    else:
        fee = fee_cc_units(h, order.limit_cc, fee_ratio(terms.maker(), now_ms))
    rounding = 0 if order.limit_cc % 100 == 0 and not may_take else h
    return -((-h * order.limit_cc) // 100) + fee + rounding
