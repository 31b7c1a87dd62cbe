"""Post-mortem figures against hand-computed ledgers, charts, sections and CLI."""

import itertools
import re
import sqlite3
from decimal import Decimal as D

import pytest

from kakashi_tui.adapters.store.rows import read_ledger
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.ledger import Kind, LedgerEntry
from kakashi_tui.core.models import Market, Side
from kakashi_tui.frontends.report.postmortem import export_postmortem, gather, parse_day, render_markdown
from tests.clirun import in_process
from tests.conftest import SIM_START_MS, make_engine

T0 = SIM_START_MS
SECTIONS = [
    "## Period",
    "## Bankroll",
    "## Performance summary",
    "## Trades",
    "## Estimates: Brier score on settled markets",
    "## Predicted EV against realised PnL",
    "## Rejected decisions by reason",
    "## Guardrail breaches",
    "## Kill-switch and daily-stop events",
    "## Plan (registered before the evidence)",
    "## Verdict",
    "## What went well",
    "## What went wrong",
    "## What to change",
]


def entry(ts, kind, amount, key, ticker="T", side=Side.YES, contracts=0):
    return LedgerEntry(ts=ts, kind=kind, amount_cc=amount, key=key, ticker=ticker, side=side, contracts=D(contracts))


def single_trade_db(path):
    """$1,000 deposit; buy 10 YES @ 0.40 (fee 17c); it settles YES: +$10.00."""
    s = Store(path)
    with s.atomic():
        s.append_ledger(
            [
                LedgerEntry(ts=T0, kind=Kind.DEPOSIT, amount_cc=10_000_000, key="deposit:initial"),
                entry(T0 + 60_000, Kind.BUY, -40_000, "fill:1:cost", contracts=10),
                entry(T0 + 60_000, Kind.BUY_FEE, -1_700, "fill:1:fee"),
                entry(T0 + 120_000, Kind.SETTLE, 100_000, "settle:T:yes", contracts=-10),
            ]
        )
        for i, (eq, cash) in enumerate([(10_000_000, 10_000_000), (9_958_300, 9_958_300), (10_058_300, 10_058_300)]):
            s.insert_tick(
                tick=i + 1,
                ts=T0 + 60_000 * i,
                wall_ms=0,
                saved=0,
                rejected=0,
                decisions=0,
                fills=0,
                settled=0,
                errors=0,
                latency_ms=0,
                cash_cc=cash,
                equity_cc=eq,
            )
        s.record_outcome(Market(ticker="T", status="determined", result="yes"), T0 + 120_000)
        s.add_event(T0, "deposit", "10000000 cc")  # as the engine records its first deposit
        s.db.execute_sql("INSERT INTO estimates (ticker, ts, p_hat, source) VALUES ('T', ?, 0.6, 'x')", (T0,))
        s.db.execute_sql(
            "INSERT INTO snapshots (ticker, ts, fetched_ts, yes_bid_cc, yes_ask_cc, last_cc,"
            " volume_hundredths, book, source) VALUES ('T', ?, 0, 3800, 4200, NULL, 0, '', 'x')",
            (T0 + 60_000,),
        )
        s.db.execute_sql(
            "INSERT INTO fills (decision_id, ts, ticker, side, action, requested_hundredths,"
            " contracts_hundredths, value_cc, fee_cc, levels) VALUES (NULL, ?, 'T', 'yes', 'buy', 1000,"
            " 1000, 40000, 1700, '[]')",
            (T0 + 60_000,),
        )
    s.close()


def test_single_trade_figures(tmp_path):
    db = tmp_path / "k.db"
    single_trade_db(db)
    d = gather(db)
    assert d.start_equity == 10_000_000 and d.end_equity == 10_058_300 and d.end_cash == 10_058_300
    assert [c.pnl_cc for c in d.closed] == [58_300] and d.wins == 1
    assert d.fees_cc == 1_700
    assert d.ci is None  # one trade: no interval
    assert (d.drawdown.depth, d.drawdown.peak_ts, d.drawdown.trough_ts) == (41_700, T0, T0 + 60_000)
    assert d.brier_model == pytest.approx(0.16) and d.brier_market == pytest.approx(0.36)  # mid 0.40
    assert d.breaches == []
    md = render_markdown(d, T0)
    for s in SECTIONS:
        assert s in md
    assert "| $1,000.00 | $1,005.83 | $1,005.83 | +$5.83 | $4.17 |" in md
    assert "| 1 | 1 | 1 | 0 | $0.17 | +$5.83 | $5.83 | n/a (fewer than 2 trades) |" in md
    assert (
        "Cash reconciles to the cent: starting bankroll $1,000.00 + realised PnL +$5.83 = ending cash **$1,005.83** ✓"
    ) in md
    assert "**0 breaches.**" in md and "Too few closed trades (1 < 30)" in md
    # one settled market: p̂ 0.6 beat the mid 0.4 on it, but one market proves nothing
    assert "1 settled market: too few to compare" in md and "scored better" not in md


