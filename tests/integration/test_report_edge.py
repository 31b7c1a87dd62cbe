"""Issue #24's scoring in the post-mortem: closing-line value read from a hand-made database,
intervals that resample events, and the simulator's noise-only forecaster."""

import sqlite3

import pytest

from kakashi_tui.adapters import closing
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.models import Market
from kakashi_tui.frontends.report import edge
from kakashi_tui.frontends.report import scoring as sc
from kakashi_tui.frontends.report.plan import plan_lines
from kakashi_tui.frontends.report.postmortem import gather, render_markdown
from kakashi_tui.trading.config import KakashiConfig, SimSection
from tests.conftest import SIM_START_MS, make_engine

T0 = SIM_START_MS
MIN = 60_000


def _snap(s, ticker, ts, bid_cc, ask_cc):
    s.db.execute_sql(
        "INSERT INTO snapshots (ticker, ts, fetched_ts, yes_bid_cc, yes_ask_cc, last_cc, volume_hundredths, book,"
        " source) VALUES (?, ?, 0, ?, ?, NULL, 0, '', 'x')",
        (ticker, ts, bid_cc, ask_cc),
    )


def _bought(s, n, ticker, side, p_hat, contracts, value_cc, fee_cc):
    s.db.execute_sql(
        "INSERT INTO decisions (id, ts, tick, ticker, side, contracts_hundredths, limit_price_cc, best_ask_cc, p_hat,"
        " ev, worst_case_cc, equity_cc, accepted, reason) VALUES (?, ?, 1, ?, ?, ?, 0, 0, ?, 0.01, 0, 0, 1,"
        " 'accepted')",
        (n, T0, ticker, side, contracts * 100, p_hat),
    )
    s.db.execute_sql(
        "INSERT INTO fills (decision_id, ts, ticker, side, action, requested_hundredths, contracts_hundredths,"
        " value_cc, fee_cc, levels) VALUES (?, ?, ?, ?, 'buy', ?, ?, ?, ?, '[]')",
        (n, T0, ticker, side, contracts * 100, contracts * 100, value_cc, fee_cc),
    )


def three_entries(path):
    """Event EV has two mutually exclusive brackets, B1 (YES bought) and B2 (NO bought); event EC
    one market, C1 (YES bought). Each closes at T0 + 10 min; its last quote is at T0 + 9 min."""
    s = Store(path)
    with s.atomic():
        s.upsert_markets(
            [
                Market(ticker=t, event_ticker=ev, status="active", close_ts=T0 + 10 * MIN)
                for t, ev in (("B1", "EV"), ("B2", "EV"), ("C1", "EC"))
            ],
            T0,
        )
        for t, (bid, ask) in {"B1": (4000, 4200), "B2": (5000, 5200), "C1": (3000, 3400)}.items():
            _snap(s, t, T0, bid, ask)  # the quote at the decision
        _bought(s, 1, "B1", "yes", 0.55, 10, 42_000, 1_700)  # 10 YES at 0.42, fee 1.7c a contract
        _bought(s, 2, "B2", "no", 0.35, 10, 48_000, 1_800)  # 10 NO at 0.48 (1 - the 0.52 YES bid)
        _bought(s, 3, "C1", "yes", 0.45, 5, 17_000, 800)  # 5 YES at 0.34, fee 1.6c a contract
        for t, (bid, ask) in {"B1": (4800, 5200), "B2": (4600, 5000), "C1": (2600, 3000)}.items():
            _snap(s, t, T0 + 9 * MIN, bid, ask)  # the closing line: mids 0.50, 0.48, 0.28
            _snap(s, t, T0 + 11 * MIN, 100, 9_900)  # after the close: never the closing line
        for t, r in (("B1", "yes"), ("B2", "no"), ("C1", "no")):
            s.record_outcome(Market(ticker=t, status="determined", result=r), T0 + 12 * MIN)
    s.close()


