"""A restart resumes live paper orders exactly (issue #23): a partially filled resting order
comes back with its fills, what remains and its fee accumulator; a resting order keeps its
place in the queue (and the liquidity its market's orders consumed) as of the last committed
tick. Each run is stopped as a ``kill -9`` leaves it: the store closed after a committed tick,
nothing of the process kept; the resumed run must give the uninterrupted run's orders, fills,
fees and ledger.

Resting orders do not come from the strategy yet: ``rest`` submits a GTC order and hands it to
the engine the way ``Engine._place`` does (its row, ``engine.orders``, its market's fill models).
Sizes below are in contracts; the tapes are scripted feeds (``FakeSource``)."""

from __future__ import annotations

from typing import Literal

import pytest

from kakashi_tui.adapters.source import FetchBatch, RawRow, TapeGap, TapePrint
from kakashi_tui.core.models import Side
from kakashi_tui.core.orders import PaperOrder, TimeInForce, submit
from kakashi_tui.core.queue import Print
from kakashi_tui.trading.engine import Engine, EngineConfig
from tests.conftest import query as q
from tests.integration.test_engine import NOW, fake_engine

MIN = 60_000
Model = Literal["risk_averse", "prob", "front"]


def tables(db) -> dict[str, list]:
    """What a run leaves: its orders, their events, fills and the ledger (with its chain)."""
    return {t: q(db, f"SELECT * FROM {t} ORDER BY id") for t in ("orders", "order_events", "fills")} | {
        "ledger": q(db, "SELECT ts, kind, ticker, amount_cc, key, chain FROM ledger ORDER BY id")
    }


def quote(ts, yes=((0.45, 50),), no=((0.50, 50),), **market) -> RawRow:
    """Market T's row with its book: YES bids and NO bids as (price, contracts), best first."""
    m = {"ticker": "T", "status": "active", "result": None, "close_ts": NOW + 24 * 3_600_000, **market}
    s = {
        "ticker": "T",
        "ts": ts,
        "yes_bid": str(yes[0][0]),
        "yes_ask": str(round(1 - no[0][0], 4)),
        "yes_bids": [{"price": str(p), "qty": n} for p, n in yes],
        "no_bids": [{"price": str(p), "qty": n} for p, n in no],
    }
    return RawRow(market=m, snapshot=s, payload={"m": m})


def hit_yes(ts, yes_price, contracts) -> TapePrint:
    """A print whose taker went long NO: it hits the YES bids (ours at 0.45: at our price when
    ``yes_price`` is 0.45, through it below)."""
    return TapePrint("T", Print(ts, round(yes_price * 10_000), contracts * 100, taker_outcome_side=Side.NO))


def rest(e: Engine, now: int, ticker: str = "T", limit_cc: int = 4500, contracts: int = 10) -> PaperOrder:
    """A GTC YES bid, active at once (no latency), handed to the engine as ``_place`` does."""
    oid = str(e.store.next_order_id())
    o = submit(oid, ticker, Side.YES, limit_cc, contracts * 100, now, TimeInForce.GTC, insert_latency_ms=0)
    with e.store.atomic():
        e.store.insert_order(o, "post", e.cfg.queue_model, None)
        e.orders[o.id] = o
        fm = e._fill_models(o.ticker, now, e.quotes[o.ticker], False)
        e._book_events(fm.add(o) + fm.advance(now))
    return o


def play(db, ticks: list[FetchBatch], model: Model = "risk_averse", cut: int | None = None) -> Engine:
    """Tick i at NOW + i minutes; the order rests after tick 0. ``cut``: the run stops after tick
    ``cut - 1`` (the store closed, nothing else of it kept) and a new engine resumes it."""
    cfg = EngineConfig(queue_model=model)
    e = fake_engine(db, ticks, cfg=cfg)
    for i in range(len(ticks)):
        if i == cut:
            e.store.close()
            e = fake_engine(db, ticks[i:], cfg=cfg)
        e.source.now = NOW + i * MIN
        e.tick()
        if i == 0:
            rest(e, NOW)
    e.store.close()
    return e


