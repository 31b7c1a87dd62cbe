"""Issue #23, item 7, the band: the engine keeps its resting orders under the queue models it does
not trade by (core/shadows.py), stores their fills apart (``shadow_events``), and ``kakashi
replay`` and the post-mortem show the same orders under the three models. A hand-made tape whose
three models' fills differ, worked out here, goes through the engine into the store and out
through the replay's table and the post-mortem's section; the same run twice stores the same
shadow rows; the shadows never touch the ledger; take mode's band is three equal rows, and says
why; a restart resumes the copies exactly. The hand-made tapes place their resting order as the
engine places the strategy's (``Engine._place``), so the test sets its price and size; a
simulator run in post mode (issue #23 item 2) has the strategy post them."""

from __future__ import annotations

import random
import sqlite3

import pytest

from kakashi_tui.adapters import queries
from kakashi_tui.adapters.queries import connect_readonly
from kakashi_tui.adapters.source import FetchBatch, TapeBook, TapePrint
from kakashi_tui.adapters.tape import book_quote
from kakashi_tui.core.errors import StoreError
from kakashi_tui.core.models import Side
from kakashi_tui.core.orders import TimeInForce, submit
from kakashi_tui.core.queue import Print
from kakashi_tui.frontends.report import band
from kakashi_tui.frontends.report.postmortem import gather, render_markdown
from kakashi_tui.trading.engine import EngineConfig
from tests.clirun import in_process
from tests.conftest import query as rows
from tests.integration.test_engine import NOW, fake_engine, row

CFG = EngineConfig(insert_latency_ms=100, cancel_latency_ms=100)


def post(e, ticker, side, limit_cc, qty, tif=TimeInForce.GTC):
    """A resting order placed as ``Engine._place`` places the strategy's: stored, its copies
    handed to the band's shadows, then to its market's fill models, at the engine's clock."""
    now = e.source.now
    o = submit(
        str(e.store.next_order_id()),
        ticker,
        side,
        limit_cc,
        qty,
        now,
        tif,
        insert_latency_ms=CFG.insert_latency_ms,
        cancel_latency_ms=CFG.cancel_latency_ms,
    )
    with e.store.atomic():
        e.store.insert_order(o, "post", e.cfg.queue_model, None)
        e.orders[o.id] = o
        fm = e._fill_models(ticker, now, e.quotes[ticker], False)
        e._shadow_add(o, fm, now)
        e._book_events(fm.add(o) + fm.advance(now))
    return o


def yes_book(ts, at_40):
    """T's book from ``ts``: YES bids 0.40 x ``at_40``, NO bid 0.55 x 10 (a YES ask at 0.45)."""
    return TapeBook(ts, "T", book_quote("T", ts, [(4000, at_40 * 100)], [(5500, 1000)]), snapshot=False)


def sold_yes(ts, h):
    """A print at 0.40 whose taker went long NO: it hits YES bids at 0.40."""
    return TapePrint("T", Print(ts, 4000, h, Side.NO, "ask"))


def run(db, settle=True):
    """A YES bid at 0.40 for 10, decided at NOW, active at NOW + 100 with 10 displayed there.
    The level grows to 20 (10 join behind us), then 8 leave it without a print, then 7 trade at
    0.40; then (``settle``) T settles YES.

    - risk_averse (the run's): the 8 came from behind, 10 stay ahead; the 7 leave 3 ahead: nothing.
    - prob: front 10, back 10: the 8 fall behind us with p = 10^2 / (10^2 + 10^2) = 1/2. Its draw
      (a Random of its own, seeded "kakashi-band:T:1") is 0.85 >= 1/2: ahead of us, 2 stay; the 7
      pass them and fill 5 (at_price_queue, at 0.40: $2.00, a maker's fee on quadratic: 0).
    - front: nothing ahead: the 7 fill 7 ($2.80).
    Settled YES: front 7 x $1 - $2.80 = +$4.20, prob 5 x $1 - $2.00 = +$3.00, risk_averse $0.
    Not settled: marked at the last mid, 0.425: front 7 x 0.025 = +$0.175, prob +$0.125."""
    e = fake_engine(db, [FetchBatch(rows=[row(depth=10)])], cfg=CFG)
    e.tick()
    post(e, "T", Side.YES, 4000, 1000)
    e.source.batches.append(
        FetchBatch(tape=[yes_book(NOW + 200, 20), yes_book(NOW + 300, 12), sold_yes(NOW + 400, 700)])
    )
    e.source.now = NOW + 60_000
    e.tick()
    if settle:
        e.source.batches.append(FetchBatch(rows=[row(status="determined", result="yes")]))
        e.source.now = NOW + 120_000
        e.tick()
    e.store.close()
    return e


