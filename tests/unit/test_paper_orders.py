"""Paper orders and their fill models (issue #23, core/orders.py and core/queue.py): each rule on
a small hand-made tape whose expected fills are worked out here, then properties over random
tapes. Prices in centicents, counts in hundredths, times in ms."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakashi_tui.core.broker import fill_buy
from kakashi_tui.core.fees import FeeTerms, FeeType
from kakashi_tui.core.grid import PriceGrid
from kakashi_tui.core.models import Side
from kakashi_tui.core.orders import OrderState, PaperOrder, Role, TimeInForce, Trigger, reserved_cc, submit
from kakashi_tui.core.queue import MarketFills, Print
from tests.conftest import book
from tests.unit.test_broker_ledger import decision

T = FeeTerms()  # 0.07, quadratic: makers pay nothing
MAKERS = FeeTerms(fee_type=FeeType.QUADRATIC_WITH_MAKER_FEES)


def rest(oid="a", side=Side.YES, limit=4000, qty=500, decided=0, latency=100, tif=TimeInForce.GTC, **kw):
    return submit(oid, "T", side, limit, qty, decided, tif, insert_latency_ms=latency, **kw)


def sold_yes(ts, price_cc, h, block=None):
    """A print whose taker went long NO (sold YES): it hits YES bids."""
    return Print(ts, price_cc, h, Side.NO, "ask", block)


def bought_yes(ts, price_cc, h):
    """A print whose taker went long YES: it hits NO bids (YES asks)."""
    return Print(ts, price_cc, h, Side.YES, "bid")


def fills(o: PaperOrder) -> list[tuple[int, Trigger, int]]:
    return [(f.ts, f.trigger, f.hundredths) for f in o.fills]


def states(o: PaperOrder) -> list[str]:
    return [e.state.value for e in o.events]


# -- queue rules ------------------------------------------------------------------------------
def test_risk_averse_queue_starts_at_displayed_size_prints_reduce_and_books_cap_it():
    m = MarketFills(T)
    m.on_book(0, book(yes=((0.40, 10),), no=((0.55, 10),)))
    o = rest(qty=500)  # YES bid 0.40 x 5, active at 100
    m.add(o)
    m.on_print(sold_yes(50, 4000, 2000))  # before activation: nothing, and no queue to move
    assert o.state is OrderState.SUBMITTED and o.filled_hundredths == 0
    m.advance(100)
    assert o.state is OrderState.ACTIVE and m.queue_ahead("a") == 1000  # the 10 displayed at 0.40
    m.on_print(sold_yes(150, 4000, 600))  # 6 trade at our price: 4 left ahead
    assert m.queue_ahead("a") == 400 and o.filled_hundredths == 0
    m.on_book(200, book(yes=((0.40, 3),), no=((0.55, 10),)))  # the level shrinks to 3: cap at 3
    assert m.queue_ahead("a") == 300
    m.on_print(sold_yes(250, 4000, 500))  # 5 trade: 3 pass the queue, 2 fill us
    m.on_print(sold_yes(300, 4000, 400))  # 4 trade: the 3 we still want fill, 1 is someone else's
    assert fills(o) == [(250, Trigger.AT_PRICE_QUEUE, 200), (300, Trigger.AT_PRICE_QUEUE, 300)]
    assert states(o) == ["submitted", "active", "partially_filled", "filled"]
    assert all(f.role is Role.MAKER and f.price_cc == 4000 for f in o.fills)


def _band_tape(model, rng=None):
    """Level 10 at activation; it grows to 20 (10 behind us), then 8 leave it without a print;
    then a print of 7. risk_averse: the 8 came from behind (ahead stays 10): the print leaves 3
    ahead, no fill. prob (expectation, n = 2): front = back = 10, p = 1/2, ahead = 10 - 4 + min(10
    - 4, 0) = 6: the 7 fill 1. front: nothing ahead, the 7 fill 5 (all we want)."""
    m = MarketFills(T, model, rng)
    m.on_book(0, book(yes=((0.40, 10),), no=((0.55, 10),)))
    o = rest(qty=500)
    m.add(o)
    m.advance(100)
    m.on_book(200, book(yes=((0.40, 20),), no=((0.55, 10),)))
    m.on_book(300, book(yes=((0.40, 12),), no=((0.55, 10),)))
    ahead = m.queue_ahead("a")
    m.on_print(sold_yes(400, 4000, 700))
    return ahead, o.filled_hundredths


def test_the_three_models_on_one_tape():
    assert _band_tape("risk_averse") == (1000, 0)
    assert _band_tape("prob") == (600, 100)
    assert _band_tape("front") == (0, 500)
    assert _band_tape("prob", random.Random(0)) in ((1000, 0), (200, 500))


class _Draw(random.Random):
    def __init__(self, u):
        super().__init__(0)
        self.u = u

    def random(self):
        return self.u


def test_prob_draws_the_decrease_behind_or_ahead_of_us_with_the_callers_random():
    # p = 1/2: a draw under it puts the 8 behind us (10 behind, so all fit): 10 ahead, no fill;
    # a draw over it takes them off the front: 2 ahead, the 7 fill our 5
    assert _band_tape("prob", _Draw(0.49)) == (1000, 0)
    assert _band_tape("prob", _Draw(0.51)) == (200, 500)


def test_prob_log_function_and_bad_names():
    m = MarketFills(T, "prob", prob_func="log")
    assert m._prob(10, 10) == 0.5 and m._prob(0, 5) == 1.0 and m._prob(5, 0) == 0.0
    for bad in ({"model": "optimistic"}, {"prob_func": "cubic"}, {"power_n": float("nan")}):
        with pytest.raises(ValueError):
            MarketFills(T, **bad)


def test_a_book_decrease_never_fills_under_prob():
    # hftbacktest's expectation can go below zero here (front 10, back 1, 11 leave: 10 - 0.99 x 11
    # < 0) and count it as a fill; ours floors the queue at zero: only prints fill
    m = MarketFills(T, "prob")
    m.on_book(0, book(yes=((0.40, 10),), no=((0.55, 10),)))
    o = rest(qty=500)
    m.add(o)
    m.advance(100)
    m.on_book(200, book(yes=((0.40, 11),), no=((0.55, 10),)))
    m.on_book(300, book(yes=((0.39, 5),), no=((0.55, 10),)))
    assert m.queue_ahead("a") == 0 and o.filled_hundredths == 0


def test_through_prints_fill_up_to_their_size_on_either_side():
    m = MarketFills(T)
    m.on_book(0, book(yes=((0.40, 50),), no=((0.55, 50),)))
    y, n = rest("y", qty=500), rest("n", Side.NO, limit=5800, qty=500)  # NO bid 0.58 = YES ask 0.42
    m.add(y)
    m.add(n)
    m.advance(100)
    m.on_print(sold_yes(200, 3800, 300))  # sold YES at 0.38 < our 0.40: 3 of them are ours
    m.on_print(bought_yes(300, 4500, 900))  # bought YES at 0.45 > 0.42: fills the NO bid's 5
    m.on_print(bought_yes(400, 4100, 900))  # at 0.41 < 0.42: not through the NO bid, not ours
    assert fills(y) == [(200, Trigger.THROUGH, 300)]
    assert fills(n) == [(300, Trigger.THROUGH, 500)] and n.state is OrderState.FILLED


def test_a_crossing_opposite_book_fills_up_to_its_size_once():
    m = MarketFills(T)
    m.on_book(0, book(yes=((0.38, 10),), no=((0.55, 10),)))
    o = rest(qty=500)
    m.add(o)
    m.advance(100)
    crossed = book(yes=((0.38, 10),), no=((0.61, 2), (0.60, 1)))  # YES asks 0.39 x 2, 0.40 x 1 <= 0.40
    m.on_book(200, crossed)
    assert fills(o) == [(200, Trigger.CROSS, 200), (200, Trigger.CROSS, 100)]
    m.on_book(300, crossed)  # the same liquidity again: consumed, nothing more
    m.on_book(400, book(yes=((0.38, 10),), no=((0.61, 1), (0.60, 1))))  # 0.61 shrinks: still nothing
    assert o.filled_hundredths == 300
    m.on_book(500, book(yes=((0.38, 10),), no=((0.61, 5), (0.60, 1))))  # 4 fresh at 0.61: our last 2
    assert fills(o)[-1] == (500, Trigger.CROSS, 200) and o.state is OrderState.FILLED
    assert all(f.price_cc == 4000 and f.role is Role.MAKER for f in o.fills)


def test_block_prints_and_gaps_never_fill_and_wait_for_a_snapshot():
    m = MarketFills(T, "front")
    m.on_book(0, book(yes=((0.40, 10),), no=((0.55, 10),)))
    o = rest(qty=500)
    m.add(o)
    m.advance(100)
    m.on_print(sold_yes(150, 4000, 300, block=True))  # off the book
    m.on_print(sold_yes(160, 3900, 300, block=True))
    m.on_gap(200)
    m.on_print(sold_yes(250, 4000, 300))  # inside the gap
    m.on_book(300, book(yes=((0.38, 10),), no=((0.61, 3),)), snapshot=False)  # a delta: still the gap
    m.on_print(sold_yes(350, 3900, 300))
    assert o.filled_hundredths == 0 and m.gap
    m.on_book(400, book(yes=((0.38, 10),), no=((0.61, 3),)))  # the snapshot: its cross fills
    assert fills(o) == [(400, Trigger.CROSS, 300)]
    m.on_print(sold_yes(450, 4000, 100))
    assert fills(o)[-1] == (450, Trigger.AT_PRICE_QUEUE, 100)


def test_a_print_without_a_taker_side_fills_nothing():
    m = MarketFills(T, "front")
    m.on_book(0, book())
    o = rest()
    m.add(o)
    m.on_print(Print(200, 3900, 300))
    m.on_print(Print(300, 3900, 300, Side.NO, "bid"))  # the two fields disagree
    assert o.filled_hundredths == 0
    assert Print(1, 3900, 1, None, "ask").hits is Side.YES  # the book side alone says it


def test_one_print_is_shared_once_across_our_orders():
    m = MarketFills(T, "front")
    m.on_book(0, book(yes=((0.40, 10),), no=((0.55, 10),)))
    a, b, c = rest("a", qty=500), rest("b", qty=500, decided=10), rest("c", limit=4100, qty=200)
    for o in (a, b, c):
        m.add(o)
    m.advance(200)
    m.on_print(sold_yes(300, 4000, 600))  # through c's 0.41 first (2), then a (4): b gets nothing
    assert (c.filled_hundredths, a.filled_hundredths, b.filled_hundredths) == (200, 400, 0)
    m.on_print(sold_yes(400, 4000, 300))  # a's last 1, then b 2
    assert (a.filled_hundredths, b.filled_hundredths) == (500, 200)


# -- latency, time in force -------------------------------------------------------------------
def test_a_taker_fills_against_the_book_in_force_at_activation():
    m = MarketFills(T)
    m.on_book(0, book(yes=((0.40, 10),), no=((0.55, 10),)))  # YES ask 0.45 when decided
    o = submit("t", "T", Side.YES, 4600, 500, 0, insert_latency_ms=100)
    m.add(o)
    m.on_book(50, book(yes=((0.40, 10),), no=((0.53, 10),)))  # by activation the ask is 0.47
    m.advance(100)
    assert states(o) == ["submitted", "active", "cancelled"] and o.events[-1].reason.startswith("ioc: nothing")
    # insert latency 0 reproduces today's instant fill, to the centicent
    q = book(yes=((0.40, 10),), no=((0.55, 3), (0.54, 10)))
    m = MarketFills(T)
    m.on_book(0, q)
    o = submit("t0", "T", Side.YES, 4600, 500, 0, insert_latency_ms=0)
    m.add(o)
    m.advance(0)
    today = fill_buy(decision(n=5, limit="0.46"), q, T, 0)
    assert today is not None
    (f,) = o.fills
    assert (f.value_cc, f.fee_cc, f.role, f.trigger) == (today.value_cc, today.fee_cc, Role.TAKER, Trigger.TAKER)
    assert f.levels == ((4500, 300), (4600, 200)) and o.state is OrderState.FILLED


def test_an_ioc_walk_consumes_what_a_second_order_then_cannot_take():
    m = MarketFills(T)
    m.on_book(0, book(yes=((0.40, 10),), no=((0.55, 3),)))
    a, b = submit("a", "T", Side.YES, 4500, 200, 0, insert_latency_ms=0), submit("b", "T", Side.YES, 4500, 200, 0)
    m.add(a)
    m.add(b)
    m.advance(500)
    assert (a.filled_hundredths, b.filled_hundredths) == (200, 100)


def test_post_only_that_would_cross_is_rejected_and_gtc_takes_then_rests():
    m = MarketFills(MAKERS)
    m.on_book(0, book(yes=((0.40, 10),), no=((0.59, 2),)))  # YES ask 0.41
    p = rest("p", limit=4200, post_only=True)
    g = rest("g", limit=4200, qty=500, decided=10)  # (first, it would take the 2 and p would not cross)
    m.add(p)
    m.add(g)
    m.advance(110)
    assert p.state is OrderState.REJECTED
    assert p.events[-1].reason == "post-only would cross: best ask 0.4100 <= limit 0.4200"
    assert fills(g) == [(110, Trigger.TAKER, 200)] and g.state is OrderState.PARTIALLY_FILLED
    assert g.fills[0].role is Role.TAKER and m.queue_ahead("g") == 0  # rests at 0.42, where no one is
    assert g.fills[0].levels == ((4100, 200),)  # the taker's price: the ask it took
    m.on_print(sold_yes(200, 4100, 300))
    assert g.fills[-1].role is Role.MAKER and g.filled_hundredths == 500


def test_no_fill_after_a_cancel_takes_effect_and_gtd_expires():
    m = MarketFills(T, "front")
    m.on_book(0, book())
    o = rest(cancel_latency_ms=100)
    g = rest("g", tif=TimeInForce.GTD, expires_ts=350)
    m.add(o)
    m.add(g)
    m.advance(100)
    o.request_cancel(300)  # effective at 400
    m.on_print(sold_yes(349, 3900, 200))  # both still live
    m.on_print(sold_yes(350, 3900, 100))  # g expired at 350; o takes it
    m.on_print(sold_yes(400, 3900, 100))  # o's cancel is in force: nothing
    assert fills(o) == [(349, Trigger.THROUGH, 200), (350, Trigger.THROUGH, 100)]
    assert fills(g) == [] and g.events[-1].state is OrderState.EXPIRED and g.events[-1].ts == 350
    assert o.events[-1].state is OrderState.CANCELLED and o.events[-1].ts == 400


def test_submit_rejects_what_the_exchange_would_not_take():
    grid = PriceGrid(((0, 10_000, 100),))  # whole cents
    assert rest(limit=4050, grid=grid).events[-1].reason == "limit 0.4050 is off the market's price grid"
    assert rest(side=Side.NO, limit=5800, grid=grid).state is OrderState.SUBMITTED
    assert rest(limit=0).state is OrderState.REJECTED and rest(qty=0).state is OrderState.REJECTED
    assert rest(tif=TimeInForce.GTD, expires_ts=100).events[-1].reason == "GTD order expires before it would be active"
    assert rest(tif=TimeInForce.IOC, post_only=True).state is OrderState.REJECTED
    with pytest.raises(ValueError):
        rest(latency=-1)


# -- fees and reservations --------------------------------------------------------------------
@pytest.mark.parametrize(
    "fee_type, maker_cc",
    [
        (FeeType.QUADRATIC, 0),
        (FeeType.QUADRATIC_WITH_MAKER_FEES, 4375),  # 0.0175 x 100 x 0.25 = $0.4375
        (FeeType.QUADRATIC_WITH_COMBO_MAKER_FEES, 8750),  # 0.035 x 100 x 0.25
        (FeeType.FLAT, 17500),  # flat: the schedule's peak, maker as taker (core/fees.py)
    ],
)
def test_maker_fees_by_fee_type(fee_type, maker_cc):
    o = rest(limit=5000, qty=10_000, latency=0)
    o.activate(0)
    f = o.record_fill(1, Role.MAKER, Trigger.THROUGH, [(5000, 10_000)], FeeTerms(fee_type=fee_type))
    assert (f.value_cc, f.fee_cc) == (500_000, maker_cc)


def test_kalshi_fee_rounding_example_buy_3_at_0_055_in_three_1_lot_fills():
    # docs.kalshi.com "Fee Rounding", worked example "buy 3 contracts at $0.055 (three 1-lot
    # matches)", at a direct member's $0.0001 balance precision (no rounding fee: every value and
    # fee is whole centicents). Taker: 0.07 x 0.055 x 0.945 = $0.00363825 a fill; the order's
    # accumulator charges ceil(running exact sum) less what it charged: 37, 36, 37 (= 110, one
    # 3-lot fill's fee), where rounding each fill alone would charge 111.
    taker = rest(limit=550, qty=300, latency=0)
    taker.activate(0)
    got = [taker.record_fill(i, Role.TAKER, Trigger.TAKER, [(550, 100)], T) for i in (1, 2, 3)]
    assert [(f.value_cc, f.fee_cc) for f in got] == [(550, 37), (550, 36), (550, 37)]
    # the same three as a maker on quadratic_with_maker_fees: $0.0009095625 a fill -> 10, 9, 9
    maker = rest(limit=550, qty=300, latency=0)
    maker.activate(0)
    got = [maker.record_fill(i, Role.MAKER, Trigger.THROUGH, [(550, 100)], MAKERS) for i in (1, 2, 3)]
    assert [f.fee_cc for f in got] == [10, 9, 9]
    # one accumulator across roles (Kalshi: "regardless of whether the fills are taker or
    # maker"): taker 1, then makers 2: ceil(0.00363825) = 37, ceil(0.0045478125) = 46 -> 9, 55 -> 9
    mixed = rest(limit=550, qty=300, latency=0)
    mixed.activate(0)
    got = [mixed.record_fill(1, Role.TAKER, Trigger.TAKER, [(550, 100)], MAKERS)]
    got += [mixed.record_fill(i, Role.MAKER, Trigger.THROUGH, [(550, 100)], MAKERS) for i in (2, 3)]
    assert [f.fee_cc for f in got] == [37, 9, 9]


def test_a_maker_fill_is_free_during_a_fee_waiver_and_paid_after():
    terms = FeeTerms(fee_type=FeeType.QUADRATIC_WITH_MAKER_FEES, waiver_until_ts=1_000)
    o = rest(limit=5000, qty=200, latency=0)
    o.activate(0)
    a = o.record_fill(999, Role.MAKER, Trigger.THROUGH, [(5000, 100)], terms)
    b = o.record_fill(1_000, Role.MAKER, Trigger.THROUGH, [(5000, 100)], terms)
    assert (a.fee_cc, b.fee_cc) == (0, 44)  # $0.004375 up


def test_reservation_is_the_worst_case_as_if_filled():
    # resting (active) YES bid 0.40 x 5 on quadratic_with_maker_fees: 2.00 + maker fee at 0.40
    # (0.0175 x 5 x 0.24 = $0.021) and no rounding on a whole-cent limit
    o = rest(limit=4000, qty=500, latency=0)
    o.activate(0)
    assert reserved_cc(o, MAKERS, 0) == 20_000 + 210
    # before activation a non-post-only order may take: the taker's fee at the worst price up
    # to 0.40 (0.40 itself: 0.07 x 5 x 0.24 = $0.084), and a centicent per hundredth of rounding
    p = rest(limit=4000, qty=500)
    assert reserved_cc(p, MAKERS, 0) == 20_000 + 840 + 500
    o.record_fill(1, Role.MAKER, Trigger.THROUGH, [(4000, 200)], MAKERS)
    assert reserved_cc(o, MAKERS, 1) == 12_000 + 126  # what remains: 3 at 0.40 (0.0126)
    o.request_cancel(2)
    o.close(600)
    assert reserved_cc(o, MAKERS, 600) == 0
    # the worst case bounds what a fill of it really costs
    q = rest(limit=4050, qty=333, latency=0)
    q.activate(0)
    bound = reserved_cc(q, MAKERS, 0)
    got = [q.record_fill(i, Role.MAKER, Trigger.THROUGH, [(4050, 111)], MAKERS) for i in (1, 2, 3)]
    cost = sum(f.value_cc + f.fee_cc for f in got)
    assert cost <= bound


# -- properties over random tapes -------------------------------------------------------------
@st.composite
def tapes(draw):
    """A market's tape: books (YES bids under NO's mirror, so never crossed among themselves),
    prints on either side (some block), gaps; one or two YES bids and a NO bid of ours."""
    events = []
    ts = 0
    for _ in range(draw(st.integers(1, 25))):
        ts += draw(st.integers(0, 60))
        kind = draw(st.sampled_from(["book", "book", "print", "print", "print", "gap"]))
        if kind == "book":
            bid = draw(st.integers(38, 44))
            ask = draw(st.integers(bid + 1, 47))
            yes = tuple((f"0.{bid - i}", draw(st.integers(1, 30))) for i in range(draw(st.integers(0, 3))))
            no = tuple((f"0.{100 - ask - i}", draw(st.integers(1, 30))) for i in range(draw(st.integers(0, 3))))
            events.append(("book", ts, book(yes=yes, no=no), draw(st.sampled_from([True, True, False]))))
        elif kind == "print":
            side = draw(st.sampled_from([Side.YES, Side.NO]))
            price = draw(st.sampled_from([3900, 4000, 4000, 4100, 4200, 4400, 4500, 4500, 4600]))
            events.append(("print", ts, Print(ts, price, draw(st.integers(1, 1500)), side, None, draw(st.booleans()))))
        else:
            events.append(("gap", ts))
    orders = [
        (draw(st.sampled_from([3900, 4000, 4100, 4200])), draw(st.integers(100, 2000)), draw(st.integers(0, 200)))
        for _ in range(draw(st.integers(1, 2)))
    ]
    no_order = (draw(st.sampled_from([5400, 5500])), draw(st.integers(100, 2000)), draw(st.integers(0, 200)))
    return events, orders, no_order


def run(tape, model, rng=None):
    events, orders, no_order = tape
    m = MarketFills(T, model, rng)
    mine = [rest(f"y{i}", Side.YES, lim, qty, decided) for i, (lim, qty, decided) in enumerate(orders)]
    lim, qty, decided = no_order
    mine.append(rest("n", Side.NO, lim, qty, decided))
    for o in mine:
        m.add(o)
    for ev in events:
        if ev[0] == "book":
            m.on_book(ev[1], ev[2], ev[3])
        elif ev[0] == "print":
            m.on_print(ev[2])
        else:
            m.on_gap(ev[1])
    return m, mine


@settings(max_examples=150, deadline=None)
@given(tapes(), st.integers(0, 2**32))
def test_band_order_latency_and_bounds_hold_on_any_tape(tape, seed):
    _m, ra = run(tape, "risk_averse")
    _m, pr = run(tape, "prob", random.Random(seed))
    _m, ex = run(tape, "prob")
    mf, fr = run(tape, "front")
    for orders in (ra, pr, ex, fr):
        for o in orders:
            assert all(f.ts >= o.activation_ts for f in o.fills)  # never before activation
            assert sum(f.hundredths for f in o.fills) == o.filled_hundredths <= o.quantity_hundredths
    # single orders' band: the NO bid is alone on its side, so its fills are ordered exactly
    n = len(ra) - 1
    assert ra[n].filled_hundredths <= pr[n].filled_hundredths <= fr[n].filled_hundredths
    assert ra[n].filled_hundredths <= ex[n].filled_hundredths <= fr[n].filled_hundredths
    events = tape[0]
    # fills from prints never exceed the prints that can fill (on the book, outside a gap)
    gap, usable = False, 0
    for ev in events:
        if ev[0] == "gap":
            gap = True
        elif ev[0] == "book" and ev[3]:
            gap = False
        elif ev[0] == "print" and not gap and not ev[2].is_block_trade:
            usable += ev[2].count_hundredths
    for orders in (ra, pr, ex, fr):
        by_print = (Trigger.THROUGH, Trigger.AT_PRICE_QUEUE)
        from_prints = sum(f.hundredths for o in orders for f in o.fills if f.trigger in by_print)
        assert from_prints <= usable
        # crosses never take more than the crossing books showed (each book's crossing size at most)
        crossing = 0
        for ev in events:
            if ev[0] == "book":
                crossing += sum(h for c, h in zip(ev[2]._depth[2], ev[2]._depth[3])) + sum(ev[2]._depth[1])
        by_book = (Trigger.CROSS, Trigger.TAKER)
        assert sum(f.hundredths for o in orders for f in o.fills if f.trigger in by_book) <= crossing


@settings(max_examples=40, deadline=None)
@given(tapes(), st.integers(0, 2**32))
def test_prob_is_deterministic_under_the_seed(tape, seed):
    _m, a = run(tape, "prob", random.Random(seed))
    _m, b = run(tape, "prob", random.Random(seed))
    assert [o.events for o in a] == [o.events for o in b]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(1, 900)), max_size=12), st.integers(0, 300))
def test_nothing_fills_before_activation_ever(prints, latency):
    m = MarketFills(T, "front")
    m.on_book(0, book(yes=((0.38, 10),), no=((0.52, 3),)))
    o = rest(qty=10_000, latency=latency)
    m.add(o)
    for ts, h in sorted(prints):
        m.on_print(sold_yes(ts, 3900, h))
        m.on_book(ts, book(yes=((0.38, 10),), no=((0.61, 1),)))  # crosses our 0.40
    assert all(f.ts >= latency for f in o.fills)
    assert all(e.ts >= latency for e in o.events[1:])


@st.composite
def queue_tapes(draw):
    """One YES bid at 0.40 and a tape about its level: the displayed size there moving up and
    down, prints at 0.40 (and a few through it), some block, now and then a gap."""
    events, ts = [], 0
    for _ in range(draw(st.integers(1, 30))):
        ts += draw(st.integers(0, 50))
        kind = draw(st.sampled_from(["book", "book", "book", "print", "print", "gap"]))
        if kind == "book":
            size = draw(st.integers(0, 40))
            yes = ((0.40, size), (0.39, 5)) if size else ((0.39, 5),)
            events.append(("book", ts, book(yes=yes, no=((0.55, 10),)), draw(st.sampled_from([True, True, False]))))
        elif kind == "print":
            price = draw(st.sampled_from([4000, 4000, 4000, 3900]))
            events.append(("print", ts, sold_yes(ts, price, draw(st.integers(1, 2000)), draw(st.booleans()))))
        else:
            events.append(("gap", ts))
    return events, draw(st.integers(100, 3000)), draw(st.integers(0, 100))


def run_queue(tape, model, rng=None):
    events, qty, decided = tape
    m = MarketFills(T, model, rng)
    o = rest(qty=qty, decided=decided)
    m.add(o)
    for ev in events:
        if ev[0] == "book":
            m.on_book(ev[1], ev[2], ev[3])
        elif ev[0] == "print":
            m.on_print(ev[2])
        else:
            m.on_gap(ev[1])
    return o


@settings(max_examples=200, deadline=None)
@given(queue_tapes(), st.integers(0, 2**32))
def test_fills_risk_averse_at_most_prob_at_most_front(tape, seed):
    ra, fr = run_queue(tape, "risk_averse"), run_queue(tape, "front")
    for pr in (run_queue(tape, "prob", random.Random(seed)), run_queue(tape, "prob")):  # drawn; expectation
        assert ra.filled_hundredths <= pr.filled_hundredths <= fr.filled_hundredths
