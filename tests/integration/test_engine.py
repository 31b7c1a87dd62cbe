"""The engine end to end on real SQLite files: the simulator, restarts, guardrails."""

from decimal import Decimal as D

import pytest

from kakashi_tui.adapters.source import Estimator, FetchBatch, RawRow, Source
from kakashi_tui.adapters.store.schema import DecisionRow, FillRow, LedgerRow, OutcomeRow, RejectedRow, SnapshotRow
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core import risk
from kakashi_tui.core.errors import StoreError
from kakashi_tui.core.ledger import Kind, LedgerEntry
from kakashi_tui.core.models import Estimate, Side
from kakashi_tui.core.sizing import per_trade_cap_cc
from kakashi_tui.core.validate import SETTLED_QUOTE
from kakashi_tui.trading.config import KakashiConfig
from kakashi_tui.trading.engine import Engine, EngineConfig
from tests.conftest import SIM_START_MS, make_engine

NOW = SIM_START_MS


class FakeSource(Source):
    """A scripted feed: each fetch returns the next batch; the clock is set by the test."""

    name = "fake"

    def __init__(self, batches, now=NOW):
        self.batches = list(batches)
        self.now = now

    def now_ms(self):
        return self.now

    def fetch(self):
        return self.batches.pop(0) if self.batches else FetchBatch()

    def close(self):
        pass


class FixedEstimator(Estimator):
    def __init__(self, p):
        self.p = {k: D(str(v)) for k, v in p.items()}

    def estimates(self, tickers, now_ms):
        return [Estimate(ticker=t, p_hat=self.p[t], source="fixed", ts=now_ms) for t in tickers if t in self.p]


def row(
    ticker="T", ts=NOW, bid="0.40", ask="0.45", status="active", result=None, depth=50, close=NOW + 3_600_000, **extra
):
    m = {"ticker": ticker, "status": status, "result": result, "close_ts": close, **extra}
    if status != "active":
        return RawRow(market=m, snapshot=None, payload=m)
    a = D(ask)
    s = {
        "ticker": ticker,
        "ts": ts,
        "yes_bid": D(bid),
        "yes_ask": a,
        "yes_bids": [{"price": D(bid), "qty": depth}],
        "no_bids": [{"price": 1 - a, "qty": depth}],
    }
    return RawRow(market=m, snapshot=s, payload={"m": m})


def fake_engine(db_path, batches, p=None, cfg=None):
    """An engine over scripted batches. These tests are about the gate, the ledger and
    settlement, each tick's batch written by hand: a paper order fills at its decision
    (``insert_latency_ms = 0``, the broker's instant fill) unless the test's ``cfg`` sets a
    latency (latency itself: tests/integration/test_paper_orders_engine.py)."""
    store = Store(db_path)
    cfg = cfg or EngineConfig()
    if "insert_latency_ms" not in cfg.model_fields_set:
        cfg = cfg.model_copy(update={"insert_latency_ms": 0})
    return Engine(store, FakeSource(batches), [FixedEstimator(p or {})], cfg)


def ledger_rows(store):
    return [
        (r.ts, r.kind, r.ticker, r.side, r.contracts_hundredths, r.amount_cc, r.key)
        for r in LedgerRow.select().order_by(LedgerRow.id)
    ]


# -- the simulator lifecycle ------------------------------------------------------------
def test_500_sim_ticks_fill_and_settle_and_the_books_balance(sim_engine):
    e = sim_engine
    for _ in range(500):
        e.tick()
    assert FillRow.select().count() > 0
    assert LedgerRow.select().where(LedgerRow.kind == "settle").count() >= 1
    assert OutcomeRow.select().count() >= 1
    # a quote is stored once: a quiet market's quote re-sent unchanged (its makers away) adds no row
    quotes = [(r.ticker, r.ts) for r in SnapshotRow.select()]
    assert len(quotes) == len(set(quotes)) and 0.8 * 500 * 8 < len(quotes) < 500 * 8
    # truth lives in the ledger: cash is the sum of entries; memory agrees with a fresh fold
    total = sum(r.amount_cc for r in LedgerRow.select())
    assert e.account.cash_cc == total
    fresh = e.store.account()
    assert fresh.cash_cc == e.account.cash_cc and fresh.open_positions() == e.account.open_positions()
    assert fresh.realized_cc == e.account.realized_cc
    assert len(e.account.open_positions()) <= 5
    # every accepted decision respected the per-trade cap at decision time
    for d in DecisionRow.select().where(DecisionRow.accepted == True):  # noqa: E712
        assert 0 < d.worst_case_cc <= per_trade_cap_cc(d.equity_cc, D("1"))
    # fills never exceed the worst case the gate approved
    for f in FillRow.select():
        if f.action == "buy":
            d = DecisionRow.get_by_id(f.decision_id)
            assert f.value_cc + f.fee_cc <= d.worst_case_cc