def test_empty_period(tmp_path):
    db = tmp_path / "k.db"
    single_trade_db(db)
    d = gather(db, since_ms=parse_day("2030-01-01"), until_ms=parse_day("2030-01-07", end=True))
    assert not d.closed and d.fills == [] and d.ci is None
    md = render_markdown(d, T0)
    for s in SECTIONS:
        assert s in md
    assert "No closed trades in this period" in md
    assert "2030-01-01 00:00 UTC to 2030-01-07 23:59 UTC" in md


def test_breaches_are_found_and_reported(tmp_path):
    db = tmp_path / "k.db"
    single_trade_db(db)
    s = Store(db)
    with s.atomic():
        s.add_event(T0 + 30_000, "kill_switch", "operator")  # the buy at T0+60s came after the kill
    s.close()
    d = gather(db)
    assert len(d.breaches) == 1 and "kill switch" in d.breaches[0]
    assert "**1 breach(es). This must be zero" in render_markdown(d, T0)


def test_export_writes_markdown_and_valid_pngs(tmp_path):
    from PIL import Image

    e = make_engine(tmp_path / "k.db")
    for _ in range(300):
        e.tick()
    e.store.close()
    out = export_postmortem(tmp_path / "k.db", tmp_path / "reports", T0)
    assert out.path.name == "postmortem.md" and out.path.parent.parent == tmp_path / "reports"
    text = out.path.read_text()
    for s in SECTIONS:
        assert s in text
    for name in ("bankroll.png", "drawdown.png", "edge_hist.png", "calibration.png"):
        with Image.open(out.path.parent / name) as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] > 300
    assert "**0 breaches.**" in text
    again = export_postmortem(tmp_path / "k.db", tmp_path / "reports", T0, charts=False)
    assert again.path != out.path  # a second export in the same second gets its own folder
    # seeded: the same figures and CIs from the verdict on (the second drew no charts, so it lists none)
    figures = lambda md: [part for part in md.split("## Verdict")[1].split("\n## ") if not part.startswith("Charts")]  # noqa: E731
    assert figures(again.path.read_text()) == figures(text) and len(figures(text)) > 5


def test_report_cli_and_bad_dates(capfd, tmp_path):
    db = tmp_path / "k.db"
    single_trade_db(db)
    run = lambda *a: in_process(capfd, "report", "--db", str(db), *a)
    p = run("--out", str(tmp_path / "r"), "--no-charts")
    assert p.returncode == 0 and "post-mortem written to" in p.stdout
    p = run("--since", "yesterday")
    assert p.returncode == 2 and p.stderr.startswith("kakashi: error: bad date") and "Traceback" not in p.stderr
    p = in_process(capfd, "report", "--db", str(tmp_path / "none.db"))
    assert p.returncode == 2 and "no database" in p.stderr


