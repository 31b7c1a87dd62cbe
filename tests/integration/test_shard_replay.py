"""A halted exchange shard replays as it ran (issue #22, risk_limits.md 3a): a loopback Kalshi run
(3.34 shapes, no key) whose shard 1 halts mid-run and trades again later is recorded into the
catalog; its replay (row engine and columnar) refuses the same markets at the same ticks with the
same reason, and makes the same decisions, fills, ledger and cash."""

from __future__ import annotations

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.kalshi.source import KalshiSource
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
from kakashi_tui.trading.config import CatalogSection, KakashiConfig, KalshiSection, RiskSection
from kakashi_tui.trading.runtime import Options, build_service
from tests.integration.test_columnar import cash_of
from tests.integration.test_recorded_parity import replayed, write_beliefs
from tests.integration.test_replay import tables

TICKS = 10
HALT, RESUME, BELIEVE = 2, 7, 4  # shard 1 halts at tick 2; a belief on its market at 4; it trades at 7


def record_halted_run(tmp_path):
    state = FakeKalshi.with_markets(4, require_signature=False)  # books unsigned, as the live exchange serves them
    m = state.markets
    m[0].exchange_index = m[1].exchange_index = 1  # shard 1; the others shard 0
    beliefs = tmp_path / "beliefs.toml"
    write_beliefs(beliefs, {m[0].ticker: "0.97", m[2].ticker: "0.97"})  # both bought at tick 1
    db, root = tmp_path / "live.db", tmp_path / "catalog"
    with FakeKalshiServer(state) as rest:
        cfg = KakashiConfig(
            kalshi=KalshiSection(api_base=rest.base_url, reads_per_s=1000, backoff_base_s=0.02, timeout_s=2.0),
            catalog=CatalogSection(),
            risk=RiskSection(),
        )
        opts = Options(source="kalshi", db=str(db), beliefs=str(beliefs), record=True, catalog=str(root))
        service, close = build_service(opts, cfg, interval=0.01)
        try:
            engine = service._engine  # (the test drives ticks itself; front-ends never do)
            source = engine.source.inner
            assert isinstance(source, KalshiSource)
            source.exchange_status_every_s = 0  # read every tick (60 s in a run)
            for i in range(TICKS):
                with state.lock:
                    if i == HALT:
                        state.halted_shards = {1}
                    if i == RESUME:
                        state.halted_shards = set()
                if i == BELIEVE:  # a new edge on the halted shard's other market
                    write_beliefs(beliefs, {m[0].ticker: "0.97", m[2].ticker: "0.97", m[1].ticker: "0.97"})
                assert service.step() is not None
        finally:
            service.stop()
            close()
    return db, root, cfg, m[1].ticker


def test_a_shard_halted_mid_run_replays_with_the_same_refusals(tmp_path):
    db, root, cfg, halted_ticker = record_halted_run(tmp_path)
    live = tables(db)
    refused = [d for d in live["decisions"] if d[8] == "exchange shard 1 halted"]
    assert refused and {d[2] for d in refused} == {halted_ticker}, live["decisions"]
    ticks = sorted({d[1] for d in refused})
    assert ticks[0] > HALT and ticks[-1] <= RESUME, ticks  # (tick n is the loop's step n - 1)
    assert any(d[2] == halted_ticker and d[7] for d in live["decisions"]), "not bought once its shard trades"
    # the catalog holds each change of the halted set once: none, shard 1, none again
    shards = cat.read_table(root, "exchange_shards").to_pylist()
    assert [r["halted"] for r in shards] == [[], [1], []]
    assert (
        cat.read_table(root, "exchange_shards").schema.metadata[cat.VERSION_KEY.encode()]
        == str(cat.CATALOG_VERSION).encode()
    )
    for columnar in (False, True):
        out = tmp_path / f"replay-{columnar}.db"
        replayed(out, root, cfg, columnar=columnar)
        again = tables(out)
        assert again["decisions"] == live["decisions"], columnar  # the refusals included: tick and reason
        assert again["fills"] == live["fills"]
        assert again["ledger"][1:] == live["ledger"][1:]  # (the deposit is dated by the replay's start)
        assert cash_of(out) == cash_of(db)


def test_catalog_info_has_a_column_for_candles_and_shard_changes(tmp_path, capsys):
    from kakashi_tui.frontends.cli.catalog import _info
    from tests.conftest import SIM_START_MS

    w = cat.CatalogWriter(tmp_path / "c")
    for i in range(3):
        assert w.add_candle(SIM_START_MS + i * 3_600_000, "KXA-1", 60, "backfill", close_cc=4200) is None
    assert w.add_shards(SIM_START_MS, {1}, "kalshi") is None
    assert w.add_shards(SIM_START_MS + 1, [], "kalshi") is None
    assert w.add_shards(SIM_START_MS + 2, [-1], "kalshi") == "exchange shards: not a shard number: -1"
    w.close()
    assert _info(tmp_path / "c") == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[1].split()
    day, total = lines[2].split(), lines[3].split()
    assert header[8:10] == ["candles", "shards"], header  # ("book rows" is two words)
    assert day[7:9] == ["3", "2"], day  # date, snapshots, markets, changes, estimates, trades, book rows, ...
    assert total[6:8] == ["3", "2"], total  # (the total has no market count)