def test_sim_markets_open_close_settle_and_are_replaced():
    from kakashi_tui.adapters.sim import SimExchange

    sim = SimExchange(seed=3, markets=4, start_ms=NOW, lifetime_ticks=(3, 3))
    seen: dict[str, list[str]] = {}
    for _ in range(12):
        for r in sim.fetch().rows:
            seen.setdefault(r.market["ticker"], []).append(r.market["status"])
    first = seen["SIM-3-0001"]
    assert first == ["active", "active", "closed", "determined", "finalized"]
    assert {s for states in seen.values() for s in states} <= {
        "active",
        "closed",
        "determined",
        "disputed",
        "amended",
        "finalized",
    }
    assert len(seen) > 4  # replacements opened
    assert len(sim.live) == 4


def test_restart_resumes_exactly(tmp_path):
    straight = make_engine(tmp_path / "a.db")
    for _ in range(240):
        straight.tick()
    expected = ledger_rows(straight.store)
    expected_decisions = [
        (d.ts, d.ticker, d.side, d.contracts_hundredths, d.accepted, d.reason)
        for d in DecisionRow.select().order_by(DecisionRow.id)
    ]
    straight.store.close()

    first = make_engine(tmp_path / "b.db")
    for _ in range(100):
        first.tick()
    cash_before = first.account.cash_cc
    first.store.close()
    second = make_engine(tmp_path / "b.db")  # a new process would do exactly this
    assert second.account.cash_cc == cash_before  # same bankroll after restart
    assert second.tick_count == 100
    for _ in range(140):
        second.tick()
    assert ledger_rows(second.store) == expected
    got = [
        (d.ts, d.ticker, d.side, d.contracts_hundredths, d.accepted, d.reason)
        for d in DecisionRow.select().order_by(DecisionRow.id)
    ]
    assert got == expected_decisions
    second.store.close()


def test_a_db_remembers_its_seed(tmp_path):
    e = make_engine(tmp_path / "s.db", seed=3)
    e.store.close()
    from kakashi_tui.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--seed 3"):
        make_engine(tmp_path / "s.db", seed=4)


# -- validation -------------------------------------------------------------------------
def test_bad_rows_are_rejected_counted_and_kept_good_rows_stored(db_path):
    bad = RawRow(
        market={"ticker": "B", "status": "active"},
        snapshot={"ticker": "B", "ts": NOW, "yes_bid": D("0.50"), "yes_ask": D("0.45")},
        payload={"raw": "crossed"},
    )
    e = fake_engine(db_path, [FetchBatch(rows=[row("G"), bad, RawRow({}, None, "x", reason="unreadable row")])])
    rep = e.tick()
    assert rep.saved == 1 and rep.rejected == 2
    reasons = [r.reason for r in RejectedRow.select()]
    assert any("crossed" in r for r in reasons) and "unreadable row" in reasons
    assert '"crossed"' in RejectedRow.select().first().payload
    assert SnapshotRow.select().count() == 1


def test_feed_exceptions_do_not_stop_the_loop(db_path):
    e = fake_engine(db_path, [])
    e.source.fetch = lambda: (_ for _ in ()).throw(RuntimeError("socket closed"))
    rep = e.tick()
    assert rep.errors and "socket closed" in rep.errors[0] and rep.tick == 1


# -- trading and guardrails ----------------------------------------------------------------
def test_edge_trades_and_holds_one_position_per_market(db_path):
    e = fake_engine(db_path, [FetchBatch(rows=[row()]), FetchBatch(rows=[row()])], p={"T": 0.60})
    r1 = e.tick()
    assert r1.fills == 1 and r1.decisions[0].accepted
    r2 = e.tick()
    assert r2.decisions == ()  # already holds T: no new decision
    [pos] = e.account.open_positions()
    assert pos.side.value == "yes" and pos.cost_cc <= 100_000


