"""A recorded Kalshi run replays as it ran (issue #22, item 9): a loopback Kalshi run (REST and
the WebSocket, with a key) recorded into the catalog, with prices that move, a settlement and
belief edits mid-run, replays with the row engine and the columnar path to the same decisions
(tick and content), fills, ledger and cash."""

from __future__ import annotations

from decimal import Decimal

from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer, make_test_key
from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS
from kakashi_tui.trading.config import CatalogSection, KakashiConfig, KalshiSection, RiskSection
from kakashi_tui.trading.runtime import Options, build_service
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