# -- a post-mortem that adds up ---------------------------------------------------------
@pytest.mark.parametrize("seed", [3, 7, 11])
def test_cash_reconciles_to_the_cent_on_random_sim_runs(tmp_path, seed):
    """Start + realised PnL (every fee in it: entries, settlements, flatten sales) - cost still
    held = the ledger's cash, to the cent, over the whole run and over a part of it."""
    import random

    from kakashi_tui.frontends.report.postmortem import cash_book

    rng = random.Random(seed)
    e = make_engine(tmp_path / "k.db", seed=seed)
    flattened = 0
    for _ in range(240):
        e.tick()
        if rng.random() < 0.05:
            flattened += e.flatten()
    e.store.close()
    assert flattened > 0  # sell fees are in play
    d = gather(tmp_path / "k.db")
    acct = e.account
    assert d.period.balanced and d.breaches == []
    assert d.end_cash == acct.cash_cc
    assert d.realized_cc == acct.realized_cc
    open_cost = sum(p.cost_cc for p in acct.open_positions())
    assert d.period.start.cash_cc + d.period.deposits_cc + d.realized_cc - open_cost == acct.cash_cc
    md = render_markdown(d, T0)
    from kakashi_tui.core.money import fmt_cc

    assert f"= ending cash **{fmt_cc(acct.cash_cc)}** ✓" in md
    # a period that starts mid-run reconciles too (the start cash and open cost carried in)
    mid = d.equity[len(d.equity) // 2][0]
    part = gather(tmp_path / "k.db", since_ms=mid)
    assert part.period.balanced and part.end_cash == acct.cash_cc
    con = sqlite3.connect(tmp_path / "k.db")
    try:
        assert part.period.start.cash_cc == cash_book(list(read_ledger(con)), None, mid - 1).end.cash_cc
    finally:
        con.close()


def test_a_cash_mismatch_is_shown(tmp_path):
    db = tmp_path / "k.db"
    single_trade_db(db)
    d = gather(db)
    assert d.period.balanced
    from dataclasses import replace

    # a cent gone astray: the line says where
    d.period = replace(d.period, end=replace(d.period.end, cash_cc=d.period.end.cash_cc + 100))
    md = render_markdown(d, T0)
    assert "**Cash does not reconcile**" in md and "(off by +$0.01)" in md


def test_events_are_in_dollars(tmp_path):
    from kakashi_tui.frontends.fmt import event_text

    assert event_text("daily_stop", "equity 9698800 vs day start 10000000") == "equity $969.88 vs day start $1,000.00"
    assert event_text("day_start", "2026-01-05 equity 10000000") == "2026-01-05 equity $1,000.00"
    assert event_text("deposit", "10000000 cc") == "$1,000.00"
    assert event_text("kill_switch", "operator (cli)") == "operator (cli)"
    db = tmp_path / "k.db"
    single_trade_db(db)
    s = Store(db)
    with s.atomic():
        s.add_event(T0 + 90_000, "daily_stop", "equity 9698800 vs day start 10000000")
    s.close()
    md = render_markdown(gather(db), T0)
    assert "daily_stop equity $969.88 vs day start $1,000.00" in md and "9698800" not in md


def test_the_drawdown_stop_its_rearm_and_a_plans_kill_are_listed(tmp_path):
    """They halt trading as the kill switch and the daily stop do: the post-mortem's list of
    those events has them, in time order, in dollars (queries.REPORT_EVENT_KINDS)."""
    from kakashi_tui.core.plan import parse_sample

    db = tmp_path / "k.db"
    single_trade_db(db)
    s = Store(db)
    pid = s.add_plan(
        created_ms=T0, hypothesis="h", settings="{}", beliefs="b", sample=parse_sample("9 trades"), kill=(), success=()
    )
    with s.atomic():
        s.add_event(T0 + 90_000, "drawdown_stop", "drawdown stop: equity $899.9361 is 10.01% below its peak $1,000.00")
        s.add_event(T0 + 95_000, "drawdown_rearm", "peak restarts at equity 9698800 (cli)")
    assert s.record_plan_kill(pid, T0 + 99_000, 3, "clv_hi95 < 0 after 1 trades", "clv_hi95 -0.41c, trades 1")
    s.close()
    md = render_markdown(gather(db), T0)
    listed = [line.split(" UTC ", 1)[-1].split(" ", 1) for line in md.splitlines() if line.startswith("- 20")]
    assert [kd for kd in listed if kd[0].startswith(("drawdown", "plan"))] == [
        ["drawdown_stop", "drawdown stop: equity $899.9361 is 10.01% below its peak $1,000.00"],
        ["drawdown_rearm", "peak restarts at equity $969.88 (cli)"],
        ["plan_kill", "plan 1: clv_hi95 < 0 after 1 trades (clv_hi95 -0.41c, trades 1)"],
    ]


def _brier_data(pairs):
    from collections import Counter

    from kakashi_tui.frontends.report.books import Books
    from kakashi_tui.frontends.report.postmortem import ReportData

    return ReportData(
        since_ms=None,
        until_ms=None,
        first_ts=None,
        last_ts=None,
        start_equity=0,
        end_equity=0,
        equity=[],
        fills=[],
        period=Books([]).window(None, None),
        brier_pairs=pairs,
        reasons=Counter(),
        events=[],
        breaches=[],
    )


def test_brier_claims_better_only_when_the_interval_excludes_zero():
    import random

    from kakashi_tui.frontends.report.postmortem import brier_claim

    rng = random.Random(5)
    # 60 markets: p̂ near the truth, the market a coin flip away from it: clearly better
    sharp = []
    for _ in range(60):
        y = rng.random() < 0.5
        sharp.append((0.85 if y else 0.15, 0.5, int(y)))
    text = brier_claim(_brier_data(sharp))
    assert text.startswith("Your estimates scored better") and "below zero throughout" in text
    lo, hi = _brier_data(sharp).brier_diff_ci
    assert hi < 0
    # the case: 0.1966 against 0.1976 is noise, not "better"
    close = []
    for i in range(40):
        y = i % 2
        close.append((0.56 if y else 0.44, 0.555 if y else 0.445, y))
    close += [(0.9, 0.2, 0), (0.1, 0.8, 1)]  # two markets where p̂ was badly wrong
    d = _brier_data(close)
    assert d.brier_model != d.brier_market
    text = brier_claim(d)
    assert "cannot be told apart" in text and "includes zero" in text and "better" not in text
    # clearly worse says so
    worse = [(m, p, y) for p, m, y in sharp]
    assert brier_claim(_brier_data(worse)).startswith("Your estimates scored worse")


def test_report_refuses_a_backwards_period(capfd, tmp_path):
    from kakashi_tui.core.errors import ConfigError

    db = tmp_path / "k.db"
    single_trade_db(db)  # first record 2026-01-05
    with pytest.raises(ConfigError, match="before --since"):
        gather(db, since_ms=parse_day("2026-01-05"), until_ms=parse_day("2026-01-04", end=True))
    with pytest.raises(ConfigError, match="before this database's first record"):
        gather(db, until_ms=parse_day("2026-01-03", end=True))
    run = lambda *a: in_process(capfd, "report", "--db", str(db), "--out", str(tmp_path / "r"), *a)
    p = run("--until", "2026-01-03")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "first record" in p.stderr
    p = run("--since", "2026-01-05", "--until", "2026-01-04")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "before --since" in p.stderr
    assert not (tmp_path / "r").exists()  # nothing written


def test_charts_label_axes_and_count_calibration_bins(tmp_path):
    import matplotlib.pyplot as plt

    from kakashi_tui.frontends.report.charts import calibration_bins, figures

    db = tmp_path / "k.db"
    single_trade_db(db)
    d = gather(db)
    d.brier_pairs = [(0.62, 0.5, 1), (0.68, 0.5, 0), (0.61, 0.5, 1), (0.12, 0.2, 0)]
    assert calibration_bins(d.brier_pairs) == [(0.15, 0.0, 1), (0.65, 2 / 3, 3)]
    figs = figures(d)
    try:
        for name, fig in figs.items():
            ax = fig.axes[0]
            assert ax.get_xlabel() and ax.get_ylabel(), name
        notes = sorted(t.get_text() for t in figs["calibration.png"].axes[0].texts)
        assert notes == ["n=1", "n=3"]
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_scheduled_postmortems_write_each_period_once_across_restarts(tmp_path):
    from kakashi_tui.frontends.report.postmortem import DAY_MS, PostmortemSchedule

    e = make_engine(tmp_path / "k.db")  # sim clock from Monday 2026-01-05 00:00, a minute a tick
    for _ in range(180):  # three simulated hours of trading on the first day
        e.tick()
    e.store.close()
    db, out = tmp_path / "k.db", tmp_path / "reports"
    sched = PostmortemSchedule(db, out, "weekly")
    monday_next = T0 + 7 * DAY_MS
    # mid-week: the days so far get their paragraph, no week has ended yet
    done = sched.run(T0 + DAY_MS + 5)
    assert [(w.kind, w.path.name) for w in done] == [("summary", "2026-01-05.md")]
    para = done[0].path.read_text()
    assert para.startswith("2026-01-05 (UTC): equity $1,000.00 → ") and para.count("\n") == 1
    assert "cash reconciles to the cent" in para
    assert sched.run(T0 + DAY_MS + 10) == []  # the same period is not written twice
    # the week boundary: the weekly post-mortem with its charts, and Sunday's paragraph
    done = sched.run(monday_next + 1)
    kinds = sorted((w.kind, w.path.parent.name) for w in done)
    assert kinds == [("summary", "daily"), ("weekly", "weekly-2026-01-05")]
    weekly = out / "weekly-2026-01-05" / "postmortem.md"
    assert "2026-01-05 00:00 UTC to 2026-01-11 23:59 UTC" in weekly.read_text()
    assert (weekly.parent / "calibration.png").exists()
    # a restart (a new scheduler on the same folder) does not write the week again
    again = PostmortemSchedule(db, out, "weekly")
    assert again.run(monday_next + 5) == []
    # daily schedule: the post-mortem each day; off: nothing at all
    assert [w.kind for w in PostmortemSchedule(db, tmp_path / "d", "daily").run(T0 + DAY_MS + 1)] == [
        "daily",
        "summary",
    ]
    assert PostmortemSchedule(db, tmp_path / "o", "off").run(monday_next + 1) == []
    # a period before the database's first record is never written
    assert PostmortemSchedule(db, tmp_path / "e", "weekly").run(T0 + 1) == []


# -- one source for every figure (#19 5) -----------------------------------------------------
def _cc(text: str) -> int:
    """'+$5.83', '-$7.3442', '$1,000.00' -> centicents."""
    t = text.strip().replace(",", "").replace("$", "").replace("+", "")
    return int(D(t) * 10_000)


def _table(md: str, section: str) -> list[dict[str, str]]:
    """The first table under ``## section`` as one dict per row, keyed by the header's cells."""
    body = md.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0].splitlines()
    start = next(i for i, ln in enumerate(body) if ln.startswith("|"))
    rows = list(itertools.takewhile(lambda ln: ln.startswith("|"), body[start:]))
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in rows]
    return [dict(zip(cells[0], r, strict=True)) for r in cells[2:]]