def test_settlement_happens_exactly_once(db_path):
    settled = row(status="determined", result="yes")
    e = fake_engine(
        db_path, [FetchBatch(rows=[row()]), FetchBatch(rows=[settled]), FetchBatch(rows=[settled])], p={"T": 0.60}
    )
    e.tick()
    n = e.account.open_positions()[0].contracts
    cash = e.account.cash_cc
    assert e.tick().settled == 1
    assert e.account.cash_cc == cash + 10_000 * n
    assert e.tick().settled == 0
    assert LedgerRow.select().where(LedgerRow.kind == "settle").count() == 1
    # and the store itself refuses a second entry with the same key
    again = LedgerEntry(ts=NOW, kind=Kind.SETTLE, amount_cc=10_000 * n, key="settle:T:yes", ticker="T")
    assert e.store.append_ledger([again]) == []


def test_kill_switch_refuses_orders_and_survives_restart(db_path):
    e = fake_engine(db_path, [FetchBatch(rows=[row()])], p={"T": 0.60})
    e.kill("test")
    rep = e.tick()
    assert rep.fills == 0 and rep.decisions[0].reason == risk.KILL_SWITCH
    assert "HALTED" in e.state_label()
    e.store.close()
    e2 = fake_engine(db_path, [FetchBatch(rows=[row()])], p={"T": 0.60})
    assert e2.killed and e2.tick().fills == 0
    e2.rearm()
    e2.source.batches = [FetchBatch(rows=[row()])]
    assert e2.tick().fills == 1


def test_pause_takes_no_decisions(db_path):
    e = fake_engine(db_path, [FetchBatch(rows=[row()])], p={"T": 0.60})
    e.set_paused(True)
    rep = e.tick()
    assert rep.decisions == () and rep.saved == 1 and e.state_label() == "PAUSED"


def test_stale_quote_and_wide_spread_are_rejected(db_path):
    e = fake_engine(
        db_path,
        [FetchBatch(rows=[row("OLD", ts=NOW - 31_000), row("WIDE", bid="0.30", ask="0.45")])],
        p={"OLD": 0.60, "WIDE": 0.60},
    )
    reasons = {d.ticker: d.reason for d in e.tick().decisions}
    assert reasons["OLD"].startswith(risk.STALE_QUOTE) and reasons["WIDE"].startswith(risk.WIDE_SPREAD)
    assert DecisionRow.select().where(DecisionRow.accepted == False).count() == 2  # noqa: E712


def test_max_open_positions(db_path):
    rows = [row(f"M{i}") for i in range(7)]
    e = fake_engine(db_path, [FetchBatch(rows=rows)], p={f"M{i}": 0.60 for i in range(7)})
    rep = e.tick()
    assert rep.fills == 5 and len(e.account.open_positions()) == 5
    assert [d.reason.split(" (")[0] for d in rep.decisions[5:]] == [risk.MAX_POSITIONS] * 2


def test_daily_cap_stops_trading_for_the_rest_of_the_utc_day(db_path):
    # Buy 'T' YES at 0.45, then its bid collapses: equity drops more than 3% of the day's start.
    cfg = EngineConfig(bankroll_cc=1_000_000)
    batches = [FetchBatch(rows=[row("T", depth=500)])]
    e = fake_engine(db_path, batches, p={"T": 0.60, "U": 0.60}, cfg=cfg)
    e.tick()
    assert e.account.open_positions()
    # with a $100 bankroll the cap is $3; force a bigger loss by marking the position near zero
    e.source.batches = [FetchBatch(rows=[row("T", bid="0.01", ask="0.03"), row("U")])]
    e.store.set_control("day_start_equity", 1040000)
    rep = e.tick()
    assert e.daily_stopped()
    assert rep.decisions and rep.decisions[0].reason == risk.DAILY_STOP and rep.fills == 0
    # the next UTC day trades again
    e.source.now = NOW + 86_400_000
    e.source.batches = [FetchBatch(rows=[row("U", ts=e.source.now, close=e.source.now + 3_600_000)])]
    assert not e.daily_stopped() and e.tick().fills == 1