def test_closing_line_value_worked_by_hand(tmp_path):
    three_entries(tmp_path / "k.db")
    con = sqlite3.connect(tmp_path / "k.db")
    try:
        entries, note = edge.gather_entries(con, None, None, T0 + 20 * MIN, {})
        forecasts = edge.gather_forecasts(con, None, None, {"B1": "EV", "B2": "EV", "C1": "EC"})
    finally:
        con.close()
    assert note == ""
    by = {e.ticker: e for e in entries}
    # B1: YES closed at a 0.50 mid, bought at 0.42: +8c; less the 1.7c fee: +6.3c
    assert by["B1"].clv == pytest.approx(0.08) and by["B1"].clv_fees == pytest.approx(0.063)
    # B2: NO closed at 1 - 0.48 = 0.52, bought at 0.48: +4c; less 1.8c: +2.2c (the NO side mirrored)
    assert by["B2"].clv == pytest.approx(0.04) and by["B2"].clv_fees == pytest.approx(0.022)
    # C1: YES closed at 0.28, bought at 0.34: -6c; less 1.6c: -7.6c
    assert by["C1"].clv == pytest.approx(-0.06) and by["C1"].clv_fees == pytest.approx(-0.076)
    assert {e.close_source for e in entries} == {closing.SRC_DB}
    assert [e.event for e in entries] == ["EV", "EV", "EC"]
    lv = edge.line_value(entries)
    assert lv is not None
    # mean (8 + 4 - 6) / 3 = +2c; after fees (6.3 + 2.2 - 7.6) / 3 = +0.3c
    assert lv.plain.estimate == pytest.approx(0.02) and lv.fees.estimate == pytest.approx(0.003)
    # by event: EV EV gives (8 + 4) / 2 = +6c, EC EC -6c, EV EC +2c: the bounds are -6c and +6c
    assert (lv.plain.lo, lv.plain.hi) == pytest.approx((-0.06, 0.06))
    assert (lv.plain.n, lv.plain.events) == (3, 2)
    text = "\n".join(edge.clv_section(lv))
    assert "| 3 | 2 | +2.00¢ | -6.00¢ to +6.00¢ | +0.30¢ |" in text
    assert "Closing prices: 3 from snapshots" in text
    # after fees, by event: EV EV (6.3 + 2.2) / 2 = +4.25c, EC EC -7.6c: the interval includes zero.
    # Read as normal (se = width / 3.92), the lower bound clears zero at 3 x (11.85 / 2 / 0.3)^2 =
    # 1,170.19 trades: 1,171 in all, 1,168 more; past 100 times the 3 so far, so not given as a number
    assert (lv.fees.lo, lv.fees.hi) == pytest.approx((-0.076, 0.0425))
    assert sc.more_needed(lv.fees) == 1_168
    assert "more than 100x the sample (over 300 more settled trades): no edge visible at this size" in text
    # the forecasts: each market's first decision against the mid then
    assert [(f.ticker, f.p_hat, f.market, f.outcome, f.event) for f in forecasts] == [
        ("B1", 0.55, pytest.approx(0.41), 1, "EV"),
        ("B2", 0.35, pytest.approx(0.51), 0, "EV"),
        ("C1", 0.45, pytest.approx(0.32), 0, "EC"),
    ]


def test_a_market_still_trading_has_no_closing_line(tmp_path):
    three_entries(tmp_path / "k.db")
    con = sqlite3.connect(tmp_path / "k.db")
    try:
        con.execute("DELETE FROM outcomes WHERE ticker = 'C1'")
        con.commit()
        # before C1's close: no closing line for it; after, its last quote before the close
        early, _ = edge.gather_entries(con, None, None, T0 + 5 * MIN, {})
        late, _ = edge.gather_entries(con, None, None, T0 + 30 * MIN, {})
    finally:
        con.close()
    assert {e.ticker: e.close for e in early}["C1"] is None
    assert {e.ticker: e.close for e in late}["C1"] == pytest.approx(0.28)


def _run(path, forecaster, ticks, seed=5):
    cfg = KakashiConfig(sim=SimSection(forecaster=forecaster, markets=10))
    e = make_engine(path, seed=seed, cfg=cfg)
    for _ in range(ticks):
        e.tick()
    e.store.close()