def test_every_realised_fee_and_count_figure_is_the_ledgers(tmp_path):
    """A run with buys, flatten sales (their fees), settlements, a settlement correction and the
    same market bought again after a sale: every realised PnL, fee and closed-trade figure the
    post-mortem prints (trades table, EV table, cash line, performance summary, key figures,
    the daily paragraph) is the ledger's own, to the centicent."""
    import random

    from kakashi_tui.core.ledger import Account
    from kakashi_tui.frontends.report.postmortem import daily_summary

    db = tmp_path / "k.db"
    rng = random.Random(7)
    e = make_engine(db, seed=7)
    for _ in range(240):
        e.tick()
        if rng.random() < 0.05:
            e.flatten()
    e.store.close()
    con = sqlite3.connect(db)
    try:
        entries = list(read_ledger(con))
    finally:
        con.close()
    kinds = [x.kind for x in entries]
    buys = [(x.ticker, x.side) for x in entries if x.kind is Kind.BUY]
    # the run has every path in it
    assert Kind.SELL in kinds and Kind.SELL_FEE in kinds and Kind.SETTLE in kinds and Kind.SETTLE_FIX in kinds
    assert len(set(buys)) < len(buys)  # a market bought again after it was sold
    realised = Account.from_entries(entries).realized_cc
    fees = -sum(x.amount_cc for x in entries if x.kind in (Kind.BUY_FEE, Kind.SELL_FEE))
    closes = sum(1 for k in kinds if k in (Kind.SELL, Kind.SETTLE))  # each sale or settlement is a trade

    out = export_postmortem(db, tmp_path / "r", T0, charts=False)
    md = out.path.read_text()
    [trades] = _table(md, "Trades")
    [ev] = _table(md, "Predicted EV against realised PnL")
    assert _cc(trades["realised PnL"]) == _cc(ev["realised PnL"]) == realised  # the two tables of the issue
    assert int(trades["closed trades"]) == int(ev["closed trades"]) == closes
    assert _cc(trades["fees"]) == fees
    wins = int(trades["wins"])
    assert wins + int(trades["losses"]) == closes
    assert _cc(re.search(r"\+ realised PnL ([-+]?\$[\d,.]+)", md).group(1)) == realised
    summary = {r[""]: r for r in _table(md, "Performance summary")}
    start = summary["since start"]
    assert (_cc(start["realised PnL"]), _cc(start["fees"]), int(start["closed trades"])) == (realised, fees, closes)
    assert start["win rate"].startswith(f"{wins}/{closes} ")
    figures = dict(out.figures)
    assert figures["Closed trades"] == str(closes)
    # the day's paragraph (the whole run is on one day)
    para = daily_summary(gather(db, T0, T0 + 86_400_000 - 1), T0)
    got = re.search(
        r"realised PnL (\S+) after (\S+) in fees on \d+ fill\(s\) and (\d+) closed trade\(s\) \((\d+) won\)", para
    )
    assert (_cc(got[1]), _cc(got[2]), int(got[3]), int(got[4])) == (realised, fees, closes, wins)