@pytest.mark.parametrize("policy", ["hold", "flatten"])
def test_on_daily_stop_holds_or_flattens_open_positions(db_path, policy):
    cfg = EngineConfig(bankroll_cc=1_000_000, on_daily_stop=policy)
    e = fake_engine(db_path, [FetchBatch(rows=[row("T", depth=500)])], p={"T": 0.60}, cfg=cfg)
    e.tick()
    assert e.account.open_positions()
    e.source.batches = [FetchBatch(rows=[row("T", bid="0.01", ask="0.03")])]
    e.store.set_control("day_start_equity", 1040000)
    e.tick()
    assert e.daily_stopped()
    if policy == "hold":
        assert e.account.open_positions() and FillRow.select().where(FillRow.action == "sell").count() == 0
    else:  # sold into the bids on the tick the stop was hit, and said so
        assert e.account.open_positions() == [] and FillRow.select().where(FillRow.action == "sell").count() == 1
        assert (
            e.store.db.execute_sql("SELECT detail FROM events WHERE kind = 'flatten'").fetchone()[0]
            == "1 fills (daily stop)"
        )


def test_a_failed_tick_rolls_back_and_memory_follows_the_ledger(db_path):
    e = fake_engine(db_path, [FetchBatch(rows=[row()])], p={"T": 0.60})
    cash = e.account.cash_cc

    def boom(*a, **k):
        raise RuntimeError("disk full")

    e.store.insert_tick = boom
    with pytest.raises(RuntimeError):
        e.tick()
    assert e.account.cash_cc == cash and e.account.open_positions() == []
    assert FillRow.select().count() == 0 and e.tick_count == 0
    # the next tick writes again what the failed one lost
    del e.store.insert_tick
    e.source.batches = [FetchBatch(rows=[row()])]
    assert e.tick().fills == 1
    from kakashi_tui.adapters.store.schema import EstimateRow, MarketRow

    assert MarketRow.select().count() == 1 and EstimateRow.select().count() == 1


def test_one_writer_per_database(db_path):
    s = Store(db_path)
    with pytest.raises(StoreError, match="already writing"):
        Store(db_path)
    reader = Store(db_path, writer=False)  # readers are always welcome
    assert reader.account().cash_cc == 0
    reader.close()
    s.close()
    Store(db_path).close()


def test_db_file_is_owner_only(db_path):
    Store(db_path).close()
    assert (db_path.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[risk]\nmax_open_positions = 9\n", "loosens max open positions"),
        ("[risk]\ndaily_loss_cap_pct = 10\n", "loosens the daily loss cap"),
        ("bankrol = 5\n", "bankrol"),
        ("bankroll = -5\n", "bankroll"),
        ("[risk\n", "not valid TOML"),
    ],
)
def test_config_refuses_loosened_limits_unknown_keys_and_bad_values(tmp_path, text, fragment):
    from kakashi_tui.core.errors import ConfigError
    from kakashi_tui.trading.config import load_config

    bad = tmp_path / "c.toml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(str(bad))


def test_config_may_tighten(tmp_path):
    from kakashi_tui.trading.config import load_config

    good = tmp_path / "g.toml"
    good.write_text("bankroll = 250\n[risk]\nmax_open_positions = 3\n[fees.series]\nINX = 0.035\n")
    cfg = load_config(str(good))
    assert cfg.engine_config().limits.max_open_positions == 3 and cfg.engine_config().bankroll_cc == 2_500_000
    assert isinstance(KakashiConfig().bankroll, D)


def test_book_text_is_exactly_compact_json():
    import json

    from kakashi_tui.adapters.store.rows import snapshot_from_row
    from tests.conftest import book

    s = book(yes=((0.40, 10), (0.39, 7), (0.05, 1)), no=((0.55, 3), (0.50, 120)))
    text = s.book_text
    assert text == json.dumps(
        {
            "yes": [[f"{lv.price:.4f}", f"{lv.qty:.2f}"] for lv in s.yes_bids],
            "no": [[f"{lv.price:.4f}", f"{lv.qty:.2f}"] for lv in s.no_bids],
        },
        separators=(",", ":"),
    )
    assert text.startswith('{"yes":[["0.4000","10.00"],["0.3900","7.00"]')  # Kalshi's own fixed-point text
    assert snapshot_from_row(s.ticker, s.ts, 4000, 4500, None, 0, text) == s  # and it reads back the same
    assert book(yes=(), no=(("0.5500", "2.50"),)).book_text == '{"yes":[],"no":[["0.5500","2.50"]]}'