SHADOW = "SELECT model, ts, state, reason, trigger, contracts_hundredths, value_cc, fee_cc FROM shadow_events"


def test_a_tape_where_the_three_models_differ_through_the_engine_store_replay_and_report(tmp_path):
    assert random.Random("kakashi-band:T:1").random() > 0.5  # (prob's draw, worked out above)
    db = tmp_path / "k.db"
    e = run(db)
    # the shadows never reach the ledger, the fills or the real order: risk_averse filled nothing
    assert rows(db, "SELECT count(*) FROM fills") == [(0,)] and e.account.cash_cc == e.cfg.bankroll_cc
    assert [s for (s,) in rows(db, "SELECT state FROM order_events ORDER BY id")] == [
        "submitted",
        "active",
        "cancelled",
    ]
    assert rows(db, SHADOW + " ORDER BY id") == [
        ("prob", NOW, "submitted", "", None, None, None, None),
        ("front", NOW, "submitted", "", None, None, None, None),
        ("prob", NOW + 100, "active", "", None, None, None, None),
        ("prob", NOW + 400, "partially_filled", "", "at_price_queue", 500, 20_000, 0),
        ("front", NOW + 100, "active", "", None, None, None, None),
        ("front", NOW + 400, "partially_filled", "", "at_price_queue", 700, 28_000, 0),
        ("prob", NOW + 120_000, "cancelled", "market settled", None, None, None, None),
        ("front", NOW + 120_000, "cancelled", "market settled", None, None, None, None),
    ]
    # what `kakashi replay` prints after its summary (cli.main.finish_replay)
    con = connect_readonly(db)
    try:
        lines = band.replay_lines(con)
    finally:
        con.close()
    assert lines[:5] == [
        "queue models (the band):",
        "model                 orders  fills  fill rate  contracts filled     PnL  95% CI (by event)",
        "front                      1      1      70.0%                 7  +$4.20  n/a (fewer than 2 events)",
        "prob                       1      1      50.0%                 5  +$3.00  n/a (fewer than 2 events)",
        "risk_averse (traded)       1      0       0.0%                 0   $0.00  n/a (fewer than 2 events)",
    ]
    assert "used risk_averse only" in lines[5] and lines[-1] == band.L3
    assert not any("does not hold" in line or "taker" in line for line in lines)
    # the post-mortem's section, from the same store
    md = render_markdown(gather(db), NOW)
    sec = md.split("## Queue models: the band")[1].split("\n## ")[0]
    assert "| front | 1 | 1 | 70.0% | 7 | +$4.20 | n/a (fewer than 2 events) |" in sec
    assert "| prob | 1 | 1 | 50.0% | 5 | +$3.00 | n/a (fewer than 2 events) |" in sec
    assert "| risk_averse (traded) | 1 | 0 | 0.0% | 0 | $0.00 | n/a (fewer than 2 events) |" in sec
    assert band.L3 in sec


def test_an_unsettled_market_is_marked_at_its_last_mid_and_named(tmp_path):
    db = tmp_path / "k.db"
    run(db, settle=False)
    con = connect_readonly(db)
    try:
        b = band.gather_band(con, data_end_ms=NOW + 60_000)
    finally:
        con.close()
    assert b is not None and b.marked == ("T",) and b.no_mid == () and b.holds
    assert [(r.model, r.filled_hundredths, r.pnl_cc) for r in b.rows] == [
        ("front", 700, 1_750),
        ("prob", 500, 1_250),
        ("risk_averse", 0, 0),
    ]
    assert "marked at their last mid then (T)" in " ".join(band.notes(b))


def test_the_same_run_twice_stores_the_same_shadow_rows(tmp_path):
    run(tmp_path / "a.db")
    run(tmp_path / "b.db")
    a, b = (rows(tmp_path / f"{n}.db", "SELECT * FROM shadow_events ORDER BY id") for n in "ab")
    assert a == b and len(a) == 8


def test_a_kill_cancels_the_copies_after_the_cancel_latency_as_the_order(tmp_path):
    """A kill at NOW + 250: the order and its copies stop at NOW + 350, before the print at 400."""
    e = fake_engine(tmp_path / "k.db", [FetchBatch(rows=[row(depth=10)])], cfg=CFG)
    e.tick()
    post(e, "T", Side.YES, 4000, 1000)
    e.source.now = NOW + 250
    e.kill("test")
    e.source.batches.append(FetchBatch(tape=[yes_book(NOW + 300, 12), sold_yes(NOW + 400, 700)]))
    e.source.now = NOW + 60_000
    e.tick()
    e.store.close()
    got = rows(tmp_path / "k.db", "SELECT model, ts, state FROM shadow_events WHERE state LIKE 'cancel%' ORDER BY id")
    assert got == [
        ("prob", NOW + 250, "cancel_requested"),
        ("front", NOW + 250, "cancel_requested"),
        ("prob", NOW + 350, "cancelled"),
        ("front", NOW + 350, "cancelled"),
    ]
    assert rows(tmp_path / "k.db", "SELECT count(*) FROM shadow_events WHERE contracts_hundredths IS NOT NULL") == [
        (0,)
    ]