def test_the_noise_forecaster_moves_no_price_and_is_labelled(tmp_path):
    """Same seed, either forecaster: the same quotes (the noise is a stream of its own)."""
    _run(tmp_path / "o.db", "oracle", 60)
    _run(tmp_path / "n.db", "noise", 60)
    q = "SELECT ticker, ts, yes_bid_cc, yes_ask_cc, book FROM snapshots ORDER BY id"
    with sqlite3.connect(tmp_path / "o.db") as a, sqlite3.connect(tmp_path / "n.db") as b:
        assert a.execute(q).fetchall() == b.execute(q).fetchall()
        sources = {r[0] for r in b.execute("SELECT DISTINCT source FROM estimates")}
        mids = dict(
            b.execute(
                "SELECT e.ticker, ABS(e.p_hat - (s.yes_bid_cc + s.yes_ask_cc) / 20000.0) FROM estimates e"
                " JOIN snapshots s ON s.ticker = e.ticker AND s.ts = e.ts"
            ).fetchall()
        )
    assert sources == {"sim-noise (simulated)"}
    assert mids and max(mids.values()) < 0.2  # around the market's mid, not the hidden probability


def test_the_report_scores_a_sim_run_by_event(tmp_path):
    _run(tmp_path / "k.db", "noise", 400)
    d = gather(tmp_path / "k.db")
    md = render_markdown(d, T0)
    for heading in (
        "## Forecasts scored against the market (at each market's first decision)",
        "## Closing-line value",
        "## Murphy curve at market prices",
        "## Methods",
    ):
        assert heading in md
    s = d.scored
    assert s is not None and s.n == s.events > 10  # each simulated market is an event of its own
    assert "Dimitriadis, Gneiting and Jordan" in md and "Ehm, Gneiting, Jordan and Krüger" in md
    assert "2,000 resamples, seed 20260105" in md


def closes_from_candles(tmp_path) -> sqlite3.Connection:
    """``three_entries``' database without C1's and B2's recorded quotes, and ``catalog/`` beside it
    with candles for them: C1's last before its close has a 0.26/0.30 book (0.28), B2's nothing
    resting (its last trade, 0.47). A connection to the database."""
    from kakashi_tui.adapters.catalog import CatalogWriter

    con = sqlite3.connect(tmp_path / "k.db")
    con.execute("DELETE FROM snapshots WHERE ticker IN ('C1', 'B2')")
    con.commit()
    w = CatalogWriter(tmp_path / "catalog", roll_s=float("inf"))
    # C1: the last period before the close has a 0.26/0.30 book (mid 0.28); a later one is ignored
    assert (
        w.add_candle(T0 + 5 * MIN, "C1", 1, "backfill", close_cc=2500, yes_bid_close_cc=2000, yes_ask_close_cc=2400)
        is None
    )
    assert (
        w.add_candle(T0 + 9 * MIN, "C1", 1, "backfill", close_cc=2700, yes_bid_close_cc=2600, yes_ask_close_cc=3000)
        is None
    )
    assert (
        w.add_candle(T0 + 11 * MIN, "C1", 1, "backfill", close_cc=100, yes_bid_close_cc=100, yes_ask_close_cc=300)
        is None
    )
    # B2: nothing resting at the end (0 / 1): its last trade, 0.47
    assert (
        w.add_candle(T0 + 9 * MIN, "B2", 1, "backfill", close_cc=4700, yes_bid_close_cc=0, yes_ask_close_cc=10_000)
        is None
    )
    w.close()
    return con