# -- the queue place: the uninterrupted run and the one killed and resumed give the same fills ------
def _risk_averse() -> tuple[list[FetchBatch], int, list[int]]:
    """50 ahead of us at 0.45. Tick 1: a print of 30 at our price (20 ahead), then the book shows
    60 (others joined behind us: still 20 ahead). Tick 2: a print of 25 passes the 20 and fills 5.
    A restart that put us at the displayed size again (60) would fill nothing."""
    return (
        [
            FetchBatch(rows=[quote(NOW)]),
            FetchBatch(rows=[quote(NOW + MIN, yes=((0.45, 60),))], tape=[hit_yes(NOW + 30_000, 0.45, 30)]),
            FetchBatch(rows=[quote(NOW + MIN, yes=((0.45, 60),))], tape=[hit_yes(NOW + 90_000, 0.45, 25)]),
        ],
        2,
        [500],
    )


def _prob() -> tuple[list[FetchBatch], int, list[int]]:
    """``prob`` (f = x^2, hftbacktest's expectation). 50 ahead; tick 1: the book grows to 80 (30
    behind us); tick 2: a print of 10 at our price (40 ahead, 10 traded since the book), the
    book re-sent unchanged. Cut. Tick 3: the book shows 60, a decrease of 20 of which the print
    explains 10: the other 10 fall behind us with p = 40^2 / (40^2 + 40^2) = 1/2, so 40 - 5 = 35
    ahead. Tick 4: a print of 38 at our price fills 3. Forgetting what was traded since the book
    would count the whole 20 (30 ahead, 8 filled); the displayed size (80) would fill nothing."""
    at80 = quote(NOW + MIN, yes=((0.45, 80),))
    return (
        [
            FetchBatch(rows=[quote(NOW)]),
            FetchBatch(rows=[at80]),
            FetchBatch(rows=[at80], tape=[hit_yes(NOW + 2 * MIN - 1, 0.45, 10)]),
            FetchBatch(rows=[quote(NOW + 3 * MIN, yes=((0.45, 60),))]),
            FetchBatch(rows=[quote(NOW + 3 * MIN, yes=((0.45, 60),))], tape=[hit_yes(NOW + 4 * MIN - 1, 0.45, 38)]),
        ],
        3,
        [300],
    )


def _cross() -> tuple[list[FetchBatch], int, list[int]]:
    """Liquidity consumed stays consumed. Our bid at 0.45, nothing at that price. Tick 1: a NO bid
    of 3 at 0.55 (a YES ask at 0.45) crosses us: a maker fill of 3 that consumes it. Cut. Tick 2:
    the YES side moves, the NO bid still shows 3: nothing new (a restart that forgot the
    consumption would fill 3 again). Tick 3: it shows 8: the 5 added fill."""
    return (
        [
            FetchBatch(rows=[quote(NOW, yes=((0.40, 50),))]),
            FetchBatch(rows=[quote(NOW + MIN, yes=((0.40, 50),), no=((0.55, 3), (0.50, 50)))]),
            FetchBatch(rows=[quote(NOW + 2 * MIN, yes=((0.40, 40),), no=((0.55, 3), (0.50, 50)))]),
            FetchBatch(rows=[quote(NOW + 3 * MIN, yes=((0.40, 40),), no=((0.55, 8), (0.50, 50)))]),
        ],
        2,
        [300, 500],
    )


def _gap() -> tuple[list[FetchBatch], int, list[int]]:
    """A feed gap outlasts its tick: nothing fills until the next full snapshot. Tick 1: the gap,
    the quote re-sent unchanged (no book: still in the gap). Cut. Tick 2: a print of 2 through our
    price fills nothing (a restart that forgot the gap would fill 2). Tick 3: a new quote (a
    snapshot) ends it; tick 4: a print of 4 through us fills 4."""
    at50 = quote(NOW)
    return (
        [
            FetchBatch(rows=[at50]),
            FetchBatch(rows=[at50], tape=[TapeGap(NOW + 30_000, "T")]),
            FetchBatch(rows=[at50], tape=[hit_yes(NOW + 90_000, 0.44, 2)]),
            FetchBatch(rows=[quote(NOW + 3 * MIN)]),
            FetchBatch(rows=[quote(NOW + 3 * MIN)], tape=[hit_yes(NOW + 4 * MIN - 1, 0.44, 4)]),
        ],
        2,
        [400],
    )