def test_take_mode_keeps_no_shadows_and_its_band_is_three_equal_rows_saying_why(tmp_path, capfd):
    """A replay in take mode: the orders are takers (ioc), which fill the same under every queue
    model: no shadow row is stored, and the printed band has three equal rows and says why."""
    f = tmp_path / "r.jsonl"
    book = '"book": {"yes": [["0.40", 50]], "no": [["0.55", 50]]}'
    f.write_text(
        f'{{"type": "market", "ticker": "T", "close_ts": {NOW + 3_600_000}}}\n'
        f'{{"type": "snapshot", "ticker": "T", "ts": {NOW}, "yes_bid": "0.40", "yes_ask": "0.45", {book}}}\n'
        f'{{"type": "estimate", "ticker": "T", "ts": {NOW}, "p_hat": "0.60", "source": "x"}}\n'
        f'{{"type": "snapshot", "ticker": "T", "ts": {NOW + 5_000}, "yes_bid": "0.40", "yes_ask": "0.45", {book}}}\n'
    )
    r = in_process(capfd, "replay", "--input", str(f), "--db", str(tmp_path / "r.db"))
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    i = out.index("queue models (the band):")
    table = out[i + 2 : i + 5]
    assert [line.split()[0] for line in table] == ["front", "prob", "risk_averse"]
    assert len({tuple(line.split()[-8:]) for line in table}) == 1  # the same figures in each row
    assert any("Every order was a taker's (ioc)" in line for line in out[i:])
    assert rows(tmp_path / "r.db", "SELECT count(*) FROM shadow_events") == [(0,)]
    assert rows(tmp_path / "r.db", "SELECT count(*) FROM fills") == [(1,)]


def test_a_restart_between_the_order_and_its_activation_resumes_its_copies(tmp_path):
    """The copies are rebuilt from ``shadow_events`` as the order is from ``order_events`` (prob
    seeded again from the market's oldest live copy: the same seed here), so a run stopped after
    the order was placed stores the same shadow rows as one that never stopped."""
    run(tmp_path / "once.db")
    db = tmp_path / "twice.db"
    e = fake_engine(db, [FetchBatch(rows=[row(depth=10)])], cfg=CFG)
    e.tick()
    post(e, "T", Side.YES, 4000, 1000)
    e.store.close()
    tape = [yes_book(NOW + 200, 20), yes_book(NOW + 300, 12), sold_yes(NOW + 400, 700)]
    batches = [FetchBatch(tape=tape), FetchBatch(rows=[row(status="determined", result="yes")])]
    e = fake_engine(db, batches, cfg=CFG)
    assert {m: [o.id for o in fm.live()] for m, fm in e._shadows.markets["T"].items()} == {
        "prob": ["1"],
        "front": ["1"],
    }
    for now in (NOW + 60_000, NOW + 120_000):
        e.source.now = now
        e.tick()
    e.store.close()
    assert rows(db, SHADOW + " ORDER BY id") == rows(tmp_path / "once.db", SHADOW + " ORDER BY id")


def test_an_order_that_does_not_hold_is_shown_as_it_is_and_flagged():
    """Orders of one market share prints, so in sum prob may fill more than front: the rows keep
    the order front, prob, risk_averse, and the notes say the order does not hold."""
    row_of = {
        m: band.ModelRow(m, m == "risk_averse", 2, f, 1_000, h, 0, None)
        for m, f, h in (("front", 1, 300), ("prob", 2, 500), ("risk_averse", 1, 200))
    }
    b = band.Band(tuple(row_of[m] for m in band.SHOWN), 0, 2, 0, (), ())
    assert not b.holds
    assert [line.split()[0] for line in band.table_lines(b)[1:]] == ["front", "prob", "risk_averse"]
    flag = [n for n in band.notes(b) if "does not hold" in n]
    assert flag == [
        "**The order front >= prob >= risk_averse does not hold here** (contracts filled: front 3, prob 5, "
        "risk_averse 2); shown as it is, not re-sorted. It holds order by order; orders of one market share a "
        "print's size and the book's crossing size, which can break it in sum."
    ]


