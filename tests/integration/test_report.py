"""Post-mortem figures against hand-computed ledgers, charts, sections and CLI."""

import sqlite3
import subprocess
import sys
from decimal import Decimal as D

import pytest

from kakashi_tui.adapters.store.rows import read_ledger
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.ledger import Kind, LedgerEntry
from kakashi_tui.core.models import Market, Side
from kakashi_tui.frontends.report.postmortem import export_postmortem, gather, parse_day, render_markdown
from tests.conftest import SIM_START_MS, make_engine

T0 = SIM_START_MS
SECTIONS = [
    "## Period",
    "## Bankroll",
    "## Trades",
    "## Estimates: Brier score on settled markets",
    "## Predicted EV against realised PnL",
    "## Rejected decisions by reason",
    "## Guardrail breaches",
    "## Kill-switch and daily-stop events",
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
    assert d.closed == [] and d.fills == [] and d.ci is None
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
    again = export_postmortem(tmp_path / "k.db", tmp_path / "reports", T0)
    assert again.path != out.path  # a second export in the same second gets its own folder
    assert again.path.read_text().split("## Verdict")[1] == text.split("## Verdict")[1]  # seeded: same CI


def test_report_cli_and_bad_dates(tmp_path):
    db = tmp_path / "k.db"
    single_trade_db(db)
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "kakashi_tui", "report", "--db", str(db), *a],
        capture_output=True,
        text=True,
        timeout=120,
    )
    p = run("--out", str(tmp_path / "r"), "--no-charts")
    assert p.returncode == 0 and "post-mortem written to" in p.stdout
    p = run("--since", "yesterday")
    assert p.returncode == 2 and p.stderr.startswith("kakashi: error: bad date") and "Traceback" not in p.stderr
    p = subprocess.run(
        [sys.executable, "-m", "kakashi_tui", "report", "--db", str(tmp_path / "none.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
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
    assert d.cash.balanced and d.breaches == []
    assert d.end_cash == acct.cash_cc
    assert d.realized_cc == acct.realized_cc
    open_cost = sum(p.cost_cc for p in acct.open_positions())
    assert d.cash.start_cash + d.cash.deposits + d.realized_cc - open_cost == acct.cash_cc
    md = render_markdown(d, T0)
    from kakashi_tui.core.money import fmt_cc

    assert f"= ending cash **{fmt_cc(acct.cash_cc)}** ✓" in md
    # a period that starts mid-run reconciles too (the start cash and open cost carried in)
    mid = d.equity[len(d.equity) // 2][0]
    part = gather(tmp_path / "k.db", since_ms=mid)
    assert part.cash.balanced and part.end_cash == acct.cash_cc
    con = sqlite3.connect(tmp_path / "k.db")
    try:
        assert part.cash.start_cash == cash_book(list(read_ledger(con)), None, mid - 1).end_cash
    finally:
        con.close()


def test_a_cash_mismatch_is_shown(tmp_path):
    db = tmp_path / "k.db"
    single_trade_db(db)
    d = gather(db)
    assert d.cash.balanced
    from dataclasses import replace

    d.cash = replace(d.cash, end_cash=d.cash.end_cash + 100)  # a cent gone astray: the line says where
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


def _brier_data(pairs):
    from collections import Counter

    from kakashi_tui.frontends.report.postmortem import ReportData

    return ReportData(
        since_ms=None,
        until_ms=None,
        first_ts=None,
        last_ts=None,
        start_equity=0,
        end_equity=0,
        end_cash=0,
        equity=[],
        fills=[],
        closed=[],
        fees_cc=0,
        trades=[],
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


def test_report_refuses_a_backwards_period(tmp_path):
    from kakashi_tui.core.errors import ConfigError

    db = tmp_path / "k.db"
    single_trade_db(db)  # first record 2026-01-05
    with pytest.raises(ConfigError, match="before --since"):
        gather(db, since_ms=parse_day("2026-01-05"), until_ms=parse_day("2026-01-04", end=True))
    with pytest.raises(ConfigError, match="before this database's first record"):
        gather(db, until_ms=parse_day("2026-01-03", end=True))
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "kakashi_tui", "report", "--db", str(db), "--out", str(tmp_path / "r"), *a],
        capture_output=True,
        text=True,
        timeout=120,
    )
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