def test_closing_prices_the_database_lacks_come_from_the_catalogs_candles(tmp_path):
    """C1's and B2's recorded quotes are gone: a closing line is the last candle before its close, the
    bid/ask mid where both rest, else the last trade; the report names each source."""
    three_entries(tmp_path / "k.db")
    con = closes_from_candles(tmp_path)
    try:
        entries, note = edge.gather_entries(con, None, None, T0 + 20 * MIN, {}, tmp_path / "catalog")
        none, _ = edge.gather_entries(con, None, None, T0 + 20 * MIN, {}, tmp_path / "no-catalog")
    finally:
        con.close()
    by = {e.ticker: e for e in entries}
    assert note == ""
    assert (by["C1"].close, by["C1"].close_source) == (pytest.approx(0.28), closing.SRC_CANDLE_MID)
    assert (by["B2"].close, by["B2"].close_source) == (pytest.approx(0.47), closing.SRC_CANDLE_LAST)
    assert by["B2"].clv == pytest.approx(0.53 - 0.48)  # NO: one minus the last trade, less its price
    assert (by["B1"].close, by["B1"].close_source) == (pytest.approx(0.50), closing.SRC_DB)
    text = "\n".join(edge.clv_section(edge.line_value(entries)))
    assert "Closing prices: 1 from snapshots, 1 from candles (last trade), 1 from candles (bid/ask)" in text
    # without the catalog, the two have no closing line and are counted as left out
    assert [e.close for e in none if e.ticker != "B1"] == [None, None]
    text = "\n".join(edge.clv_section(edge.line_value(none)))
    assert "2 settled entries had none and are left out" in text


def test_a_plans_closing_lines_are_the_reports_own(tmp_path):
    """One closing line (adapters/closing.py) for the report's entries, the plan's trades as the
    report grades them and ``kakashi plan show``, and the engine's plan watch: where the database
    has no closing quote and the catalog's candles have one, all read the candle. (The plan read
    the stored quotes only: no close for C1 and B2, so its CLV was B1's alone, +6.30¢ against the
    report's +0.63¢ over all three.)"""
    from kakashi_tui.adapters import queries
    from kakashi_tui.core.plan import measure, parse_sample
    from kakashi_tui.trading.config import EngineConfig
    from kakashi_tui.trading.engine import Engine
    from tests.integration.test_engine import FakeSource

    s = Store(tmp_path / "k.db")
    s.add_plan(
        created_ms=T0 - MIN,
        hypothesis="h",
        settings="{}",
        beliefs="b",
        sample=parse_sample("2 trades"),
        kill=(),
        success=(),
    )
    s.close()
    three_entries(tmp_path / "k.db")
    con = closes_from_candles(tmp_path)
    try:
        entries, _ = edge.gather_entries(con, None, None, T0 + 20 * MIN, {}, tmp_path / "catalog")
        plan = queries.latest_plan(con)
        assert plan is not None
        trades = queries.plan_trades(con, plan, candles=closing.Candles(closing.catalog_of(tmp_path / "k.db")))
        graded = "\n".join(plan_lines(con, closing.Candles(tmp_path / "catalog")))
    finally:
        con.close()
    report = {e.ticker: e.close for e in entries}
    assert report == {"B1": pytest.approx(0.50), "B2": pytest.approx(0.47), "C1": pytest.approx(0.28)}
    assert {t.ticker: t.close for t in trades} == report
    clv = measure(trades, groups=("clv",))["clv"]
    assert clv == pytest.approx(edge.line_value(entries).fees.estimate * 100) == pytest.approx(19 / 30)  # type: ignore[union-attr]
    assert "\n| 3 | n/a | +0.63c | " in graded  # (the report's plan section: trades, days, mean CLV after fees)
    # the engine's watch of the plan reads the same (its catalog: [catalog] dir, else beside the database)
    store = Store(tmp_path / "k.db")
    try:
        watch = Engine(store, FakeSource([]), [], EngineConfig()).plan_watch
        assert watch is not None and {t.ticker: t.close for t in watch.trades.values()} == report
    finally:
        store.close()


def test_the_mean_pnl_interval_resamples_events_not_trades(tmp_path):
    """The Trades table's interval: trades of one event move together, so trades all in one event
    give no interval at all, where resampling trades gave a narrow one."""
    _run(tmp_path / "k.db", "oracle", 300)
    d = gather(tmp_path / "k.db")
    assert len(d.pnls) >= 2 and d.ci is not None  # each simulated market its own event
    one = gather(tmp_path / "k.db")
    one.events_of = {t.ticker: "ONE-EVENT" for t in one.closed}
    assert one.ci is None
    assert "| n/a (trades in fewer than 2 events) |" in render_markdown(one, T0)