def test_a_post_mode_simulator_runs_band_has_front_at_least_prob_at_least_risk_averse(tmp_path):
    """The simulator in post mode (issue #23 item 2: every order rests; 4 markets, 1-minute steps,
    3 prints a market a step): the engine keeps each order's copies, and order by order, as in
    sum, the fills keep front >= prob >= risk_averse; front fills more than the run did."""
    from kakashi_tui.trading.config import KakashiConfig, SimSection, StrategySection
    from tests.conftest import make_engine

    sim = SimSection(markets=4, step_seconds=60, prints_per_step=3.0)
    db = tmp_path / "k.db"
    e = make_engine(db, cfg=KakashiConfig(sim=sim, strategy=StrategySection(mode="post")))
    for _ in range(60):
        e.tick()
    e.store.close()
    filled = {
        (o, m): h
        for o, m, h in rows(
            db,
            "SELECT o.id, o.queue_model, COALESCE(SUM(f.contracts_hundredths), 0) FROM orders o"
            " LEFT JOIN fills f ON f.order_id = o.id GROUP BY o.id UNION ALL SELECT order_id, model,"
            " COALESCE(SUM(contracts_hundredths), 0) FROM shadow_events GROUP BY order_id, model",
        )
    }
    orders = {o for o, _m in filled}
    assert len(orders) >= 10 and rows(db, "SELECT DISTINCT tif, queue_model FROM orders") == [("gtc", "risk_averse")]
    assert all(filled[(o, "risk_averse")] <= filled[(o, "prob")] <= filled[(o, "front")] for o in orders)
    con = connect_readonly(db)
    try:
        b = band.gather_band(con, data_end_ms=queries.last_tick_ts(con))
    finally:
        con.close()
    assert b is not None and b.holds and b.resting == len(orders) and b.takers == 0
    front, _prob, averse = b.rows
    assert front.filled_hundredths > averse.filled_hundredths > 0


def run_split(db, restart):
    """``run``'s tape over four ticks: the books (prob's draw: 2 stay ahead of its copy) by NOW +
    60,000, the print (NOW + 60,400) in the next tick, the settlement in the one after; with
    ``restart``, the engine is stopped and made again between the books and the print."""
    e = fake_engine(db, [FetchBatch(rows=[row(depth=10)])], cfg=CFG)
    e.tick()
    post(e, "T", Side.YES, 4000, 1000)
    e.source.batches.append(FetchBatch(tape=[yes_book(NOW + 200, 20), yes_book(NOW + 300, 12)]))
    e.source.now = NOW + 60_000
    e.tick()
    later = [FetchBatch(tape=[sold_yes(NOW + 60_400, 700)]), FetchBatch(rows=[row(status="determined", result="yes")])]
    if restart:
        e.store.close()
        e = fake_engine(db, later, cfg=CFG)
    else:
        e.source.batches += later
    for now in (NOW + 120_000, NOW + 180_000):
        e.source.now = now
        e.tick()
    e.store.close()


def test_a_restart_with_the_copies_in_the_queue_resumes_their_places_and_prob_s_draws(tmp_path):
    """Stopped after prob's copy moved to 2 ahead (and its generator drew once), the copies resume
    at their places as of the last tick (``shadow_fills``), so the print fills prob's 5 and
    front's 7 as if the run had never stopped: the same shadow rows."""
    run_split(tmp_path / "once.db", False)
    run_split(tmp_path / "twice.db", True)
    once, twice = (rows(tmp_path / f"{n}.db", SHADOW + " ORDER BY id") for n in ("once", "twice"))
    assert twice == once
    assert [(m, h) for m, _ts, s, _r, _t, h, _v, _f in once if h] == [("prob", 500), ("front", 700)]


def test_a_shadow_state_kakashi_cannot_have_written_is_a_corrupt_database(tmp_path):
    db = tmp_path / "k.db"
    e = fake_engine(db, [FetchBatch(rows=[row(depth=10)])], cfg=CFG)
    e.tick()
    post(e, "T", Side.YES, 4000, 1000)
    e.source.batches.append(FetchBatch(tape=[yes_book(NOW + 200, 20), yes_book(NOW + 300, 12)]))
    e.source.now = NOW + 60_000
    e.tick()
    e.store.close()
    assert [m for (m,) in rows(db, "SELECT model FROM shadow_fills ORDER BY model")] == ["front", "prob"]
    c = sqlite3.connect(db)
    c.execute("UPDATE shadow_fills SET state = '{\"places\": 7}' WHERE model = 'prob'")
    c.commit()
    c.close()
    with pytest.raises(StoreError, match=r"corrupt database: shadow_fills row T prob: not what Kakashi writes"):
        fake_engine(db, [], cfg=CFG)
