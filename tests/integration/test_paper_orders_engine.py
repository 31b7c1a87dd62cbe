"""Paper orders in the engine (issue #23, take mode): an accepted decision is an order that
becomes active ``insert_latency_ms`` later and fills against the book in force then; the orders
are stored and resumed; pending orders count in the caps; the kill switch cancels them after
``cancel_latency_ms``. Scripted feeds (test_engine's) where a test needs a book to move."""

from __future__ import annotations

import sqlite3
from decimal import Decimal as D

from kakashi_tui.adapters.source import FetchBatch, TapeBook
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.adapters.tape import book_quote
from kakashi_tui.core.errors import ConfigError
from kakashi_tui.frontends.journal import entry_lines
from kakashi_tui.trading.config import FillsSection, KakashiConfig, SimSection, load_config
from kakashi_tui.trading.engine import EngineConfig
from tests.conftest import make_engine
from tests.conftest import query as q
from tests.integration.test_engine import NOW, fake_engine, row

LATE = EngineConfig(insert_latency_ms=500, cancel_latency_ms=500)


def book_at(ts, ask="0.45", depth=50, ticker="T"):
    """The YES asks of ``row``'s book, as a tape book update received at ``ts``."""
    a = int(D(ask) * 10_000)
    return TapeBook(ts, ticker, book_quote(ticker, ts, [(4000, 5000)], [(10_000 - a, depth * 100)]), snapshot=False)


# -- latency ---------------------------------------------------------------------------------------
def test_no_latency_gives_the_fills_and_the_ledger_of_the_instant_fills_before_it():
    """[fills] insert_latency_ms = 0: the broker's instant fills exactly. The figures are what the
    instant-fill code gave for this seeded run (25bb04e, the last main before paper orders, with
    slots by value merged: a tick's candidates ranked, and with issue #24's martingale walk of
    the hidden probability, which moved every seed's prices: sim.step_log_odds): 11 fills, their
    values and fees, the cash, and the ledger's last link (its whole content and order, hashed)."""
    cfg = KakashiConfig(sim=SimSection(markets=12, step_seconds=600), fills=FillsSection(insert_latency_ms=0))
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        e = make_engine(f"{d}/k.db", cfg=cfg)
        for _ in range(120):
            e.tick()
        e.store.close()
        fills = q(f"{d}/k.db", "SELECT value_cc, fee_cc, role, trigger FROM fills")
        chain = q(f"{d}/k.db", "SELECT chain FROM ledger ORDER BY id DESC LIMIT 1")[0][0]
    assert (len(fills), sum(f[0] for f in fills), sum(f[1] for f in fills)) == (11, 1_073_947, 36_028)
    assert e.account.cash_cc == 10_340_125
    assert chain == "09289887e68c84eaf75774bb54dc3411f6a41f4a17d3857e41f617f1be2be4a2"
    assert {(r, t) for _v, _f, r, t in fills} == {("taker", "taker")}


def test_an_order_fills_at_activation_against_the_book_then_not_the_one_decided_on(db_path):
    """Decided at NOW on 50 at 0.45; active at NOW + 500, when a delta had left 3 there: it takes
    the 3 and the rest is cancelled. Nothing fills in the deciding tick (before activation)."""
    tape = [book_at(NOW + 200, depth=3), book_at(NOW + 800, depth=50)]  # the second: after activation
    e = fake_engine(db_path, [FetchBatch(rows=[row()]), FetchBatch(rows=[], tape=tape)], p={"T": 0.60}, cfg=LATE)
    r1 = e.tick()
    assert r1.decisions[0].accepted and r1.fills == 0 and e.held_tickers() == {"T"}
    e.source.now = NOW + 60_000
    r2 = e.tick()
    assert r2.fills == 1 and [(f.ts, f.hundredths, f.price_cc) for f in r2.order_fills] == [(NOW + 500, 300, 4500)]
    assert r2.order_fills[0].text() == "order 1 decided @<=0.4500 (ask 0.4500), filled @0.4500 taker, 500 ms latency"
    assert q(db_path, "SELECT ts, state, reason FROM order_events ORDER BY id") == [
        (NOW, "submitted", ""),
        (NOW + 500, "active", ""),
        (NOW + 500, "partially_filled", ""),
        (NOW + 500, "cancelled", "ioc: rest cancelled"),
    ]
    assert q(db_path, "SELECT ts, insert_latency_ms, tif, mode, decision_id FROM orders") == [
        (NOW, 500, "ioc", "take", 1)
    ]
    assert q(db_path, "SELECT ts, order_id, role, trigger, contracts_hundredths FROM fills") == [
        (NOW + 500, 1, "taker", "taker", 300)
    ]
    # the log's fill line says the price decided on beside the price filled at
    line = dict(entry_lines(r2.entries, {f.fill: f.text() for f in r2.order_fills}))["FILL"]
    assert "@0.4500" in line and "decided @<=0.4500 (ask 0.4500)" in line