@pytest.mark.parametrize(
    ("model", "tape"),
    [("risk_averse", _risk_averse), ("prob", _prob), ("risk_averse", _cross), ("risk_averse", _gap)],
    ids=["risk_averse", "prob", "consumed", "gap"],
)
def test_a_run_killed_after_its_order_moved_up_the_queue_resumes_to_the_same_fills(tmp_path, model, tape):
    ticks, cut, fills = tape()
    play(tmp_path / "whole.db", ticks, model)
    play(tmp_path / "cut.db", ticks, model, cut=cut)
    assert [n for (n,) in q(tmp_path / "whole.db", "SELECT contracts_hundredths FROM fills")] == fills
    assert tables(tmp_path / "cut.db") == tables(tmp_path / "whole.db")


def test_a_tick_that_rolls_back_resumes_the_queue_place_its_last_commit_stored(tmp_path):
    """The risk_averse tape's tick 2 (a print of 25 passing the 20 ahead: a fill of 5) fails at its
    very end and rolls back, fill and queue alike; the engine rebuilds its orders from the store
    (20 ahead, as tick 1 committed) and the same fetch, played again, fills the 5 again."""
    ticks, _cut, _fills = _risk_averse()
    play(tmp_path / "whole.db", ticks)
    e = fake_engine(tmp_path / "rolled.db", ticks[:2])
    e.tick()
    rest(e, NOW)
    e.source.now = NOW + MIN
    e.tick()
    real = e.store.insert_tick

    def fails(**row):
        raise OSError("disk full")

    e.store.insert_tick = fails
    e.source.batches = [ticks[2]]
    e.source.now = NOW + 2 * MIN
    with pytest.raises(OSError):
        e.tick()
    assert e.queue_ahead("1") == 2000 and e.orders["1"].filled_hundredths == 0
    e.store.insert_tick = real
    e.source.batches = [ticks[2]]
    e.tick()
    e.store.close()
    assert tables(tmp_path / "rolled.db") == tables(tmp_path / "whole.db")


def test_a_rolled_back_tick_forgets_its_quotes_so_the_same_fetch_again_crosses_the_order(tmp_path):
    """The consumed tape's tick 1 (a NO bid of 3 crossing our bid) fails and rolls back. Its
    quote must go with it: kept in memory, the fetch played again read as "unchanged", was never
    stored nor handed to the fill models, and the cross filled a minute late (a review found it)."""
    ticks, _cut, _fills = _cross()
    play(tmp_path / "whole.db", ticks)
    e = fake_engine(tmp_path / "rolled.db", ticks[:1])
    e.source.now = NOW
    e.tick()
    rest(e, NOW)
    real = e.store.insert_tick

    def fails(**row):
        raise OSError("disk full")

    e.store.insert_tick = fails
    e.source.batches = [ticks[1]]
    e.source.now = NOW + MIN
    with pytest.raises(OSError):
        e.tick()
    e.store.insert_tick = real
    for i in range(1, len(ticks)):
        e.source.batches = [ticks[i]]
        e.source.now = NOW + i * MIN
        e.tick()
    e.store.close()
    assert tables(tmp_path / "rolled.db") == tables(tmp_path / "whole.db")
    count = "SELECT count(*) FROM snapshots"
    assert q(tmp_path / "rolled.db", count) == q(tmp_path / "whole.db", count)


# -- a partially filled order: its fills, what remains, its fee accumulator ------------------------
MAKER_FEES = {"fee_type": "quadratic_with_maker_fees"}  # a maker pays a quarter: 0.0175 x C x P x (1 - P)


