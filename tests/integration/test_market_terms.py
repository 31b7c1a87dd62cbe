"""Kalshi 3.34's market terms (#22 item 3): settlement floors refused, quotes and limits on each
market's price grid (``price_ranges``), halted exchange shards, all through the real engine
on a real SQLite file."""

from decimal import Decimal as D

import pytest

from kakashi_tui.adapters.source import FetchBatch
from kakashi_tui.adapters.store.schema import DecisionRow, FillRow, MarketRow, RejectedRow
from kakashi_tui.core import risk
from kakashi_tui.core.grid import GridError, grid_of, grid_text, parse_ranges
from kakashi_tui.core.models import Market
from kakashi_tui.core.validate import OFF_GRID
from tests.integration.test_engine import fake_engine, row

LINEAR = [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]
TAPERED = [
    {"start": "0.0000", "end": "0.1000", "step": "0.0010"},
    {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
    {"start": "0.9000", "end": "1.0000", "step": "0.0010"},
]
CENTI_EDGE = [  # center_deci_edge_centi_cent: $0.0001 under $0.01 and over $0.99
    {"start": "0.0000", "end": "0.0100", "step": "0.0001"},
    {"start": "0.0100", "end": "0.9900", "step": "0.0010"},
    {"start": "0.9900", "end": "1.0000", "step": "0.0001"},
]


def test_grids_of_every_structure():
    lin, tap, edge = (grid_of(grid_text(r)) for r in (LINEAR, TAPERED, CENTI_EDGE))
    assert lin.has(4200) and not lin.has(4230) and lin.has(0) and lin.has(10_000)
    assert tap.has(30) and tap.has(9930) and tap.has(4200) and not tap.has(4230) and not tap.has(35)
    assert edge.has(1) and edge.has(99) and edge.has(9999) and edge.has(4230) and not edge.has(4235)
    assert edge.has(150) and not edge.has(155)  # $0.0155: off the $0.001 centre
    # the trader's disfavour: a buyer's limit goes up, a seller's down
    assert lin.buy_limit(4201) == 4300 and lin.buy_limit(4200) == 4200 and lin.sell_limit(4299) == 4200
    assert tap.buy_limit(9901) == 9910 and edge.buy_limit(4231) == 4240


@pytest.mark.parametrize(
    "bad, why",
    [
        ([], "non-empty"),
        ([{"start": "0.0000", "end": "1.0000", "step": "0.00001"}], "finer than $0.0001"),
        ([{"start": "0.5", "end": "0.2", "step": "0.01"}], "within [0, 1]"),
        ([{"start": "0", "end": "1", "step": "0"}], "not positive"),
        ([{"start": "x", "end": "1", "step": "0.01"}], "not a dollar amount"),
    ],
)
def test_a_grid_kakashi_cannot_hold_is_refused_with_its_reason(bad, why):
    with pytest.raises(GridError, match=__import__("re").escape(why)):
        parse_ranges(bad)
    with pytest.raises(ValueError, match="price_ranges"):
        Market.model_validate({"ticker": "T", "status": "active", "price_ranges": bad})


def test_a_missing_bounds_type_is_a_default_market_and_a_missing_grid_none():
    m = Market.model_validate({"ticker": "T", "status": "active"})
    assert not m.floored and m.grid is None and m.shard == 0


def test_a_floor_market_is_recorded_and_refused_with_that_reason(tmp_path):
    floor = {"settlement_bounds_type": "floor", "settlement_floor": "0.123456"}
    e = fake_engine(tmp_path / "k.db", [FetchBatch(rows=[row("F", **floor), row("D")])], p={"F": 0.9, "D": 0.9})
    rep = e.tick()
    by = {d.ticker: d for d in rep.decisions}
    assert by["F"].accepted is False and by["F"].reason == risk.SETTLEMENT_FLOOR == "settlement floor: not modelled"
    assert by["D"].accepted and rep.fills == 1  # a default market trades as before
    assert {p.ticker for p in e.account.open_positions()} == {"D"}  # holds none of the floor market
    stored = MarketRow.get(MarketRow.ticker == "F")
    assert (stored.settlement_bounds_type, stored.settlement_floor) == ("floor", "0.123456")
    assert DecisionRow.get(DecisionRow.ticker == "F").reason == "settlement floor: not modelled"
    assert not FillRow.select().where(FillRow.ticker == "F").exists()


def test_a_quote_off_its_markets_grid_is_rejected_and_kept(tmp_path):
    # 0.425 is on Kakashi's $0.0001 grid but not on this linear-cent market's
    rows = [row("OFF", bid="0.40", ask="0.425", price_ranges=LINEAR), row("ON", price_ranges=LINEAR)]
    e = fake_engine(tmp_path / "k.db", [FetchBatch(rows=rows)], p={"OFF": 0.9, "ON": 0.9})
    rep = e.tick()
    assert rep.rejected == 1 and [d.ticker for d in rep.decisions] == ["ON"]
    rej = RejectedRow.get(RejectedRow.ticker == "OFF")
    assert rej.reason == f"{OFF_GRID}: yes_ask 0.4250" and '"ticker": "OFF"' in rej.payload
    assert MarketRow.get(MarketRow.ticker == "ON").price_ranges == '[["0.0000","1.0000","0.0100"]]'
    # a tapered market's tail quotes $0.001 steps
    tail = row("TAIL", bid="0.003", ask="0.004", price_ranges=TAPERED)
    e2 = fake_engine(tmp_path / "k2.db", [FetchBatch(rows=[tail])])
    assert e2.tick().rejected == 0


def test_a_limit_is_put_on_the_grid_in_the_traders_disfavour(tmp_path):
    """A quote held from before its market's grid changed (price_level_structure_updated): its
    levels are off the new grid, so the limit is raised to the next grid price, and the worst
    case with it (the risk gate sees the dearer bound)."""
    e = fake_engine(tmp_path / "k.db", [FetchBatch(rows=[row("G", bid="0.400", ask="0.415")])], p={"G": 0.9})
    e.tick()
    q = e.quotes["G"]
    m = e.markets["G"].model_copy(update={"price_ranges": grid_text(LINEAR)})
    e.markets["G"] = m
    d = e.decide(q, e.source.now, e.equity(), e.equity(), False, set())
    assert d is not None and d.limit_price == D("0.42")  # 0.415 -> 0.42, never 0.41
    from kakashi_tui.core import strategy

    plain = strategy.decide(q, e.estimates["G"], e.equity(), D(1), e.fee_terms("G"), e.cfg.strategy, e.source.now)
    assert plain is not None and plain.limit_price == D("0.415") and d.worst_case_cc > plain.worst_case_cc
    assert d.contracts == plain.contracts


# -- over the loopback Kalshi server (3.34 shapes) ------------------------------------------------


def _kalshi_engine(tmp_path, srv, believed, **source_kw):
    from kakashi_tui.adapters.kalshi.client import KalshiClient
    from kakashi_tui.adapters.kalshi.source import KalshiSource
    from kakashi_tui.adapters.store.writer import Store
    from kakashi_tui.trading.engine import Engine, EngineConfig
    from tests.integration.test_engine import FixedEstimator

    c = KalshiClient(base_url=srv.base_url, backoff_base=0.01, timeout=2.0, reads_per_s=500, max_retries=1)
    source = KalshiSource(c, depth_for=lambda: set(believed), **source_kw)
    # (a fill at the decision, as before paper orders had a latency: these tests are about the market terms)
    return Engine(
        Store(tmp_path / "k.db"), source, [FixedEstimator(believed)], EngineConfig(insert_latency_ms=0)
    ), source


@pytest.fixture
def kalshi():
    from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer

    st = FakeKalshi.with_markets(3, page_size=100, require_signature=False)
    with FakeKalshiServer(st) as srv:
        yield srv


def test_a_halted_shard_pauses_only_its_markets_and_says_so(tmp_path, kalshi):
    t0, t1, t2 = (m.ticker for m in kalshi.state.markets)
    kalshi.state.markets[1].exchange_index = 1
    kalshi.state.halted_shards = {1}
    e, source = _kalshi_engine(tmp_path, kalshi, {t0: 0.99, t1: 0.99})
    with source.client:
        rep = e.tick()
        by = {d.ticker: d for d in rep.decisions}
        assert by[t1].accepted is False and by[t1].reason == "exchange shard 1 halted"
        assert by[t0].accepted and rep.fills == 1  # shard 0 trades
        assert rep.halted_shards == (1,) and rep.log_line().endswith("| RUNNING | SHARD 1 HALTED")
        assert MarketRow.get(MarketRow.ticker == t1).exchange_index == 1
        # the shard trades again: read at the next status poll, and its market is decided
        kalshi.state.halted_shards = set()
        source.exchange_status_every_s = 0
        rep = e.tick()
        assert rep.halted_shards == () and "HALTED" not in rep.log_line()
        assert [(d.ticker, d.accepted) for d in rep.decisions] == [(t1, True)]
    events = [r[0] for r in e.store.db.execute_sql("SELECT detail FROM events WHERE kind = 'exchange_shards'")]
    assert events == ["SHARD 1 HALTED", "every exchange shard trading"]
    assert t2  # (no belief: never decided)


def test_status_polled_at_its_interval_and_a_server_without_it_is_a_note(tmp_path, kalshi):
    kalshi.state.exchange_status = False
    e, source = _kalshi_engine(tmp_path, kalshi, {})
    with source.client:
        first = e.tick()
        second = e.tick()
    asked = [p for _m, p in kalshi.state.requests if p.startswith("/trade-api/v2/exchange/status")]
    assert len(asked) == 1  # every 60 s, not every tick
    assert any("exchange status not read" in n for n in first.notes) and not first.errors
    assert not any("exchange status" in n for n in second.notes)  # said once


def test_floor_and_grid_over_kalshi_shapes(tmp_path, kalshi):
    t0, t1, t2 = (m.ticker for m in kalshi.state.markets)
    kalshi.state.markets[0].settlement_bounds_type = "floor"
    kalshi.state.markets[0].settlement_floor = "0.250001"
    m1 = kalshi.state.markets[1]  # a linear-cent book quoted on a tapered grid: on it (the centre is cents)
    m1.price_ranges = TAPERED
    m2 = kalshi.state.markets[2]  # a deci-cent book on a linear-cent grid: off it
    m2.price_ranges = LINEAR
    e, source = _kalshi_engine(tmp_path, kalshi, {t0: 0.99, t1: 0.99, t2: 0.99})
    with source.client:
        rep = e.tick()
    by = {d.ticker: d for d in rep.decisions}
    assert by[t0].reason == "settlement floor: not modelled" and by[t1].accepted and t2 not in by
    assert RejectedRow.get(RejectedRow.ticker == t2).reason.startswith(OFF_GRID)
    row0 = MarketRow.get(MarketRow.ticker == t0)
    assert (row0.settlement_bounds_type, row0.settlement_floor, row0.exchange_index) == ("floor", "0.250001", 0)


# -- the catalog (version 3): 6-decimal settlement values, the new market columns -------------------
def _as_v2(path):
    """Rewrite a markets segment as version 2 wrote it: ``settlement_value_cc``, no v3 columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    fields, arrays = [], []
    for f in t.schema:
        if f.name in ("settlement_bounds_type", "settlement_floor_micros", "price_ranges", "exchange_index"):
            continue
        values = t.column(f.name).to_pylist()
        name = f.name
        if name == "settlement_value_micros":
            name, values = "settlement_value_cc", [None if v is None else v // 100 for v in values]
        fields.append(pa.field(name, f.type, f.nullable))
        arrays.append(pa.array(values, f.type))
    meta = {**t.schema.metadata, b"kakashi.catalog_version": b"2"}
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta)), path)


def test_the_catalog_keeps_a_six_decimal_settlement_and_the_3_34_terms(tmp_path):
    from kakashi_tui.adapters import catalog as cat
    from kakashi_tui.adapters.catalog import CatalogWriter
    from kakashi_tui.adapters.columnar import _market_dict
    from tests.conftest import SIM_START_MS

    w = CatalogWriter(tmp_path / "c")
    fine = Market(
        ticker="S", status="determined", result="scalar", market_type="scalar", settlement_value=D("0.623457")
    )
    terms = Market.model_validate(
        {
            "ticker": "F",
            "status": "active",
            "settlement_bounds_type": "floor",
            "settlement_floor": "0.100001",
            "price_ranges": TAPERED,
            "exchange_index": 2,
        }
    )
    assert w.add_market(fine, SIM_START_MS) is None  # (refused before: "finer than $0.0001")
    assert w.add_market(terms, SIM_START_MS) is None
    w.close()
    rows = {r["ticker"]: r for r in cat.read_table(tmp_path / "c", "markets").to_pylist()}
    assert rows["S"]["settlement_value_micros"] == 623_457 and rows["S"]["settlement_bounds_type"] is None
    assert _market_dict(rows["S"])["settlement_value"] == D("0.623457")
    back = Market.model_validate(_market_dict(rows["F"]))
    assert back == terms and back.floored and back.shard == 2 and back.grid is not None
    # the payout of 3 contracts at $0.623457: $1.870371, floored to the centicent (holder's disfavour)
    from kakashi_tui.core.ledger import payout_cc
    from kakashi_tui.core.models import Side

    assert payout_cc(fine, Side.YES, D(3)) == 18_703 and payout_cc(fine, Side.NO, D(3)) == 11_296


def test_a_version_2_markets_file_reads_as_version_3(tmp_path):
    from kakashi_tui.adapters import catalog as cat
    from kakashi_tui.adapters.catalog import CatalogWriter
    from kakashi_tui.adapters.columnar import _market_dict
    from tests.conftest import SIM_START_MS

    w = CatalogWriter(tmp_path / "c")
    m = Market(ticker="S", status="finalized", result="scalar", market_type="scalar", settlement_value=D("0.4230"))
    assert w.add_market(m, SIM_START_MS) is None
    w.close()
    before = cat.read_table(tmp_path / "c", "markets").to_pylist()
    (f,) = sorted((tmp_path / "c" / "markets").rglob("*.parquet"))
    _as_v2(f)
    import pyarrow.parquet as pq

    assert "settlement_value_cc" in pq.read_schema(f).names and cat.file_version(pq.read_schema(f)) == 2
    after = cat.read_table(tmp_path / "c", "markets").to_pylist()
    assert after == before and after[0]["settlement_value_micros"] == 423_000 and after[0]["price_ranges"] is None
    assert Market.model_validate(_market_dict(after[0])) == m


# -- market_lifecycle_v2: determined settles, a new grid applies, without waiting for a listing ---
def _frame(**msg):
    return {"type": "market_lifecycle_v2", "sid": 3, "msg": msg}


def test_a_determined_lifecycle_settles_a_held_market_without_a_poll(tmp_path, kalshi):
    t0 = kalshi.state.markets[0].ticker
    e, source = _kalshi_engine(tmp_path, kalshi, {t0: 0.99})
    with source.client:
        assert e.tick().fills == 1 and e.held_tickers() == {t0}
        # the REST listing still says active (it lags): the WebSocket's word settles it
        assert source.apply_lifecycle(_frame(market_ticker=t0, event_type="determined", settlement_value="1.0000"))
        rep = e.tick()
        assert rep.settled == 1 and not e.account.open_positions()
        assert e.store.outcome(t0).result.value == "yes"


def test_a_grid_update_applies_to_the_next_quotes(tmp_path, kalshi):
    t2 = kalshi.state.markets[2].ticker  # a deci-cent book: off a linear-cent grid
    e, source = _kalshi_engine(tmp_path, kalshi, {})
    with source.client:
        assert e.tick().rejected == 0
        msg = _frame(
            market_ticker=t2, event_type="price_level_structure_updated", price_ranges=LINEAR, exchange_index=1
        )
        assert source.apply_lifecycle(msg)
        assert not source.apply_lifecycle(msg)  # the same again: nothing new
        rep = e.tick()
        assert rep.rejected == 1 and RejectedRow.get(RejectedRow.ticker == t2).reason.startswith(OFF_GRID)
        assert e.markets[t2].shard == 1
    assert not source.apply_lifecycle(_frame(market_ticker="KXNOPE-1", event_type="determined", result="yes"))
    assert not source.apply_lifecycle({"type": "market_lifecycle_v2", "msg": "garbage"})
