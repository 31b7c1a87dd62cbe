"""Issue #23, item 6: markouts read from a hand-made database (YES and NO sides, a sale, a
one-sided quote, a horizon held at the market's close, pending horizons, the closing line),
worked out by hand; the post-mortem's adverse-selection table and its words; the fills' role
where the table records it; and the as-of read's query plan (a walk back along the time index)."""

import sqlite3
from decimal import Decimal
from types import SimpleNamespace

import pytest

from kakashi_tui.adapters import queries
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.ledger import Kind, LedgerEntry, buy_entries, sell_entries
from kakashi_tui.core.models import Fill, Market, Side
from kakashi_tui.frontends.report import markouts
from kakashi_tui.frontends.report.postmortem import gather, render_markdown
from tests.conftest import SIM_START_MS

T0 = SIM_START_MS
MIN = 60_000
END = T0 + 60 * MIN  # the last tick: the data's end


def _snap(s, ticker, ts, bid_cc, ask_cc):
    s.db.execute_sql(
        "INSERT INTO snapshots (ticker, ts, fetched_ts, yes_bid_cc, yes_ask_cc, last_cc, volume_hundredths, book,"
        " source) VALUES (?, ?, 0, ?, ?, NULL, 0, '', 'x')",
        (ticker, ts, bid_cc, ask_cc),
    )


def _fill(s, ts, ticker, side, action, n, value_cc, fee_cc):
    """A fill as the engine books it (its row and its ledger entries), so the ledger verifies."""
    f = Fill(
        ticker=ticker,
        ts=ts,
        side=Side(side),
        action=action,
        requested=Decimal(n),
        contracts=Decimal(n),
        value_cc=value_cc,
        fee_cc=fee_cc,
        levels=(),
    )
    fid = s.insert_fill(f, None)
    s.append_ledger((buy_entries if action == "buy" else sell_entries)(f, fid))


def worked_run(path):
    """Market A (event EA) closes at T0+40 min and settles YES at T0+50; market B (event EB) trades on.

    F1: 10 YES of A bought at 0.42 at T0 (fee 1,700: 170 a contract);
    F2: the 10 sold at 0.38 at T0+25 min (fee 1,600: 160 a contract);
    F3: 5 NO of B bought at 0.55 at T0+45 min (fee 800: 160 a contract).
    Z quotes at every read time: an as-of read must skip other markets' rows."""
    s = Store(path)
    with s.atomic():
        s.append_ledger([LedgerEntry(ts=T0, kind=Kind.DEPOSIT, amount_cc=10_000_000, key="deposit:initial")])
        s.add_event(T0, "deposit", "10000000 cc")
        s.upsert_markets(
            [
                Market(ticker="A", event_ticker="EA", status="active", close_ts=T0 + 40 * MIN),
                Market(ticker="B", event_ticker="EB", status="active", close_ts=T0 + 24 * 60 * MIN),
            ],
            T0,
        )
        for ts, bid, ask in (
            (T0, 4000, 4200),  # mid 0.41
            (T0 + 30_000, 4300, 4500),  # mid 0.44
            (T0 + 3 * MIN, 4500, None),  # one-sided: no mid
            (T0 + 20 * MIN, 3900, 4100),  # mid 0.40
            (T0 + 35 * MIN, 4700, 4900),  # mid 0.48: the closing line
            (T0 + 45 * MIN, 100, 9_900),  # after the close: never read
        ):
            _snap(s, "A", ts, bid, ask)
        for ts, bid, ask in (
            (T0 + 44 * MIN, 4500, 4700),  # YES mid 0.46: NO 0.54
            (T0 + 45 * MIN + 30_000, 4000, 4200),  # YES 0.41: NO 0.59
            (T0 + 49 * MIN, 4900, 5100),  # YES 0.50: NO 0.50
        ):
            _snap(s, "B", ts, bid, ask)
        for m in (0, 1, 5, 25, 26, 30, 40, 45, 46, 50, 60):
            _snap(s, "Z", T0 + m * MIN, 100, 200)
        _fill(s, T0, "A", "yes", "buy", 10, 42_000, 1_700)
        _fill(s, T0 + 25 * MIN, "A", "yes", "sell", 10, 38_000, 1_600)
        _fill(s, T0 + 45 * MIN, "B", "no", "buy", 5, 27_500, 800)
        s.record_outcome(Market(ticker="A", status="determined", result="yes"), T0 + 50 * MIN)
        for i, ts in enumerate((T0, T0 + 30 * MIN, END)):
            s.insert_tick(
                tick=i + 1,
                ts=ts,
                wall_ms=0,
                saved=0,
                rejected=0,
                decisions=0,
                fills=0,
                settled=0,
                errors=0,
                latency_ms=0,
                cash_cc=10_000_000,
                equity_cc=10_000_000,
            )
    s.close()