class _Run:
    """A hand-made run in a real database: fills, ledger entries, results, ticks, all as Kakashi
    writes them (core.ledger's entries), so the ledger verifies."""

    def __init__(self, path, t0, wall=None):
        from kakashi_tui.core.ledger import Account

        self.s = Store(path)
        self.acct = Account()
        self.wall = wall  # ts -> wall_ms of a tick (None: a replay's 0)
        self.n_ticks = 0
        self._append([LedgerEntry(ts=t0, kind=Kind.DEPOSIT, amount_cc=10_000_000, key="deposit:initial")])
        self.s.add_event(t0, "deposit", "10000000 cc")  # as the engine records its first deposit

    def _append(self, entries):
        with self.s.atomic():
            self.s.append_ledger(entries)
        for x in entries:
            self.acct.apply(x)

    def fill(self, ts, ticker, side, action, n, price_cc, fee_cc):
        from kakashi_tui.core.ledger import buy_entries, sell_entries
        from kakashi_tui.core.models import Fill

        f = Fill(
            ticker=ticker,
            ts=ts,
            side=side,
            action=action,
            requested=D(n),
            contracts=D(n),
            value_cc=price_cc * n,
            fee_cc=fee_cc,
            levels=(),
        )
        with self.s.atomic():
            fid = self.s.insert_fill(f, None)
        self._append((buy_entries if action == "buy" else sell_entries)(f, fid))

    def result(self, ts, ticker, result, status="determined"):
        from kakashi_tui.core.ledger import settle_entries, settlement_fixes

        m = Market(ticker=ticker, status=status, result=result)
        with self.s.atomic():
            self.s.record_outcome(m, ts)
        self._append(settle_entries(self.acct.positions_in(ticker), m, ts, self.acct))
        self._append(settlement_fixes(self.acct, m, ts))

    def tick(self, ts, held_value_cc=0):
        """A tick: the ledger's cash, and equity = cash + what the open positions are marked at."""
        self.n_ticks += 1
        with self.s.atomic():
            self.s.insert_tick(
                tick=self.n_ticks,
                ts=ts,
                wall_ms=ts if self.wall else 0,
                saved=0,
                rejected=0,
                decisions=0,
                fills=0,
                settled=0,
                errors=0,
                latency_ms=0,
                cash_cc=self.acct.cash_cc,
                equity_cc=self.acct.cash_cc + held_value_cc,
            )

    def close(self):
        self.s.close()


