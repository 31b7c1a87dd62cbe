"""The quick snapshot check (the hot path) against pydantic's QuoteRules (the rule book).

Whatever the quick check accepts, pydantic must accept with the same values; what it
declines goes to pydantic, which names the reason. Generated rows mix the forms sources
write ($0.0001-grid strings, Decimals, pairs or dicts for levels, integer or "2.50" counts)
with every kind of bad value.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal

from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kakashi_tui.adapters.store.rows import snapshot_from_row
from kakashi_tui.core.models import Quote, QuoteRules, Side
from kakashi_tui.core.validate import model_input, quick_snapshot, validate_row

NOW = 1_767_571_200_000

good_cc = st.integers(1, 9999)
prices = st.one_of(
    good_cc.map(lambda c: f"{c / 10000:.4f}"),
    good_cc.map(lambda c: f"{c / 100:.2f}" if c % 100 == 0 else f"{c / 10000:.4f}"),
    good_cc.map(lambda c: Decimal(c) / 10000),
    st.sampled_from(
        [
            "0",
            "1",
            "0.0",
            "1.00",
            "0.5",
            "0.50",
            "0.500",
            " 0.4",
            "0.425",
            "1.5",
            "-0.1",
            "abc",
            "",
            "NaN",
            "1e-2",
            "0.1e1",
            "0.00005",
            "0.42301",
            "0.0030",
            "0.9930",
            "0.0000",
            "1.0000",
        ]
    ),
    st.sampled_from(
        [
            Decimal("0.420"),
            Decimal("0.425"),
            Decimal("1.01"),
            Decimal("-0.01"),
            Decimal("NaN"),
            Decimal("sNaN"),
            Decimal("Infinity"),
            Decimal("4.2E-1"),
            Decimal(0),
            Decimal(1),
            Decimal("0.00005"),
        ]
    ),
    st.sampled_from([0, 1, 2, 0.5, 0.16, 0.0625, True, False, None, [], {}]),
)
qtys = st.one_of(
    st.integers(1, 500),
    st.integers(1, 50000).map(lambda h: f"{h // 100}.{h % 100:02d}"),
    st.sampled_from(
        [
            0,
            -1,
            True,
            2.0,
            "3",
            "2.5",
            "2.505",
            "0.00",
            "-1.00",
            " 2",
            "1_0",
            "٣",
            "1e2",
            None,
            2**70,
            "99999999999999",
            Decimal("2.50"),
            Decimal("2.505"),
            Decimal("NaN"),
        ]
    ),
)
level = st.one_of(
    st.tuples(prices, qtys).map(lambda t: {"price": t[0], "qty": t[1]}),
    st.tuples(prices, qtys).map(list),
    st.tuples(prices, qtys),
    st.tuples(prices, qtys).map(lambda t: {"price": t[0], "qty": t[1], "extra": 1}),
    st.sampled_from([None, "0.4", [0.4], {"price": "0.4"}]),
)


def _lv(p, q, form):
    return {"price": p, "qty": q} if form == "dict" else ([p, q] if form == "pair" else (p, q))


@st.composite
def raw_snapshots(draw):
    """A valid row in one of the usual forms, then up to three mutations toward trouble."""
    bid = draw(good_cc)
    ask = draw(st.integers(bid + 1, 10000))
    form = draw(st.sampled_from(["dict", "pair", "tuple"]))
    as_dec = draw(st.booleans())
    step = draw(st.sampled_from([1, 10, 100]))

    def p(c):
        return Decimal(c) / 10000 if as_dec else f"{c / 10000:.4f}"

    def q():
        h = draw(st.integers(1, 30000))
        return h // 100 if h % 100 == 0 or draw(st.booleans()) and h >= 100 else f"{h // 100}.{h % 100:02d}"

    ys = [c for c in range(bid, max(bid - step * draw(st.integers(0, 4)), 0), -step)]
    ns = [c for c in range(10000 - ask, max(10000 - ask - step * draw(st.integers(0, 4)), 0), -step)]
    raw = {
        "ticker": "M1",
        "ts": draw(st.integers(NOW - 10**6, NOW)),
        "yes_bid": p(bid),
        "yes_ask": p(ask) if ask < 10000 else draw(st.sampled_from([None, "1.0000"])),
        "last": p(draw(st.integers(0, 10000))),
        "volume": draw(
            st.one_of(st.integers(0, 10**6), st.integers(0, 10**8).map(lambda h: f"{h // 100}.{h % 100:02d}"))
        ),
        "yes_bids": [_lv(p(c), q(), form) for c in ys],
        "no_bids": [_lv(p(c), q(), form) for c in ns],
    }
    if draw(st.integers(0, 9)) == 0:  # a quiet market now and then
        raw.update(
            yes_bid=draw(st.sampled_from([None, "0.0000"])),
            yes_ask=draw(st.sampled_from([None, "1.0000"])),
            yes_bids=[],
            no_bids=[],
        )
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.sampled_from(["price", "level", "qty", "order", "ts", "ticker", "volume", "drop", "extra"]))
        if what == "price":
            raw[draw(st.sampled_from(["yes_bid", "yes_ask", "last"]))] = draw(prices)
        elif what in ("level", "qty", "order"):
            side = draw(st.sampled_from(["yes_bids", "no_bids"]))
            levels = list(raw.get(side) or [])
            if what == "level":
                levels.insert(draw(st.integers(0, len(levels))), draw(level))
            elif what == "qty" and levels:
                i = draw(st.integers(0, len(levels) - 1))
                lv = levels[i]
                if isinstance(lv, dict) or (isinstance(lv, (list, tuple)) and lv):  # (an earlier junk level stays)
                    pr = lv.get("price") if isinstance(lv, dict) else lv[0]
                    levels[i] = _lv(pr, draw(qtys), form)
            elif levels:
                levels = draw(st.permutations(levels))
            raw[side] = levels
        elif what == "ts":
            raw["ts"] = draw(st.one_of(st.integers(NOW, NOW + 10**4), st.sampled_from([0, -1, True, "5", 1.0])))
        elif what == "ticker":
            raw["ticker"] = draw(st.sampled_from([" M1", "M1 ", "", 5, None]))
        elif what == "volume":
            raw["volume"] = draw(st.sampled_from([-3, None, True, 2.5, "7", "7.005", "-1", 10**15]))
        elif what == "drop" and raw:
            del raw[draw(st.sampled_from(sorted(raw)))]
        elif what == "extra":
            raw["extra"] = 1
    return raw


def pydantic_view(raw: dict) -> Quote:
    return Quote.from_rules(QuoteRules.model_validate(model_input(raw), context={"now_ms": NOW}))


#: Examples a run: every local run draws new ones (CI's are fixed, derandomized), so coverage
#: accumulates; ``KAKASHI_QUICK_CHECK_EXAMPLES=20000`` for a deep look after changing either check.
QUICK_CHECK_EXAMPLES = int(os.environ.get("KAKASHI_QUICK_CHECK_EXAMPLES", "1000"))


@settings(max_examples=QUICK_CHECK_EXAMPLES, deadline=None)
@given(raw_snapshots())
def test_what_the_quick_check_accepts_pydantic_accepts_with_the_same_values(raw):
    q = quick_snapshot(raw, NOW)
    event("declined" if q is None else "accepted")
    v = validate_row({"ticker": "M1", "status": "active"}, raw, NOW)  # never raises: a verdict for every row
    assert (v.snapshot is None) == (v.reason is not None)
    if q is None:
        return
    try:
        s = pydantic_view(raw)
    except ValidationError as e:  # pragma: no cover - the failure this test exists to catch
        raise AssertionError(f"quick check accepted a row pydantic rejects: {raw!r}: {e}") from e
    assert q == s
    assert q.prices_cc == s.prices_cc and q.volume == s.volume and q.quiet == s.quiet
    assert (q.yes_bid, q.yes_ask, q.last, q.yes_bids, q.no_bids) == (
        s.yes_bid,
        s.yes_ask,
        s.last,
        s.yes_bids,
        s.no_bids,
    )
    assert q.spread() == s.spread()
    for side in Side:
        assert (q.ask(side), q.bid(side), q.ask_levels(side)) == (s.ask(side), s.bid(side), s.ask_levels(side))
    # the stored text reads back as the same snapshot, and is exactly compact JSON
    assert snapshot_from_row(q.ticker, q.ts, *q.prices_cc, q.volume_hundredths, q.book_text) == s
    if q.book_text:
        assert json.dumps(json.loads(q.book_text), separators=(",", ":")) == q.book_text


@settings(max_examples=500, deadline=None)
@given(
    st.integers(1, 9998),
    st.integers(1, 500),
    st.lists(st.integers(1, 20000), min_size=1, max_size=4),
    st.sampled_from(["str", "dec", "pair"]),
)
def test_plain_rows_take_the_quick_path(bid, width, qty, form):
    ask = min(bid + width, 9999)
    ys = [bid - 10 * i for i in range(len(qty)) if bid - 10 * i > 0]
    ns = [10000 - ask - 10 * i for i in range(len(qty)) if 10000 - ask - 10 * i > 0]
    qty = [h // 100 if h % 100 == 0 else f"{h // 100}.{h % 100:02d}" for h in qty]

    def p(c):
        return Decimal(c) / 10000 if form == "dec" else f"{c / 10000:.4f}"

    def lv(c, n):
        return [p(c), n] if form == "pair" else {"price": p(c), "qty": n}

    raw = {
        "ticker": "M1",
        "ts": NOW,
        "yes_bid": p(bid),
        "yes_ask": p(ask),
        "volume": "3.50",
        "yes_bids": [lv(c, n) for c, n in zip(ys, qty)],
        "no_bids": [lv(c, n) for c, n in zip(ns, qty)],
    }
    q = quick_snapshot(raw, NOW)
    assert isinstance(q, Quote)
    assert q == pydantic_view(raw)


def test_declined_rows_get_pydantics_reason():
    market = {"ticker": "M1", "status": "active"}
    base = {
        "ticker": "M1",
        "ts": NOW,
        "yes_bid": "0.40",
        "yes_ask": "0.45",
        "yes_bids": [["0.40", 5]],
        "no_bids": [["0.55", 5]],
    }
    cases = {
        "crossed book": {"yes_bid": "0.50", "yes_bids": [["0.50", 5]]},
        "not on the $0.0001 grid": {"yes_ask": "0.45005"},
        "not on the 0.01 grid": {"yes_bids": [["0.40", "5.001"]]},
        "in the future": {"ts": NOW + 60_000},
        "best first with distinct prices": {"yes_bids": [["0.40", 5], ["0.41", 5]]},
        "depth disagrees with top of book (yes ask)": {"no_bids": [["0.54", 5]]},
        "greater than 0": {"yes_bids": [["0.40", 0]]},
    }
    for reason, change in cases.items():
        v = validate_row(market, {**base, **change}, NOW)
        assert v.snapshot is None and v.reason is not None and reason in v.reason, (reason, v.reason)
    ok = validate_row(market, base, NOW)
    assert ok.reason is None and isinstance(ok.snapshot, Quote)
    odd = validate_row(market, {**base, "yes_bid": 0.4, "yes_bids": [[0.4, 5]]}, NOW)  # floats: pydantic's lax path
    assert odd.reason is None and isinstance(odd.snapshot, Quote) and odd.snapshot == ok.snapshot
