"""A recorded Kalshi run replays as it ran (issue #22, item 9): a loopback Kalshi run (REST and
the WebSocket, with a key) recorded into the catalog, with prices that move, a settlement and
belief edits mid-run, replays with the row engine and the columnar path to the same decisions
(tick and content), fills, ledger and cash."""

from __future__ import annotations

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
from tests.conftest import query as order_rows
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
    # the ledger, the deposit too: the replay's clock starts at the run's recorded start (``runs``)
    assert rows["ledger"] == col["ledger"] == live["ledger"]
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

    run(tmp_path / "rows.db", root, cfg, columnar=False)  # (the clock starts at the recorded run's start)
    run(tmp_path / "col.db", root, cfg, columnar=True)
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
        assert "note:" not in p.stderr, p.stderr  # the settings it ran with: no difference to say
        # the deposit too: the clock starts at the run's recorded start (catalog ``runs``), so
        # every entry's time and chain hash are the run's
        assert tables(tmp_path / "cli.db") == live
        assert [order_rows(tmp_path / "cli.db", q) for q in whole] == [order_rows(db, q) for q in whole]
        assert cash_of(tmp_path / "cli.db") == cash_of(db)


# -- a run's start and settings (the catalog's ``runs``, version 8) ------------------------------
SMALL = KakashiConfig(
    sim=SimSection(markets=3, bracket_events=0, prints_per_step=3.0),
    strategy=StrategySection(mode="post", edge_threshold=Decimal("0.05"), kelly_fraction=Decimal("0.5")),
)
STEP_MS = 60_000


def record_small(folder):
    """Four simulator ticks in post mode at a 5% threshold with half Kelly, recorded, the run
    starting two steps before UTC midnight: its first tick is on 2026-01-04, the rest on 01-05."""
    from kakashi_tui.adapters.catalog import Recorder
    from kakashi_tui.trading.runtime import build_engine

    root, db = folder / "catalog", folder / "live.db"
    writer = CatalogWriter(root, roll_s=float("inf"))
    opts = Options(source="sim", db=str(db), seed=7, sim_start_ms=SIM_START_MS - 2 * STEP_MS)
    engine = build_engine(opts, SMALL, recording=lambda: Recorder(writer))
    service = TradingService(engine, interval=0, log=lambda _line: None)
    for _ in range(4):
        assert service.step() is not None
    writer.close()
    engine.store.close()
    return db, root


def notes(p):
    return [line for line in p.stderr.splitlines() if line.startswith("kakashi: note:")]


def test_a_replay_starts_at_the_recorded_start_and_says_which_settings_differ(tmp_path, capfd):
    """A replay's clock starts at the recorded run's start (its deposit and every chain hash the
    run's); a replay under other settings says so, a line per setting, and still runs (a what-if);
    ``--recorded-settings`` trades with the run's; ``--since`` past the start says where it began;
    a version 7 catalog (no ``runs``) replays as before: from its first row, nothing said."""
    db, root = record_small(tmp_path)
    live = tables(db)
    assert live["decisions"] and live["ledger"][0][0] == SIM_START_MS - 2 * STEP_MS
    replay = lambda name, *more: in_process(  # noqa: E731
        capfd, "replay", "--catalog", str(root), "--db", str(tmp_path / name), *more
    )

    p = replay("defaults.db")  # the default config: take, 3%, no Kelly
    assert p.returncode == 0, p.stderr
    assert notes(p) == [
        "kakashi: note: the recording traded with [strategy] edge_threshold = 0.05; this replay uses 0.03",
        "kakashi: note: the recording traded with [strategy] kelly_fraction = 0.5; this replay leaves it unset",
        'kakashi: note: the recording traded with [strategy] mode = "post"; this replay uses "take"',
    ]
    assert tables(tmp_path / "defaults.db")["ledger"][0] == live["ledger"][0]  # (the deposit, at the run's start)

    p = replay("adopted.db", "--recorded-settings")
    assert p.returncode == 0 and notes(p) == [], p.stderr
    assert tables(tmp_path / "adopted.db") == live
    chain = "SELECT chain FROM ledger ORDER BY id"
    assert order_rows(tmp_path / "adopted.db", chain) == order_rows(db, chain)

    p = replay("since.db", "--recorded-settings", "--since", "2026-01-05")
    assert p.returncode == 0, p.stderr
    assert notes(p) == [
        "kakashi: note: the recorded run started at 2026-01-04 23:58:00 UTC, before --since: this replay starts"
        " at its first row, 2026-01-05 00:00:00 UTC (its deposit is dated there, so its ledger's chain hashes"
        " are not the run's)"
    ]
    assert tables(tmp_path / "since.db")["ledger"][0][0] == SIM_START_MS

    import shutil

    import pyarrow.parquet as pq

    from kakashi_tui.adapters import catalog as cat

    v7 = tmp_path / "v7"
    shutil.copytree(root, v7)
    shutil.rmtree(v7 / "runs")
    for f in sorted(v7.rglob("*.parquet")):  # as version 7 wrote them
        t = pq.read_table(f)
        pq.write_table(t.replace_schema_metadata({**t.schema.metadata, cat.VERSION_KEY.encode(): b"7"}), f)
    conf = tmp_path / "k.toml"
    conf.write_text('[strategy]\nmode = "post"\nedge_threshold = 0.05\nkelly_fraction = 0.5\n')
    p = in_process(capfd, "replay", "--catalog", str(v7), "--db", str(tmp_path / "v7.db"), "--config", str(conf))
    assert p.returncode == 0 and notes(p) == [], p.stderr
    old = tables(tmp_path / "v7.db")
    assert old["ledger"][0][0] == SIM_START_MS - STEP_MS  # its first row, as before version 8
    assert old["ledger"][1:] == live["ledger"][1:] and old["decisions"] == live["decisions"]
    p = in_process(capfd, "replay", "--catalog", str(v7), "--db", str(tmp_path / "v7b.db"), "--recorded-settings")
    assert p.returncode == 2
    assert p.stderr.strip() == (
        "kakashi: error: --recorded-settings: the catalog records no run's settings"
        " (a recording made before catalog version 8)"
    )


def test_a_run_start_the_writer_cannot_keep_is_refused_alone(tmp_path):
    from kakashi_tui.adapters import catalog as cat

    w = CatalogWriter(tmp_path / "c", roll_s=float("inf"))
    assert w.add_run(SIM_START_MS, {"strategy.mode": '"post"'}, "sim") is None
    assert w.add_run(12, {}, "sim").startswith("run start: ts ")
    assert w.add_run(SIM_START_MS, {"strategy.mode": "x" * 2_001}, "sim").startswith("run start: setting ")
    assert w.add_run(SIM_START_MS, {"": "1"}, "sim").startswith("run start: setting ")
    assert w.add_run(SIM_START_MS, {}, "sim\n") is not None  # (a source that is no id)
    w.close()
    kept = cat.read_table(tmp_path / "c", "runs").to_pylist()
    assert kept == [{"ts": SIM_START_MS, "settings": [{"key": "strategy.mode", "value": '"post"'}], "source": "sim"}]