def test_a_settlement_correction_is_in_its_trade_or_listed_apart(tmp_path):
    """Settled YES (+$5.83 after fees), amended to NO a day later (-$10.00): over the whole run
    that is one losing trade of -$4.17, not a win and a second "trade"; over the next day alone
    it is a correction of an earlier trade, in the realised PnL and said so."""
    H, DAY = 3_600_000, 86_400_000
    run = _Run(tmp_path / "k.db", T0)
    run.tick(T0)
    run.fill(T0 + H, "T", Side.YES, "buy", 10, 4_000, 1_700)
    run.result(T0 + 2 * H, "T", "yes")
    run.tick(T0 + 3 * H)
    run.result(T0 + DAY + H, "T", "no", status="amended")
    run.tick(T0 + DAY + 2 * H)
    run.close()
    d = gather(tmp_path / "k.db")
    assert d.breaches == [] and d.realized_cc == -41_700
    assert [t.pnl_cc for t in d.closed] == [-41_700] and d.wins == 0
    md = render_markdown(d, T0)
    [trades] = _table(md, "Trades")
    assert (trades["closed trades"], trades["wins"], trades["losses"], trades["realised PnL"]) == (
        "1",
        "0",
        "1",
        "-$4.17",
    )
    [ev] = _table(md, "Predicted EV against realised PnL")
    assert (ev["closed trades"], ev["realised PnL"]) == ("1", "-$4.17")
    # the day of the correction alone: no trade closed, the correction is its realised PnL
    day2 = gather(tmp_path / "k.db", since_ms=T0 + DAY, until_ms=T0 + 2 * DAY - 1)
    assert not day2.closed and day2.realized_cc == -100_000 and day2.breaches == []
    md = render_markdown(day2, T0)
    [trades] = _table(md, "Trades")
    assert (trades["closed trades"], trades["realised PnL"]) == ("0", "-$10.00")
    assert "Realised PnL includes -$10.00 of settlement corrections booked in this period to 1 trade(s)" in md
    [ev] = _table(md, "Predicted EV against realised PnL")
    assert (ev["closed trades"], ev["realised PnL"]) == ("0", "-$10.00")