def test_by_polling_the_order_fills_on_the_first_book_fetched_at_or_after_activation(db_path):
    """A polled book is known only at its fetch: decided at NOW on an ask of 0.45, active at
    NOW + 500, filled against the next fetch's book (NOW + 5,000: ask 0.44), at that time."""
    batches = [
        FetchBatch(rows=[row()], polled={"T"}),
        FetchBatch(rows=[row(ts=NOW + 5_000, bid="0.39", ask="0.44")], polled={"T"}),
    ]
    e = fake_engine(db_path, batches, p={"T": 0.60}, cfg=LATE)
    assert e.tick().fills == 0
    e.source.now = NOW + 5_000
    r2 = e.tick()
    assert [(f.ts, f.price_cc) for f in r2.order_fills] == [(NOW + 5_000, 4400)]


def test_the_kill_switch_cancels_live_orders_after_the_cancel_latency(tmp_path):
    """A kill asked 0 ms after the decision: with a 200 ms cancel the order is gone before it is
    active (500 ms); with a 1,000 ms cancel it still fills at 500 (fills happen until then)."""
    got = {}
    for cancel in (200, 1_000):
        db = tmp_path / f"c{cancel}.db"
        tape = [book_at(NOW + 200)]
        cfg = EngineConfig(insert_latency_ms=500, cancel_latency_ms=cancel)
        e = fake_engine(db, [FetchBatch(rows=[row()]), FetchBatch(tape=tape)], p={"T": 0.60}, cfg=cfg)
        e.tick()
        e.kill("test")
        e.source.now = NOW + 60_000
        got[cancel] = e.tick().fills
        states = [s for (s,) in q(db, "SELECT state FROM order_events ORDER BY id")]
        reasons = q(db, "SELECT reason FROM order_events WHERE state = 'cancel_requested'")
        assert reasons == [("kill switch: test",)] and e.orders == {}
        got[cancel] = (got[cancel], states[-1])
    assert got == {200: (0, "cancelled"), 1_000: (1, "filled")}


def test_a_flatten_cancels_live_orders_and_a_closed_market_cancels_its_own_at_once(tmp_path):
    cfg = EngineConfig(insert_latency_ms=500, cancel_latency_ms=100)
    e = fake_engine(tmp_path / "f.db", [FetchBatch(rows=[row()]), FetchBatch()], p={"T": 0.60}, cfg=cfg)
    e.tick()
    e.flatten("test")  # (nothing held yet: only the order, cancelled 100 ms later, before it is active)
    e.source.now = NOW + 60_000
    assert e.tick().fills == 0 and e.orders == {}
    assert q(tmp_path / "f.db", "SELECT ts, state, reason FROM order_events ORDER BY id")[1:] == [
        (NOW, "cancel_requested", "flatten (test)"),
        (NOW + 100, "cancelled", "cancel requested"),  # (never active: it never reached the exchange)
    ]
    e = fake_engine(
        tmp_path / "c.db", [FetchBatch(rows=[row()]), FetchBatch(rows=[row(status="closed")])], p={"T": 0.60}, cfg=cfg
    )
    e.tick()
    e.source.now = NOW + 100  # before the order would be active
    assert e.tick().fills == 0 and e.orders == {}
    assert q(tmp_path / "c.db", "SELECT ts, state, reason FROM order_events ORDER BY id")[-1] == (
        NOW + 100,
        "cancelled",
        "market closed",
    )


def test_a_kill_stored_while_no_engine_ran_cancels_the_orders_it_resumes(db_path):
    """``kakashi kill`` with no engine running stores the switch itself: the engine that resumes
    the orders cancels them at its first tick (effective after the cancel latency)."""
    cfg = EngineConfig(insert_latency_ms=500, cancel_latency_ms=100)
    e = fake_engine(db_path, [FetchBatch(rows=[row()])], p={"T": 0.60}, cfg=cfg)
    e.tick()
    e.store.set_kill_switch(True, "offline", NOW)  # (as requests.py applies it, no engine running)
    e.store.close()
    again = fake_engine(db_path, [FetchBatch(), FetchBatch()], p={"T": 0.60}, cfg=cfg)
    assert list(again.orders) == ["1"]
    again.source.now = NOW + 50  # the engine comes back before the order would be active (500)
    again.tick()
    again.source.now = NOW + 60_000
    assert again.tick().fills == 0 and again.orders == {}
    assert q(db_path, "SELECT ts, state, reason FROM order_events ORDER BY id")[-2:] == [
        (NOW + 50, "cancel_requested", "kill switch: offline"),
        (NOW + 150, "cancelled", "cancel requested"),
    ]


