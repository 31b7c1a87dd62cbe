"""The tape the engine's paper orders fill on (issue #23): the polled-book rule of the fill
models, and book rows and prints turned into tape entries (adapters/tape.py) as a WebSocket feed
and a replayed catalog both hand them over. Prices in centicents, counts in hundredths."""

from __future__ import annotations

from kakashi_tui.adapters.source import TapeBook, TapeGap, TapePrint
from kakashi_tui.adapters.tape import BookRow, PrintRow, TapeBuilder, book_quote
from kakashi_tui.core.fees import FeeTerms
from kakashi_tui.core.models import Side
from kakashi_tui.core.orders import OrderState, TimeInForce, submit
from kakashi_tui.core.queue import MarketFills

T = FeeTerms()


def ioc(decided=0, latency=500, limit=4500, qty=1000, side=Side.YES):
    return submit("o", "T", side, limit, qty, decided, TimeInForce.IOC, insert_latency_ms=latency)


def asks(ask_cc, qty=1000):
    """A book whose YES ask is ``ask_cc`` (a NO bid at 1 - ask)."""
    return book_quote("T", 0, [(ask_cc - 500, 1000)], [(10_000 - ask_cc, qty)])


def taken(o):
    return [(f.ts, f.levels) for f in o.fills]


# -- the book in force at activation --------------------------------------------------------------
def test_a_book_in_force_fills_an_order_that_activates_before_the_next_update():
    """The simulator's step, a book kept by deltas: the last update at or before activation."""
    m = MarketFills(T)
    m.on_book(0, asks(4200))
    o = ioc()
    m.add(o)
    m.on_book(300, asks(4300))  # before activation (500): in force then
    m.on_book(700, asks(4400))  # after: not the order's book
    assert taken(o) == [(500, ((4300, 1000),))] and o.state is OrderState.FILLED


def test_a_polled_book_is_known_only_at_its_fetch_so_the_order_waits_for_the_next_one():
    """Live by polling: the first fetched book at or after activation, at that book's time;
    nothing fills before (the book at 0 is no evidence of the book at 500)."""
    m = MarketFills(T)
    m.on_book(0, asks(4200), polled=True)
    o = ioc()
    m.add(o)
    assert m.advance(4_999) == [] and o.state is OrderState.SUBMITTED  # due at 500, no book seen since
    m.on_book(5_000, asks(4400), polled=True)
    assert taken(o) == [(5_000, ((4400, 1000),))]
    assert [(e.ts, e.state.value) for e in o.events] == [(0, "submitted"), (5_000, "active"), (5_000, "filled")]


def test_a_polled_book_at_the_decision_fills_an_order_of_no_latency_at_once():
    m = MarketFills(T)
    m.on_book(0, asks(4200), polled=True)
    o = ioc(latency=0)
    m.add(o)
    m.advance(0)
    assert taken(o) == [(0, ((4200, 1000),))]


def test_an_order_waiting_for_a_polled_book_is_cancelled_if_its_cancel_comes_first():
    m = MarketFills(T)
    m.on_book(0, asks(4200), polled=True)
    o = submit("o", "T", Side.YES, 4500, 1000, 0, TimeInForce.IOC, insert_latency_ms=500, cancel_latency_ms=100)
    m.add(o)
    o.request_cancel(1_000)  # effective at 1,100: before the next fetch
    m.on_book(5_000, asks(4200), polled=True)
    assert o.fills == [] and o.state is OrderState.CANCELLED


def test_an_order_cancelled_before_it_is_active_is_cancelled_then_and_never_active():
    """Its events stay in time order: cancelled when the cancel took effect (before its activation
    it never reached the exchange), no ``active`` event after it."""
    m = MarketFills(T)
    m.on_book(0, asks(4200))
    o = submit("o", "T", Side.YES, 4500, 1000, 0, TimeInForce.IOC, insert_latency_ms=500, cancel_latency_ms=100)
    m.add(o)
    o.request_cancel(0)
    m.advance(1_000)
    assert [(e.ts, e.state.value) for e in o.events] == [(0, "submitted"), (100, "cancelled")] and o.fills == []


# -- book rows and prints into the tape ---------------------------------------------------------
def snap(ts, t="A", levels=((4000, 500),), side="yes", seq=1):
    return [BookRow(ts, t, side, p, q, seq, 1, "snapshot", ts - 10) for p, q in levels]


def test_books_are_kept_for_every_market_and_handed_over_for_the_wanted_only():
    b = TapeBuilder()
    rows = [*snap(100, "A"), *snap(100, "B", seq=2), BookRow(200, "B", "yes", 4000, -200, 3, 1, "delta", 190)]
    assert b.tape(rows, [], {"A"}) == [TapeBook(100, "A", book_quote("A", 90, [(4000, 500)], []), snapshot=True)]
    # B was kept all along: wanted later, its book is the one the deltas left
    tape = b.tape([BookRow(300, "B", "no", 5500, 700, 4, 1, "delta", 290)], [], {"B"})
    assert tape == [TapeBook(300, "B", book_quote("B", 290, [(4000, 300)], [(5500, 700)]), snapshot=False)]


def test_rows_of_one_update_are_one_book_and_a_reset_is_a_gap_until_the_next_snapshot():
    b = TapeBuilder()
    rows = [
        *snap(100, levels=((4000, 500), (3900, 100))),  # one snapshot, two levels: one update
        BookRow(200, "A", "yes", 4000, -100, 2, 1, "delta", 150),  # a re-quote's two rows: one update
        BookRow(200, "A", "yes", 3900, 50, 3, 1, "delta", 150),
        BookRow(250, "A", None, None, None, None, None, "reset"),
        BookRow(260, "A", "yes", 3900, 10, 4, 1, "delta", 255),  # a delta while the book is unknown
        *snap(300, levels=((4100, 200),), seq=5),
    ]
    tape = b.tape(rows, [], {"A"})
    assert [type(e).__name__ for e in tape] == ["TapeBook", "TapeBook", "TapeGap", "TapeGap", "TapeBook"]
    assert tape[1].quote._depth == ((4000, 3900), (400, 150), (), ()) and tape[1].snapshot is False
    assert tape[2] == TapeGap(250, "A") and tape[4].snapshot is True
    assert tape[4].quote._depth == ((4100,), (200,), (), ())


def test_a_print_comes_before_the_book_it_left_and_each_stream_keeps_its_order():
    b = TapeBuilder()
    b.tape(snap(100), [], set())
    rows = [BookRow(500, "A", "yes", 4000, -200, 2, 1, "delta", 300)]  # what the print at 300 took
    prints = [
        PrintRow(500, "A", 4000, 200, "no", "ask", False, 300),
        PrintRow(500, "A", 3900, 5000, "no", "ask", True, 400),  # a block print: after the book at 300
        PrintRow(500, "B", 4000, 100, "yes", "bid", False, 100),  # not wanted
    ]
    tape = b.tape(rows, prints, {"A"})
    assert [type(e).__name__ for e in tape] == ["TapePrint", "TapeBook", "TapePrint"]
    first = tape[0]
    assert isinstance(first, TapePrint) and first.ts == 500 and first.print.hits is Side.YES
    assert tape[2].print.is_block_trade is True