def test_performance_summary_today_this_week_and_since_start(tmp_path):
    """Realised, unrealised, fees and win rate over today, this week and since the start, as of
    the report's end on the engine's clock, against figures worked out by hand."""
    from kakashi_tui.core.models import Side as S

    H, DAY = 3_600_000, 86_400_000
    prev = T0 - 7 * DAY  # the Monday before
    run = _Run(tmp_path / "k.db", prev)
    run.tick(prev)
    run.fill(prev + H, "A", S.YES, "buy", 10, 4_000, 1_700)  # last week: won +$5.83
    run.result(prev + 2 * H, "A", "yes")
    run.tick(prev + 3 * H)
    run.fill(T0 + H, "B", S.NO, "buy", 10, 5_000, 1_800)  # Monday: sold at 0.60, +$0.65
    run.fill(T0 + 2 * H, "B", S.NO, "sell", 10, 6_000, 1_700)
    run.tick(T0 + DAY)  # Tuesday: nothing held
    run.fill(T0 + 2 * DAY + H, "C", S.YES, "buy", 10, 3_000, 1_500)  # Wednesday: lost -$3.15
    run.result(T0 + 2 * DAY + 2 * H, "C", "no")
    run.fill(T0 + 2 * DAY + 3 * H, "E", S.YES, "buy", 10, 5_000, 1_800)  # still open, cost $5.18
    run.tick(T0 + 2 * DAY + 4 * H, held_value_cc=45_000)  # marked at $4.50: -$0.68 unrealised
    run.close()
    d = gather(tmp_path / "k.db", until_ms=parse_day("2026-01-07", end=True))
    assert d.breaches == []
    rows = {r[""]: r for r in _table(render_markdown(d, T0), "Performance summary")}
    cols = ("realised PnL", "unrealised PnL", "total PnL", "fees", "closed trades", "win rate")
    got = {k: tuple(r[c] for c in cols) for k, r in rows.items()}
    assert got == {
        "today (2026-01-07)": ("-$3.15", "-$0.68", "-$3.83", "$0.33", "1", "0/1 (0%)"),
        "this week (from Monday 2026-01-05)": ("-$2.50", "-$0.68", "-$3.18", "$0.68", "2", "1/2 (50%)"),
        "since start": ("+$3.33", "-$0.68", "+$2.65", "$0.85", "3", "2/3 (67%)"),
    }
    # since start, total PnL is the change in equity from the bankroll
    [bank] = _table(render_markdown(d, T0), "Bankroll")
    assert bank["change in equity"] == "+$2.65"