def test_a_version_2_file_is_migrated_to_one_snapshot_index(db_path, store):
    from tests.conftest import book

    store.insert_snapshots([book(ticker="A", ts=5), book(ticker="B", ts=7), book(ticker="A", ts=9)], 0, "t")
    store.db.execute_sql("CREATE INDEX snapshots_ticker ON snapshots (ticker)")  # as version 2 made it
    store.set_control("schema_version", 2)
    store.close()
    again = Store(db_path)
    try:
        names = {
            r[0]
            for r in again.db.execute_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'snapshots'"
            )
        }
        assert names == {"snapshots_ts"}
        assert again.get_control("schema_version") == "12"
        assert again.latest_snapshot("A").ts == 9 and again.latest_snapshot("B").ts == 7  # nothing lost
        assert again.latest_snapshot("C") is None
        plan = " ".join(
            str(r)
            for r in again.db.execute_sql(
                "EXPLAIN QUERY PLAN SELECT * FROM snapshots WHERE ticker = 'A' ORDER BY ts DESC, id DESC LIMIT 1"
            )
        )
        assert "snapshots_ts" in plan  # walked back from the newest row, not a scan and a sort
    finally:
        again.close()


def test_a_settled_market_leaves_the_engines_memory(sim_engine):
    """A long run must not keep state for markets that are over (the DB keeps their record), nor
    the desk's windows their books (the report says which markets the engine let go of)."""
    from kakashi_tui.trading.service import TradingService

    service = TradingService(sim_engine)
    settled: list[str] = []
    for _ in range(400):
        assert service.step() is not None
        settled = [r.ticker for r in OutcomeRow.select()]
        if len(settled) >= 3:
            break
    assert len(settled) >= 3
    for state in (
        sim_engine.estimates,
        sim_engine.markets,
        sim_engine.quotes,
        sim_engine._market_cache,
        service.windows.books,
    ):
        assert not set(settled) & set(state), state.keys()
    assert len(sim_engine.estimates) <= len(sim_engine.markets)  # beliefs only about live markets
    restarted = Engine(sim_engine.store, sim_engine.source, sim_engine.estimators, sim_engine.cfg)
    assert restarted.estimates and not set(settled) & set(restarted.estimates)  # nor after a restart


# -- fixed point, quiet markets, lifecycle, marking (issues #10, #14) ---------------------------
def quiet(ticker="Q"):
    m = {"ticker": ticker, "status": "active", "close_ts": NOW + 3_600_000}
    return RawRow(
        market=m,
        snapshot={
            "ticker": ticker,
            "ts": NOW,
            "yes_bid": "0.0000",
            "yes_ask": "1.0000",
            "last": "0.5000",
            "yes_bids": [],
            "no_bids": [],
        },
        payload=m,
    )


def test_a_quiet_market_is_stored_as_no_quote_never_rejected(db_path):
    from kakashi_tui.trading.view import build_view

    e = fake_engine(db_path, [FetchBatch(rows=[quiet()])], p={"Q": 0.9})
    rep = e.tick()
    assert rep.rejected == 0 and rep.saved == 1 and rep.decisions == ()
    assert RejectedRow.select().count() == 0
    r = SnapshotRow.get()
    assert (r.yes_bid_cc, r.yes_ask_cc, r.last_cc, r.book) == (None, None, 5000, "")
    [line] = build_view(e).markets
    assert line.bid is None and line.ask is None and line.signal == "NO QUOTE"


