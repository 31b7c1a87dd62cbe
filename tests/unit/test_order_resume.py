"""A restart of the fill models (issue #23, core/queue.py ``export_state`` / ``restore_state``, core/
orders.py ``resume_fills``): cut any tape anywhere, rebuild the orders from what a store keeps
(their events and fills) and the fill models from the book in force and the exported state,
and the rest of the tape gives exactly the events the uninterrupted models gave."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from kakashi_tui.core.fees import FeeAccumulator
from kakashi_tui.core.models import Side
from kakashi_tui.core.orders import OrderEvent, OrderFill, OrderState, PaperOrder, Role, TimeInForce, Trigger
from kakashi_tui.core.queue import FillsState, MarketFills, QueuePlace
from tests.conftest import book
from tests.unit.test_paper_orders import MAKERS, rest, sold_yes, tapes


def feed(m: MarketFills, events) -> None:
    for ev in events:
        if ev[0] == "book":
            m.on_book(ev[1], ev[2], ev[3])
        elif ev[0] == "print":
            m.on_print(ev[2])
        else:
            m.on_gap(ev[1])


def stored(o: PaperOrder) -> PaperOrder:
    """The order as a restart reads it back: its row, its events with their fills (the exact fee
    as the text a store keeps), what filled and its accumulator resumed from them."""
    back = PaperOrder(
        o.id,
        o.ticker,
        o.side,
        o.limit_cc,
        o.quantity_hundredths,
        o.tif,
        o.decided_ts,
        o.post_only,
        o.expires_ts,
        o.insert_latency_ms,
        o.cancel_latency_ms,
        o.cancel_requested_ts,
    )
    for e in o.events:
        f = e.fill
        if f is not None:
            f = OrderFill(
                f.ts, f.role, f.trigger, f.hundredths, f.value_cc, f.fee_cc, f.levels, Decimal(str(f.fee_exact))
            )
        back.events.append(OrderEvent(e.ts, e.state, e.reason, f))
    back.resume_fills(MAKERS)
    return back


@st.composite
def sticky_tapes(draw):
    """A tape whose books come back to the same few sizes (so what a queue or a consumed level
    remembers matters): YES bids at 0.40 of 20, 30 or 40 over 5 at 0.39; a NO bid at 0.58 (a YES
    ask at 0.42) of 0, 2 or 5 over 10 at 0.55; prints at 0.40 and through it; gaps. Ours: a YES
    bid at 0.40 (in the queue), one at 0.42 (crossed by the NO bid), a NO bid at 0.55."""
    events, ts = [], 0
    for _ in range(draw(st.integers(1, 30))):
        ts += draw(st.integers(0, 40))
        kind = draw(st.sampled_from(["book", "book", "book", "print", "print", "gap"]))
        if kind == "book":
            yes = ((0.40, draw(st.sampled_from([20, 30, 40]))), (0.39, 5))
            cross = draw(st.sampled_from([0, 2, 5]))
            no = (((0.58, cross),) if cross else ()) + ((0.55, 10),)
            events.append(("book", ts, book(yes=yes, no=no), draw(st.sampled_from([True, True, False]))))
        elif kind == "print":
            price = draw(st.sampled_from([4000, 4000, 4000, 3900]))
            block = draw(st.sampled_from([False, False, False, True]))
            events.append(("print", ts, sold_yes(ts, price, draw(st.integers(1, 1500)), block)))
        else:
            events.append(("gap", ts))
    # (decided up to 100 ms before the tape: active from its start, ``rest``'s latency being 100 ms)
    orders = [
        (4000, draw(st.integers(1000, 6000)), draw(st.integers(-100, 0))),
        (4200, draw(st.integers(500, 3000)), -100),
    ]
    return events, orders, (5500, draw(st.integers(100, 2000)), draw(st.integers(-100, 0)))


def resumed_at(tape, model: str, cut: int) -> list[PaperOrder]:
    """The tape's orders, the fill models stopped after ``cut`` events and resumed (the orders read
    back as a store keeps them, the book in force, ``export_state`` put back), then the rest."""
    events, orders, no_order = tape
    first = MarketFills(MAKERS, model)
    before = mine(orders, no_order)
    for o in before:
        first.add(o)
    feed(first, events[:cut])
    state = first.export_state()
    again = MarketFills(MAKERS, model)
    if first.book is not None:  # the book in force (the engine: the market's latest stored quote)
        again.on_book(events[cut - 1][1], first.book, True)
    resumed = [stored(o) for o in before]
    for o in resumed:
        if not o.state.done:
            again.add(o)
    again.restore_state(state)
    feed(again, events[cut:])
    return resumed


def mine(orders, no_order) -> list[PaperOrder]:
    out = [rest(f"y{i}", Side.YES, lim, qty, decided) for i, (lim, qty, decided) in enumerate(orders)]
    return out + [rest("n", Side.NO, *no_order)]


def _at(n: int, cross: int = 0):
    """A sticky tape's book: ``n`` contracts bid at 0.40, and a NO bid of ``cross`` at 0.58."""
    return book(yes=((0.40, n), (0.39, 5)), no=(((0.58, cross),) if cross else ()) + ((0.55, 10),))