def test_generated_is_the_wall_clock_and_the_period_the_engines(tmp_path, no_charts):
    """A simulated run's report says when it was written on the wall clock and which simulated
    time it covers; a live run (engine time is wall time) says it once; a scheduled post-mortem
    is stamped with the wall clock, not the engine's."""
    import time

    from kakashi_tui.frontends.report.postmortem import DAY_MS, PostmortemSchedule

    e = make_engine(tmp_path / "k.db")
    for _ in range(400):
        e.tick()
    e.store.close()
    wall = parse_day("2026-12-07") + 3 * 3_600_000
    text = export_postmortem(tmp_path / "k.db", tmp_path / "r", wall, charts=False).path.read_text()
    first, last = T0 + 60_000, T0 + 400 * 60_000  # the sim's first and last tick
    assert first == parse_day("2026-01-05") + 60_000 and last == parse_day("2026-01-05") + 6 * 3_600_000 + 40 * 60_000
    assert "Generated 2026-12-07 03:00 UTC (wall clock); covers simulated time 2026-01-05 00:01 – 06:40 UTC." in text, (
        text[:400]
    )
    assert "As of 2026-01-05 06:40 UTC (simulated time)." in text
    # the scheduled post-mortem, run on the engine's clock a week on: stamped with the wall clock
    before = int(time.time() * 1000) // 60_000 * 60_000
    [_summary, weekly] = sorted(
        PostmortemSchedule(tmp_path / "k.db", tmp_path / "s", "weekly").run(T0 + 7 * DAY_MS + 1), key=lambda w: w.kind
    )
    head = weekly.path.read_text().splitlines()[2]
    stamp = parse_day(head.split()[1]) + int(head.split()[2][:2]) * 3_600_000 + int(head.split()[2][3:5]) * 60_000
    assert before <= stamp <= int(time.time() * 1000) and "(wall clock); covers simulated time" in head
    # a live run: the engine's clock is the wall clock, said once
    run = _Run(tmp_path / "live.db", T0, wall=True)
    run.tick(T0)
    run.tick(T0 + 3_600_000)
    run.close()
    text = render_markdown(gather(tmp_path / "live.db"), T0 + 4_000_000)
    assert (
        "Generated 2026-01-05 01:06 UTC; covers 2026-01-05 00:00 – 01:00 UTC (a live run: its clock is the wall clock)."
        in text
    )
    assert text.count("wall clock") == 1 and "simulated time" not in text
    # a replay (the engine ran on the recorded times): named as such
    single_trade_db(tmp_path / "replay.db")
    text = render_markdown(gather(tmp_path / "replay.db"), wall)
    assert "Generated 2026-12-07 03:00 UTC (wall clock); covers replayed time" in text


def test_the_calibration_legend_covers_no_point(tmp_path):
    """The legend sits where no bin can be: its box overlaps neither a plotted point nor the axes."""
    import matplotlib.pyplot as plt

    from kakashi_tui.frontends.report.charts import figures

    db = tmp_path / "k.db"
    single_trade_db(db)
    d = gather(db)
    # a bin in every corner, the top left one where a legend inside the axes would sit
    d.brier_pairs = [(0.05, 0.5, 1), (0.95, 0.5, 1), (0.04, 0.5, 0), (0.97, 0.5, 0), (0.02, 0.5, 1)]
    d.brier_pairs += [(0.55, 0.5, 1), (0.35, 0.5, 0)]
    figs = figures(d)
    try:
        fig = figs["calibration.png"]
        fig.tight_layout()  # as write_charts lays it out
        fig.canvas.draw()
        ax = fig.axes[0]
        legend = ax.get_legend().get_window_extent()
        assert not legend.overlaps(ax.get_window_extent())
        [dots] = ax.collections
        for x, y in ax.transData.transform(dots.get_offsets()):
            assert not legend.contains(x, y)
        # and the legend is on the figure, whole
        assert fig.bbox.contains(legend.x0, legend.y0) and fig.bbox.contains(legend.x1, legend.y1)
    finally:
        for f in figs.values():
            plt.close(f)


def test_each_chart_is_drawn_once_when_saved(tmp_path, monkeypatch):
    """tight_layout measures the text without a full draw; savefig then draws each chart once
    (a layout engine left on the figure made it draw every chart twice: half a second an export)."""
    from matplotlib.figure import Figure

    from kakashi_tui.frontends.report.charts import write_charts

    db = tmp_path / "k.db"
    single_trade_db(db)
    draws: list[Figure] = []
    draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda fig, renderer: (draws.append(fig), draw(fig, renderer))[1])
    names = write_charts(gather(db), tmp_path)
    assert len(draws) == len(names) == len(set(draws))