# -- risk ------------------------------------------------------------------------------------------
def test_a_pending_order_reserves_its_worst_case_in_the_daily_cap_as_if_it_had_filled(db_path):
    """Two markets with an edge; the daily cap (1.5% of $1,000) has room for one per-trade worst
    case ($10) but not two. A's order is pending (500 ms): B is refused on the reservation."""
    from kakashi_tui.core.risk import RiskLimits

    cfg = EngineConfig(insert_latency_ms=500, limits=RiskLimits(daily_loss_cap_pct=D("1.5")))
    rows = [row("A", depth=5_000), row("B", depth=5_000)]
    e = fake_engine(db_path, [FetchBatch(rows=rows)], p={"A": 0.60, "B": 0.60}, cfg=cfg)
    a, b = e.tick().decisions
    assert a.accepted and not b.accepted
    assert b.reason.startswith("worst-case loss would breach the daily loss cap ($0.00 lost + $")
    assert "reserved by live orders" in b.reason


# -- the store: restart, migration -----------------------------------------------------------------
def test_a_restart_resumes_live_orders_exactly(tmp_path):
    """Stopped (as a kill -9 stops it: after a committed tick) with an order not yet active, the
    run resumes it from the store: the same orders, events, fills and ledger as a run that never
    stopped."""

    def tables(db):
        return {
            t: q(db, f"SELECT * FROM {t} ORDER BY id") for t in ("orders", "order_events", "fills", "decisions")
        } | {"ledger": q(db, "SELECT ts, kind, ticker, amount_cc, key, chain FROM ledger ORDER BY id")}

    whole = make_engine(tmp_path / "whole.db")
    for _ in range(12):
        whole.tick()
    whole.store.close()
    cut = make_engine(tmp_path / "cut.db")
    n = 0
    while not cut.orders:  # until an order is live at the end of a tick
        cut.tick()
        n += 1
    assert n < 12
    cut.store.close()  # (nothing but committed ticks is left of it, as after a kill -9)
    resumed = make_engine(tmp_path / "cut.db")
    assert list(resumed.orders) == list(cut.orders) and resumed.held_tickers() >= {
        o.ticker for o in cut.orders.values()
    }
    for _ in range(12 - n):
        resumed.tick()
    resumed.store.close()
    assert tables(tmp_path / "cut.db") == tables(tmp_path / "whole.db")
    assert q(tmp_path / "whole.db", "SELECT COUNT(*) FROM fills WHERE order_id IS NOT NULL")[0][0] > 0


def test_a_version_7_file_lets_one_decision_fill_many_times(tmp_path):
    """Schema step 8: fills.decision_id was unique (one decision, one fill); an order can fill
    many times now, and each fill names its order, role and trigger."""
    db = tmp_path / "k.db"
    Store(db).close()
    c = sqlite3.connect(db)
    c.executescript(
        "DROP TABLE orders; DROP TABLE order_events; DROP INDEX fills_decision_id; DROP INDEX fills_order_id;"
        " ALTER TABLE fills DROP COLUMN order_id; ALTER TABLE fills DROP COLUMN role;"
        " ALTER TABLE fills DROP COLUMN trigger; CREATE UNIQUE INDEX fills_decision_id ON fills (decision_id);"
        " UPDATE control SET value = '7' WHERE key = 'schema_version';"
    )
    c.close()
    s = Store(db)
    fill = "INSERT INTO fills (decision_id, ts, ticker, side, action, requested_hundredths, contracts_hundredths,"
    fill += " value_cc, fee_cc, levels, order_id, role, trigger)"
    fill += " VALUES (1, 1, 'T', 'yes', 'buy', 200, 100, 4500, 0, '[]', 1, 'maker', 'through')"
    s.db.execute_sql(fill)
    s.db.execute_sql(fill)
    assert s.get_control("schema_version") == "12"
    s.close()
    assert q(db, "SELECT COUNT(*) FROM fills WHERE decision_id = 1") == [(2,)]


def test_fills_config_refuses_what_is_not_a_latency(tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text('[fills]\ninsert_latency_ms = "fast"\n')
    try:
        load_config(str(cfg))
    except ConfigError as e:
        assert "[fills] insert_latency_ms" in str(e) and "\n" not in str(e)
    else:
        raise AssertionError("accepted")
    cfg.write_text('[fills]\ninsert_latency_ms = 0\ncancel_latency_ms = "auto"\nqueue_model = "prob"\n')
    c = load_config(str(cfg)).engine_config()
    assert (c.insert_latency_ms, c.cancel_latency_ms, c.queue_model) == (0, None, "prob")