_OURS = [(4000, 3000, -100), (4200, 500, -100)], (5500, 100, -100)  # all active from 0
#: Tapes that need each thing a restart keeps (beside what the random tapes find): the place of
#: an order that prints moved up (risk_averse); what traded since the book (prob: a decrease the
#: print explains does not move us again); a level our fills consumed (shown again, unchanged);
#: a gap (a print through us in it fills nothing).
_PLACE = [("book", 0, _at(30), True), ("print", 10, sold_yes(10, 4000, 1500)), ("print", 20, sold_yes(20, 4000, 2000))]
_TRADED = [("book", 0, _at(40), True), ("print", 10, sold_yes(10, 4000, 1500)), ("book", 20, _at(30), True)]
_TRADED.append(("print", 30, sold_yes(30, 4000, 2000)))
_CONSUMED = [("book", 0, _at(30, cross=2), True), ("book", 10, _at(20, cross=2), True)]
_GAP = [("book", 0, _at(30), True), ("gap", 5), ("print", 10, sold_yes(10, 3900, 400)), ("book", 20, _at(30), True)]


@settings(max_examples=100, deadline=None)
@given(st.one_of(sticky_tapes(), tapes()), st.sampled_from(["risk_averse", "prob", "front"]))
@example((_PLACE, *_OURS), "risk_averse")
@example((_TRADED, *_OURS), "prob")
@example((_CONSUMED, *_OURS), "risk_averse")
@example((_GAP, *_OURS), "risk_averse")
def test_a_cut_anywhere_resumes_to_the_same_events(tape, model):
    """Every cut of the tape: the same events, fills and fee accumulators as the tape uncut."""
    events, orders, no_order = tape
    whole = MarketFills(MAKERS, model)
    ours = mine(orders, no_order)
    for o in ours:
        whole.add(o)
    feed(whole, events)
    for cut in range(len(events) + 1):
        for a, b in zip(ours, resumed_at(tape, model, cut)):
            assert b.events == a.events, cut
            assert b.filled_hundredths == a.filled_hundredths
            acc_a, acc_b = a.acc, b.acc
            assert (acc_b and (acc_b.charged_cc, acc_b.exact)) == (acc_a and (acc_a.charged_cc, acc_a.exact))


def test_the_state_a_restart_keeps():
    """A YES bid of 10 at 0.40 behind 30; a print of 12 at 0.40 leaves 18 ahead, 12 traded since
    the book; a NO bid of 2 at 0.58 (a YES ask at 0.42) then crosses a second order, a YES bid at
    0.42 with nothing displayed there, and is consumed; a gap is kept until a snapshot."""
    m = MarketFills(MAKERS, "prob")
    m.on_book(0, book(yes=((0.40, 30),), no=((0.55, 10),)))
    a, b = rest("a", qty=1000, latency=0), rest("b", limit=4200, qty=500, latency=10)
    m.add(a)
    m.add(b)
    m.advance(0)
    m.on_print(sold_yes(5, 4000, 1200))
    m.on_book(20, book(yes=((0.40, 30),), no=((0.58, 2), (0.55, 10))), snapshot=False)
    assert [(f.trigger, f.hundredths) for f in b.fills] == [(Trigger.CROSS, 200)]
    state = m.export_state()
    assert state == FillsState(
        {"a": QueuePlace(1800, 3000, 0), "b": QueuePlace(0, 0, 0)}, False, ((Side.NO, 5800, 200, 200),)
    )
    m.on_gap(30)
    assert m.export_state().gap and FillsState({}).empty and not state.empty


def test_an_order_resumed_without_a_place_takes_the_book_and_a_fill_resumes_the_accumulator():
    """A file that kept no place: an active resting order takes the displayed size, as at its
    activation. Fills of 1 at 0.45 at a maker's 0.0175: 43.3125 cc each, charged 44 then 43."""
    o = PaperOrder("a", "T", Side.YES, 4500, 1000, TimeInForce.GTC, 0, insert_latency_ms=0)
    o.events.append(OrderEvent(0, OrderState.SUBMITTED))
    o.events.append(OrderEvent(0, OrderState.ACTIVE))
    f = OrderFill(5, Role.MAKER, Trigger.THROUGH, 100, 4500, 44, ((4500, 100),), Decimal("0.00433125"))
    o.events.append(OrderEvent(5, OrderState.PARTIALLY_FILLED, fill=f))
    o.resume_fills(MAKERS)
    assert o.remaining_hundredths == 900 and isinstance(o.acc, FeeAccumulator) and o.acc.charged_cc == 44
    m = MarketFills(MAKERS, "risk_averse")
    m.on_book(10, book(yes=((0.45, 7),), no=((0.50, 10),)))
    m.add(o)
    m.restore_state(FillsState({}))
    assert m.queue_ahead("a") == 700
    m.on_print(sold_yes(20, 4400, 100))
    assert [g.fee_cc for g in o.fills] == [44, 43]