# Each fill's markout (cc a contract) and after fees, by horizon, worked by hand:
#   F1 YES buy at 4,200: at fill mid 4,100 (-100); 1 min: 4,400 (+200); 5 min: one-sided (no mid);
#     30 min: 4,000 (-200); close: 4,800 (+600). Fee 170.
#   F2 YES sale at 3,800: at fill, 1 and 5 min: mid 4,000 (-200); 30 min is T0+55, held at A's close
#     (T0+40): 4,800 (-1,000); close 4,800 (-1,000). Fee 160.
#   F3 NO buy at 5,500: at fill NO mid 5,400 (-100); 1 min: 5,900 (+400); 5 min: 5,000 (-500);
#     30 min is T0+75, past the data's end (T0+60): pending; close: B still trades: pending. Fee 160.
WORKED = {
    1: ({"at fill": -100, "1 min": 200, "30 min": -200, "close": 600}, 170, {"5 min": markouts.NO_MID}),
    2: ({"at fill": -200, "1 min": -200, "5 min": -200, "30 min": -1_000, "close": -1_000}, 160, {}),
    3: (
        {"at fill": -100, "1 min": 400, "5 min": -500},
        160,
        {"30 min": markouts.PENDING, "close": markouts.PENDING},
    ),
}


def test_markouts_worked_by_hand(tmp_path):
    worked_run(tmp_path / "k.db")
    con = sqlite3.connect(tmp_path / "k.db")
    try:
        got = markouts.gather_markouts(con, None, None, END)
        assert [f.fill_id for f in markouts.gather_markouts(con, T0 + MIN, T0 + 30 * MIN, END)] == [2]  # the period
    finally:
        con.close()
    assert [(f.ticker, f.event, f.side, f.action, f.role) for f in got] == [
        ("A", "EA", "yes", "buy", "taker"),
        ("A", "EA", "yes", "sell", "taker"),
        ("B", "EB", "no", "buy", "taker"),
    ]
    for f in got:
        gross, fee, missing = WORKED[f.fill_id]
        assert f.gross == gross, f.fill_id
        assert f.net == {k: v - fee for k, v in gross.items()}, f.fill_id
        assert f.missing == missing, f.fill_id


def test_the_adverse_selection_table_and_its_words(tmp_path):
    worked_run(tmp_path / "k.db")
    d = gather(tmp_path / "k.db")  # the whole report's read: the ledger verifies, the fills are the period's
    md = render_markdown(d, T0)
    head = "## Markouts: adverse selection, maker vs taker"
    assert head in md
    text = md.split(head)[1].split("\n## ")[0]
    # at fill: -100, -200 (EA), -100 (EB): mean -133.33; by event EA EA -150, EA EB -133.33, EB EB -100.
    # After fees: -270, -360, -260: mean -296.67, EA -315, EB -260
    assert "| taker | at fill | 3 | 2 | -1.33¢ | -1.50¢ to -1.00¢ | -2.97¢ | -3.15¢ to -2.60¢ | 0 | 0 |" in text
    # 1 min: +200, -200 (EA: 0), +400 (EB); after fees +30, -360 (EA: -165), +240
    assert "| taker | 1 min | 3 | 2 | +1.33¢ | +0.00¢ to +4.00¢ | -0.30¢ | -1.65¢ to +2.40¢ | 0 | 0 |" in text
    # 5 min: F1's quote is one-sided; -200 (EA), -500 (EB); after fees -360, -660
    assert "| taker | 5 min | 2 | 2 | -3.50¢ | -5.00¢ to -2.00¢ | -5.10¢ | -6.60¢ to -3.60¢ | 0 | 1 |" in text
    # 30 min: -200, -1,000, both EA (no interval); F3's is pending; after fees -370, -1,160
    assert "| taker | 30 min | 2 | 1 | -6.00¢ | n/a (one event) | -7.65¢ | n/a (one event) | 1 | 0 |" in text
    # close: +600, -1,000 (EA); B still trades; after fees +430, -1,160
    assert "| taker | close | 2 | 1 | -2.00¢ | n/a (one event) | -3.65¢ | n/a (one event) | 1 | 0 |" in text
    # The mid's move since the fill: the close and 30 min have one event only; at 5 min F2 0 (EA),
    # F3 -400 (EB): mean -200, by event -400 to 0. Their markout at the fill: (-200 - 100) / 2
    assert (
        "Taker fills: the mid's move since they traded, 5 min after the fill, -2.00¢ a contract (95% CI -4.00¢ "
        "to +0.00¢, 2 fills in 2 events), cannot be told from zero: no adverse selection shown, and no "
        "information either; their markout at the fill, -1.50¢, is the half-spread crossed." in text
    )
    assert "No maker fills" in text
    # F2 (T0+25 min) read its own quote at 1 min, with no tick between (ticks at T0, T0+30, T0+60)
    assert (
        "The data's quotes come a tick apart (a median of 30 min here): a horizon with no tick between the fill "
        "and it reads the quote the fill traded on, so it measures nothing. Taker fills at 1 min: 1 of 3 read the "
        "fill-time quote (counted in its mean)." in text
    )
    assert "(the last tick, 2026-01-05 01:00 UTC)" in text
    assert "This database is a replay's" in text  # its ticks' wall times are not its engine's: a replay
    # the chart draws the same means: taker's markout (¢) at each horizon, and after fees
    import matplotlib.pyplot as plt

    from kakashi_tui.frontends.report.charts import markout_figure

    fig = markout_figure(d)
    try:
        assert [c.get_label() for c in fig.axes[0].containers] == [
            "taker markout (n = 3)",
            "taker after fees (n = 3)",
        ]
        ys = [list(c.lines[0].get_ydata()) for c in fig.axes[0].containers]
        assert ys[0] == pytest.approx([-4 / 3, 4 / 3, -3.5, -6.0, -2.0])
        assert ys[1] == pytest.approx([-8.9 / 3, -0.3, -5.1, -7.65, -3.65])
    finally:
        plt.close(fig)


