"""A recorded Kalshi run replays as it ran (issue #22, item 9): a loopback Kalshi run (REST and
the WebSocket, with a key) recorded into the catalog, with prices that move, a settlement and
belief edits mid-run, replays with the row engine and the columnar path to the same decisions
(tick and content), fills, ledger and cash."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from kakashi_tui.adapters.catalog import CatalogWriter
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer, make_test_key
from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS
from kakashi_tui.trading.commands import Kill, Rearm
from kakashi_tui.trading.config import (
    CatalogSection,
    KakashiConfig,
    KalshiSection,
    RiskSection,
    SimSection,
    StrategySection,
)
from kakashi_tui.trading.runtime import Options, build_service
from kakashi_tui.trading.service import TradingService
from tests.clirun import in_process
from tests.conftest import SIM_START_MS, make_engine
from tests.integration.test_columnar import cash_of, run, tick_rows
from tests.integration.test_replay import tables

FAST = {"usage_tier": "test", "read": {"refill_rate": 1_000_000, "bucket_capacity": 2_000_000}}
TICKS = 30


def write_beliefs(path, beliefs):
    path.write_text("[beliefs]\n" + "".join(f'"{t}" = {p}\n' for t, p in beliefs.items()))


def record_run(tmp_path, monkeypatch, cfg_risk):
    """Run TICKS ticks against loopback Kalshi, recording; (live db, catalog, cfg)."""
    key_path, pub = make_test_key(tmp_path)
    state = FakeKalshi.with_markets(6, public_key=pub, key_id="ws-key", account_limits=FAST)
    m = state.markets
    ws = FakeKalshiWS((m[0].ticker, m[1].ticker), interval=0.005)  # two books from the WebSocket
    ws.require_key = True
    ws.start()
    monkeypatch.setenv("KAKASHI_KALSHI_KEY_ID", "ws-key")
    monkeypatch.setenv("KAKASHI_KALSHI_KEY_FILE", key_path)
    beliefs = tmp_path / "beliefs.toml"
    # edges on both sides; at most two positions, so the others are refused until a slot frees
    write_beliefs(beliefs, {m[0].ticker: "0.97", m[2].ticker: "0.97", m[3].ticker: "0.02", m[1].ticker: "0.5"})
    db, root = tmp_path / "live.db", tmp_path / "catalog"
    try:
        with FakeKalshiServer(state) as rest:
            cfg = KakashiConfig(
                kalshi=KalshiSection(api_base=rest.base_url, ws_url=ws.url, backoff_base_s=0.02, timeout_s=2.0),
                catalog=CatalogSection(),
                risk=cfg_risk,
            )
            opts = Options(source="kalshi", db=str(db), beliefs=str(beliefs), record=True, catalog=str(root))
            service, close = build_service(opts, cfg, interval=0.01)
            try:
                engine = service._engine  # (the test drives ticks itself; front-ends never do)
                feed = engine.source.inner.feed
                for i in range(TICKS):
                    if i == 1:  # the WebSocket's books serve from the second tick on
                        deadline = __import__("time").monotonic() + 10
                        while not (feed.live and len(feed.books()) == 2):
                            assert __import__("time").monotonic() < deadline, "no WebSocket books"
                            __import__("time").sleep(0.01)
                    with state.lock:  # REST prices move every tick
                        for k, mk in enumerate(m[2:], 2):
                            step = mk.tick * ((i + k) % 3 - 1)
                            if mk.bid is not None and mk.ask is not None and mk.bid + step > mk.tick:
                                mk.touch(bid=mk.bid + step, ask=mk.ask + step)
                    if i == 10:  # a held market settles
                        held = sorted(engine.account.tickers_held())
                        assert held, "nothing was bought"
                        with state.lock:
                            state.market(held[0]).touch(status="determined", result="yes")
                    if i == 15:  # the operator edits beliefs mid-run
                        write_beliefs(beliefs, {m[3].ticker: "0.02", m[4].ticker: "0.97", m[5].ticker: "0.03"})
                    assert service.step() is not None
            finally:
                service.stop()
                close()
    finally:
        ws.stop()
    return db, root, cfg


def replayed(db, root, cfg, columnar):
    """The replay's stats (test_columnar's ``run``, which the other replay tests use too)."""
    return run(db, root, cfg, columnar=columnar)[2]


def test_a_recorded_kalshi_run_replays_with_the_same_decisions_at_the_same_ticks(tmp_path, monkeypatch):
    db, root, cfg = record_run(tmp_path, monkeypatch, RiskSection(max_open_positions=2))
    live = tables(db)
    assert live["fills"], "the live run made no fill"
    assert any(r[1] == "settle" for r in live["ledger"]), "the settlement was not booked"
    assert any(not d[7] for d in live["decisions"]), "no refusal to compare"
    assert live["decisions"][0][1] == 1, "the first decisions are the first tick's"
    rows_stats = replayed(tmp_path / "rows.db", root, cfg, columnar=False)
    col_stats = replayed(tmp_path / "col.db", root, cfg, columnar=True)
    rows, col = tables(tmp_path / "rows.db"), tables(tmp_path / "col.db")
    assert rows_stats.ticks == col_stats.ticks == TICKS
    assert rows["decisions"] == live["decisions"]  # tick and content
    assert col["decisions"] == live["decisions"]
    assert rows["fills"] == col["fills"] == live["fills"]
    # the ledger but the deposit (its time is the replay's first tick, not the live run's start)
    assert rows["ledger"][1:] == col["ledger"][1:] == live["ledger"][1:]
    assert cash_of(tmp_path / "rows.db") == cash_of(tmp_path / "col.db") == cash_of(db)
    skip = lambda ts: [{k: v for k, v in t.items() if k not in ("errors",)} for t in ts]
    assert skip(tick_rows(tmp_path / "col.db")) == skip(tick_rows(db))
    assert Decimal(cash_of(db)) > 0


# -- resting orders (issue #23 item 10): a recorded simulator run in post and both modes ---------
POST_TICKS = 30


def record_posts(folder, mode, monkeypatch):
    """POST_TICKS simulator ticks (5 markets, 3 prints a market a step) in ``mode``, recorded,
    the series charging makers (``quadratic_with_maker_fees``, as the done-means run in
    test_post_orders.py: a maker's fill pays a fee the replay must match). The operator throws
    the kill switch at the top of tick 10 and re-arms at tick 13. (live db, catalog, cfg)"""
    cfg = KakashiConfig(
        sim=SimSection(markets=5, step_seconds=60, prints_per_step=3.0), strategy=StrategySection(mode=mode)
    )
    root, db = folder / "catalog", folder / "live.db"
    writer = CatalogWriter(root, roll_s=float("inf"), max_rows=400)  # several segments
    engine = make_engine(db, cfg=cfg, catalog=writer)
    made = engine.source.inner._market_row
    makers = lambda *a, **kw: made(*a, **kw) | {"fee_type": "quadratic_with_maker_fees"}  # noqa: E731
    monkeypatch.setattr(engine.source.inner, "_market_row", makers)
    service = TradingService(engine, interval=0, log=lambda _line: None)
    for n in range(1, POST_TICKS + 1):
        if n == 10:
            assert engine.orders, "no live order for the kill to cancel"
            service.submit(Kill("test"))
        if n == 13:
            service.submit(Rearm())
        assert service.step() is not None
    writer.close()
    engine.store.close()
    return db, root, cfg


def order_rows(db, sql):
    c = sqlite3.connect(db)
    try:
        return c.execute(sql).fetchall()
    finally:
        c.close()


@pytest.mark.parametrize("mode", ["post", "both"])
def test_a_recorded_run_with_resting_orders_and_a_kill_replays_to_the_same_orders(tmp_path, mode, capfd, monkeypatch):
    """The done-means run of issue #23 item 10, replayed: row by row and columnar, the same orders
    (ids, prices, every event and its state), fills (role, trigger, price, size, fee), ledger (to
    the chain hash: every entry and its time) and cash. The run must hold resting orders filled
    from the takers' prints and orders the kill cancelled, or the test proves nothing."""
    db, root, cfg = record_posts(tmp_path, mode, monkeypatch)
    live = tables(db)
    from_prints = order_rows(
        db,
        "SELECT count(*) FROM fills f JOIN orders o ON o.id = f.order_id WHERE o.mode = 'post'"
        " AND f.role = 'maker' AND f.trigger IN ('through', 'at_price_queue') AND f.fee_cc > 0",
    )[0][0]
    killed = order_rows(
        db,
        "SELECT count(*) FROM order_events c JOIN order_events e ON e.order_id = c.order_id"
        " AND e.state = 'cancelled' WHERE c.state = 'cancel_requested' AND c.reason = 'kill switch: test'",
    )[0][0]
    assert from_prints > 0 and killed > 0, (from_prints, killed)
    if mode == "both":  # takes where the taker's EV cleared, posts elsewhere
        assert {f[10] for f in live["fills"]} == {"maker", "taker"}
    assert any(not d[7] and d[8].startswith("kill switch") for d in live["decisions"])

    run(tmp_path / "rows.db", root, cfg, columnar=False, start_ms=SIM_START_MS)
    run(tmp_path / "col.db", root, cfg, columnar=True, start_ms=SIM_START_MS)
    whole = (  # (every column: mode, post-only, expiry, decision ids, ... and each entry's chain hash)
        "SELECT * FROM orders ORDER BY id",
        "SELECT * FROM fills ORDER BY id",
        "SELECT chain FROM ledger ORDER BY id",
    )
    for replayed in (tmp_path / "rows.db", tmp_path / "col.db"):
        assert tables(replayed) == live  # orders, their events, fills, decisions, ledger
        assert [order_rows(replayed, q) for q in whole] == [order_rows(db, q) for q in whole]
        assert cash_of(replayed) == cash_of(db)
    if mode == "post":  # the command line's replay reads [strategy] mode too (its pre-filter)
        conf = tmp_path / "kakashi.toml"
        conf.write_text('[strategy]\nmode = "post"\n')
        p = in_process(capfd, "replay", "--catalog", str(root), "--db", str(tmp_path / "cli.db"), "--config", str(conf))
        assert p.returncode == 0, p.stderr
        cli = tables(tmp_path / "cli.db")
        assert cli["ledger"][1:] == live["ledger"][1:]  # (the deposit is dated by the replay's start)
        assert {k: v for k, v in cli.items() if k != "ledger"} == {k: v for k, v in live.items() if k != "ledger"}