def test_fills_on_a_fractional_sub_penny_book_at_exactly_its_prices(db_path):
    m = {"ticker": "T", "status": "active", "close_ts": NOW + 3_600_000, "fee_multiplier": "1"}
    snap = {
        "ticker": "T",
        "ts": NOW,
        "yes_bid": "0.9500",
        "yes_ask": "0.9930",
        "yes_bids": [["0.9500", "3.00"]],
        "no_bids": [["0.0070", "2.50"], ["0.0060", "1.25"]],
    }
    from kakashi_tui.core.strategy import StrategyConfig

    cfg = EngineConfig(strategy=StrategyConfig(edge_threshold=D("0.005")))
    e = fake_engine(db_path, [FetchBatch(rows=[RawRow(m, snap, m)])], p={"T": 1}, cfg=cfg)
    rep = e.tick()
    assert rep.fills == 1, rep.decisions
    f = FillRow.get()
    assert f.levels == '[["0.9930", "2.50"], ["0.9940", "1.25"]]'
    assert f.contracts_hundredths == 375 and f.value_cc == 24_825 + 12_425  # 2.50 x 0.9930 + 1.25 x 0.9940
    # the fee: 0.07 x (2.5 x .993 x .007 + 1.25 x .994 x .006) = $0.00173832..., up to $0.0018
    assert f.fee_cc == 18


def test_a_settled_market_that_quotes_again_is_refused_and_never_bought(db_path):
    e = fake_engine(
        db_path,
        [FetchBatch(rows=[row()]), FetchBatch(rows=[row(status="determined", result="no")]), FetchBatch(rows=[row()])],
        p={"T": 0.60},
    )
    assert e.tick().fills == 1
    assert e.tick().settled == 1 and e.account.open_positions() == []
    rep = e.tick()  # the same ticker quoting as if open again
    assert rep.rejected == 1 and rep.fills == 0 and rep.decisions == ()
    assert RejectedRow.get().reason == SETTLED_QUOTE
    e.store.close()
    again = fake_engine(db_path, [FetchBatch(rows=[row()])], p={"T": 0.60})  # and after a restart
    rep = again.tick()
    assert rep.rejected == 1 and rep.fills == 0 and again.account.open_positions() == []
    assert FillRow.select().count() == 1 and LedgerRow.select().where(LedgerRow.kind == "settle").count() == 1


def test_paid_at_determined_and_a_changed_result_corrected_by_new_entries(db_path):
    batches = [
        FetchBatch(rows=[row()]),
        FetchBatch(rows=[row(status="determined", result="yes")]),
        FetchBatch(rows=[row(status="disputed", result="yes")]),
        FetchBatch(rows=[row(status="amended", result="no")]),
        FetchBatch(rows=[row(status="finalized", result="no")]),
    ]
    e = fake_engine(db_path, batches, p={"T": 0.60})
    e.tick()
    n = e.account.open_positions()[0].contracts
    cash0 = e.account.cash_cc
    e.tick()
    assert e.account.cash_cc == cash0 + 10_000 * n  # paid at determined
    before = ledger_rows(e.store)
    e.tick()
    assert ledger_rows(e.store) == before  # disputed: nothing moves
    e.tick()
    after = ledger_rows(e.store)
    assert after[: len(before)] == before  # append-only: the old entries untouched
    [fix] = after[len(before) :]
    assert fix[1] == "settle_fix" and fix[5] == -10_000 * n and fix[6] == "settle:T:yes:fix:1"
    assert e.account.cash_cc == cash0
    e.tick()
    assert ledger_rows(e.store) == after  # finalized with the amended result: nothing new
    assert e.store.outcome("T").status.value == "finalized"
    assert e.store.account().realized_cc == e.account.realized_cc == cash0 - e.account.deposits_cc


def test_a_held_scalar_market_settles_at_its_value(db_path):
    e = fake_engine(
        db_path,
        [FetchBatch(rows=[row(status="determined", result="scalar", market_type="scalar", settlement_value="0.3250")])],
    )
    with e.store.atomic():  # held from before (Kakashi itself declines to open scalar positions)
        e._apply(
            [
                LedgerEntry(
                    ts=NOW,
                    kind=Kind.BUY,
                    amount_cc=-20_000,
                    key="fill:0:cost",
                    ticker="T",
                    side=Side.NO,
                    contracts=D("4.50"),
                )
            ]
        )
    cash = e.account.cash_cc
    assert e.tick().settled == 1
    assert e.account.cash_cc == cash + 30_375  # NO gets 1 - 0.3250 = 0.6750 x 4.50
    assert e.account.open_positions() == []