def test_a_horizon_with_no_tick_since_the_fill_is_blind(tmp_path):
    """F1's 1 min reads a newer quote (T0+30 s); F2's (T0+26 min) reads its own (T0+20 min) with no tick
    between: blind. F2's 5 min (T0+30) is a tick's time: the engine saw the quote unchanged, a measurement;
    F3's horizons read newer quotes."""
    worked_run(tmp_path / "k.db")
    con = sqlite3.connect(tmp_path / "k.db")
    try:
        got = markouts.gather_markouts(con, None, None, END)
        assert markouts.gather_markouts(con, None, None, END, tick_ts=[T0]) != got  # no tick after T0: more blind
    finally:
        con.close()
    assert [f.blind for f in got] == [set(), {"1 min"}, set()]


def _blind(role, event, at_fill, later, blind=("1 min",)):
    f = _made(role, event, at_fill, later)
    f.gross["5 min"], f.net["5 min"] = later + 50, later + 40
    f.blind.update(blind)
    return f


def test_a_horizon_blind_for_every_fill_is_not_shown_as_a_measurement():
    """A simulator stepping 10 minutes: every fill's 1 min reads its own quote. The row says so in place of
    figures, the chart leaves it out and says so where it would be, and the mid's move after the fill skips it."""
    import matplotlib.pyplot as plt

    from kakashi_tui.frontends.report.charts import markout_figure

    fills = [_blind("taker", e, -100, -100) for e in ("E1", "E2", "E3")]
    text = "\n".join(markouts.section(fills, END, tick_gap=600_000))
    assert "| taker | 1 min | 3 | 3 | = fill-time mid: no quote between | — | — | — | 0 | 0 |" in text
    assert "| taker | 5 min | 3 | 3 | -0.50¢ |" in text  # measured
    assert "(a median of 10 min here)" in text
    assert 'Taker fills at 1 min: none saw a newer quote, so those rows say "= fill-time mid: no quote between".' in (
        text
    )
    [r] = markouts.by_role(fills)
    assert r.drift is not None and r.drift.label == "5 min"  # not the blind 1 min
    fig = markout_figure(SimpleNamespace(markouts=fills))
    try:
        assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(markouts.mk.LABELS)
        [said] = [t for t in fig.axes[0].texts if "no quote" in t.get_text()]  # at 1 min alone, in the plot
        assert said.get_text() == "no quote\nbetween:\n= fill-time\nmid" and said.get_position()[0] == 1
        xs = [list(c.lines[0].get_xdata()) for c in fig.axes[0].containers]
        assert all(round(x) != 1 for line in xs for x in line)  # no point drawn at 1 min
    finally:
        plt.close(fig)