def _through(n: int) -> list[FetchBatch]:
    """Our bid of 10 at 0.45 in a market whose makers pay fees; then ``n`` ticks each with a print
    of 1 through it (at 0.44): a maker's fill of 1 at 0.45 a tick."""
    row = quote(NOW, **MAKER_FEES)
    return [FetchBatch(rows=[row])] + [
        FetchBatch(rows=[row], tape=[hit_yes(NOW + i * MIN - 1, 0.44, 1)]) for i in range(1, n + 1)
    ]


def test_a_partially_filled_gtc_order_comes_back_with_its_fills_and_what_remains(tmp_path):
    db = tmp_path / "k.db"
    before = play(db, _through(2))
    (o,) = before.orders.values()
    assert (o.remaining_hundredths, len(o.fills), o.fee_cc) == (800, 2, 87)
    again = fake_engine(db, [])
    (back,) = again.orders.values()
    try:
        assert back.remaining_hundredths == 800 and back.state is o.state
        assert back.fills == o.fills and back.fee_cc == 87
        assert again.queue_ahead(back.id) == before.queue_ahead(o.id) == 5000  # (prints through move no queue)
    finally:
        again.store.close()


def test_the_fee_accumulator_survives_a_restart(tmp_path):
    """A maker's fill of 1 at 0.45 pays 0.0175 x 0.45 x 0.55 = $0.00433125 exactly, 43.3125 cc:
    the first fill is charged 44 (rounded up), the second 87 - 44 = 43 (the order's accumulator:
    two such fills pay ceil(86.625) = 87 in all). After a restart between them, the second must
    still pay 43, not the 44 of an accumulator started afresh."""
    play(tmp_path / "whole.db", _through(2))
    play(tmp_path / "cut.db", _through(2), cut=2)
    assert [f for (f,) in q(tmp_path / "whole.db", "SELECT fee_cc FROM fills")] == [44, 43]
    assert tables(tmp_path / "cut.db") == tables(tmp_path / "whole.db")


# -- the seeded simulator: its takers' prints and books ---------------------------------------------
def _sim_run(db, model: Model, ticks: int, cut: int | None = None) -> list[str]:
    """The seeded simulator with a GTC bid of 20 at each quoting market's best YES bid after the
    first tick (the strategy trades the others); stopped after tick ``cut`` and resumed when
    given. Each tick's queue places, as the engine reports them."""
    from kakashi_tui.trading.config import FillsSection, KakashiConfig
    from tests.conftest import make_engine

    cfg = KakashiConfig(fills=FillsSection(queue_model=model))
    e = make_engine(db, cfg=cfg)
    e.tick()
    now = e.source.now_ms()
    for t, quoted in sorted(e.quotes.items()):
        if t not in e.held_tickers() and quoted.prices_cc[0] is not None:
            rest(e, now, t, quoted.prices_cc[0], 20)
    places = []
    for i in range(1, ticks):
        if i == cut:
            e.store.close()
            e = make_engine(db, cfg=cfg)
        e.tick()
        places.append(" ".join(f"{o}:{e.queue_ahead(o)}" for o in sorted(e.orders)))
    e.store.close()
    return places


@pytest.mark.parametrize("model", ["risk_averse", "prob"])
def test_a_simulator_run_killed_with_resting_orders_resumes_to_the_same_ledger(tmp_path, model):
    """Cut after tick 3, when the first order has moved up its queue (54 ahead, then 24 or 11):
    every order, fill, fee and ledger entry of 16 ticks is the uninterrupted run's, and so is
    each tick's queue place; a maker's fill comes after the cut."""
    whole = _sim_run(tmp_path / "whole.db", model, 16)
    assert whole[0].split()[0] == "1:5400" and whole[1].split()[0] == {"risk_averse": "1:2400", "prob": "1:1112"}[model]
    cut = _sim_run(tmp_path / "cut.db", model, 16, cut=3)
    assert cut == whole
    assert tables(tmp_path / "cut.db") == tables(tmp_path / "whole.db")
    makers = q(tmp_path / "whole.db", "SELECT ts FROM fills WHERE role = 'maker'")
    last_before = q(tmp_path / "whole.db", "SELECT ts FROM ticks WHERE tick = 3")[0][0]
    assert any(ts > last_before for (ts,) in makers)