def test_scalar_markets_are_not_traded(db_path):
    e = fake_engine(db_path, [FetchBatch(rows=[row(market_type="scalar")])], p={"T": 0.9})
    rep = e.tick()
    assert rep.decisions == () and rep.fills == 0


def test_bids_vanish_equity_falls_to_liquidation_and_the_daily_cap_stops_trading(db_path):
    """Marked at what it can be sold for: zero when the bids vanish, not cost (issue #14)."""
    held = [f"M{i}" for i in range(4)]
    cfg = EngineConfig(bankroll_cc=1_000_000)
    e = fake_engine(
        db_path, [FetchBatch(rows=[row(t, depth=500) for t in held])], p={t: 0.60 for t in held + ["U"]}, cfg=cfg
    )
    assert e.tick().fills == 4
    eq_before = e.equity()
    cost = sum(p.cost_cc for p in e.account.open_positions())
    assert cost > 30_000  # the positions cost more than the 3% daily cap ($3 of $100)
    no_bids = [
        RawRow(r.market, {**r.snapshot, "yes_bid": None, "yes_bids": []}, r.payload) for r in (row(t) for t in held)
    ]
    e.source.batches = [FetchBatch(rows=no_bids + [row("U")])]
    rep = e.tick()
    assert rep.equity_cc == e.account.cash_cc < eq_before  # nothing to sell into: marked at zero
    assert e.daily_stopped()
    [d] = rep.decisions
    assert d.ticker == "U" and not d.accepted and d.reason == risk.DAILY_STOP


def test_a_last_trade_with_no_bid_does_not_inflate_the_per_trade_cap_base(db_path):
    e = fake_engine(db_path, [FetchBatch(rows=[row("T", depth=500)])], p={"T": 0.60, "U": 0.60})
    e.tick()
    [pos] = e.account.open_positions()
    t_row = row("T")
    t_row = RawRow(t_row.market, {**t_row.snapshot, "yes_bid": None, "yes_bids": [], "last": "0.9900"}, t_row.payload)
    e.source.batches = [FetchBatch(rows=[t_row, row("U")])]
    cash = e.account.cash_cc
    rep = e.tick()
    [d] = rep.decisions
    assert d.accepted and d.equity_cc == cash  # the position counts for nothing, not 0.99 a contract
    assert cash + pos.contracts * 9_900 > d.equity_cc
    assert d.worst_case_cc <= per_trade_cap_cc(d.equity_cc, D("1"))


def test_a_position_that_outlived_its_settlement_is_paid_on_the_next_tick(db_path):
    """Older versions bought a settled market again and never paid it: the booked outcome pays it."""
    from kakashi_tui.core.models import Market

    s = Store(db_path)
    with s.atomic():
        s.append_ledger(
            [
                LedgerEntry(ts=NOW, kind=Kind.DEPOSIT, amount_cc=10_000_000, key="deposit:initial"),
                LedgerEntry(
                    ts=NOW,
                    kind=Kind.BUY,
                    amount_cc=-20_000,
                    key="fill:1:cost",
                    ticker="T",
                    side=Side.YES,
                    contracts=D(5),
                ),
                LedgerEntry(
                    ts=NOW,
                    kind=Kind.SETTLE,
                    amount_cc=50_000,
                    key="settle:T:yes",
                    ticker="T",
                    side=Side.YES,
                    contracts=D(-5),
                ),
                LedgerEntry(
                    ts=NOW,
                    kind=Kind.BUY,
                    amount_cc=-12_000,
                    key="fill:2:cost",
                    ticker="T",
                    side=Side.YES,
                    contracts=D(3),
                ),  # bought again after it settled
            ]
        )
        s.record_outcome(Market(ticker="T", status="finalized", result="yes"), NOW)
    s.close()
    e = fake_engine(db_path, [FetchBatch(rows=[row()])], p={"T": 0.60})
    cash = e.account.cash_cc
    rep = e.tick()
    assert rep.settled == 1 and rep.fills == 0 and e.account.open_positions() == []
    assert e.account.cash_cc == cash + 30_000
    assert [r.key for r in LedgerRow.select().where(LedgerRow.kind == "settle")] == ["settle:T:yes", "settle:T:yes:2"]