def test_the_fills_role_is_read_where_the_table_has_it(tmp_path):
    """Resting orders' fills (#23) carry a role: F3 a maker's, its row first; before them every fill is a taker's."""
    worked_run(tmp_path / "k.db")
    with sqlite3.connect(tmp_path / "k.db") as c:  # (the column since schema 10; NULL before: a taker's)
        c.execute("UPDATE fills SET role = 'maker' WHERE ticker = 'B'")
    con = sqlite3.connect(tmp_path / "k.db")
    try:
        got = markouts.gather_markouts(con, None, None, END)
    finally:
        con.close()
    assert [f.role for f in got] == ["taker", "taker", "maker"]
    text = "\n".join(markouts.section(got, END))
    assert "| maker | at fill | 1 | 1 | -1.00¢ | n/a (one event) | -2.60¢ | n/a (one event) | 0 | 0 |" in text
    assert text.index("| maker | at fill") < text.index("| taker | at fill")
    assert "Maker fills: the mid's move after the fill has no interval yet (1 fill(s)" in text
    assert "No maker fills" not in text


def _made(role, event, at_fill, later):
    f = markouts.FillMarkouts(0, T0, event, event, "yes", "buy", role)
    f.gross.update({"at fill": at_fill, "1 min": later})
    f.net.update({"at fill": at_fill - 10, "1 min": later - 10})
    return f


def test_the_words_say_adverse_selection_only_when_the_interval_is_below_zero():
    """Takers whose mid moved 150 to 300 cc against them in every event were adversely selected;
    makers whose mid moved their way were on the side the market moved to."""
    fills = [_made("taker", e, -100, later) for e, later in (("E1", -250), ("E2", -400), ("E1", -300))]
    fills += [_made("maker", e, 100, later) for e, later in (("E1", 300), ("E2", 200))]
    words = [markouts.meaning(r) for r in markouts.by_role(fills)]
    assert words[0].startswith("Maker fills were on the side the market moved to: 1 min after the fill the mid had")
    assert "+1.50¢ a contract their way" in words[0] and "is the half-spread earned" in words[0]
    # taker moves -150, -300, -200: mean -216.67; by event E1 -175, E2 -300
    assert words[1].startswith("**Taker fills were adversely selected**: 1 min after the fill the mid had moved -2.17¢")
    assert "(95% CI -3.00¢ to -1.75¢, 3 fills in 2 events)" in words[1]


def test_a_makers_negative_markout_at_the_fill_is_not_called_a_spread_crossed():
    """A maker never crosses the spread: a negative markout at its fill means the market came
    through its resting price (the post-mortem of a post-mode run said "the half-spread crossed")."""
    fills = [_made("maker", e, -50, later) for e, later in (("E1", 100), ("E2", -100), ("E3", 0))]
    (words,) = [markouts.meaning(r) for r in markouts.by_role(fills)]
    assert "crossed" not in words
    assert "their markout at the fill, -0.50¢, is below zero: the mid had already moved through their price" in words


def test_the_as_of_reads_query_plan(tmp_path):
    """No (ticker, ts) index is needed (nor wanted: data_schema.md, ``snapshots``): the read walks
    ``snapshots_ts`` back from its time, in the index's order, with no sort of its own."""
    Store(tmp_path / "k.db").close()
    con = sqlite3.connect(tmp_path / "k.db")
    try:
        plan = " ".join(r[-1] for r in con.execute("EXPLAIN QUERY PLAN " + queries.QUOTE_AS_OF_SQL, ("A", T0)))
    finally:
        con.close()
    assert "USING INDEX snapshots_ts (ts<?)" in plan and "B-TREE" not in plan and "SCAN" not in plan, plan


def test_a_seeded_runs_takers_mark_out_at_the_fill_at_minus_the_half_spread_or_worse(tmp_path):
    """The engine's own fills: each took the ask (NO: one minus the bid) or deeper, so at the fill its
    markout is minus the half-spread of the quote it traded on (the one in force when its order
    became active, the order's latency after the decision), or below it where it walked the book."""
    from kakashi_tui.trading.config import KakashiConfig, SimSection
    from tests.conftest import make_engine

    e = make_engine(tmp_path / "k.db", seed=7, cfg=KakashiConfig(sim=SimSection(markets=10)))
    for _ in range(120):
        e.tick()
    e.store.close()
    con = sqlite3.connect(tmp_path / "k.db")
    try:
        got = markouts.gather_markouts(con, None, None, queries.last_tick_ts(con))
        spread = dict(
            con.execute(
                "SELECT f.id, s.yes_ask_cc - s.yes_bid_cc FROM fills f JOIN snapshots s ON s.ticker = f.ticker"
                " AND s.ts = (SELECT MAX(ts) FROM snapshots WHERE ticker = f.ticker AND ts <= f.ts)"
            )
        )
    finally:
        con.close()
    assert len(got) == len(spread) >= 5 and {f.role for f in got} == {"taker"}
    at_fill = {f.fill_id: f.gross["at fill"] for f in got}
    assert all(at_fill[i] <= -spread[i] / 2 for i in spread)
    assert sum(at_fill[i] == -spread[i] / 2 for i in spread) >= len(spread) // 2  # most took the touch alone
