"""Post-mortem figures against hand-computed ledgers, charts, sections and CLI."""

import subprocess
import sys

from decimal import Decimal as D

import pytest

from kakashi_tui.adapters.store import Store
from kakashi_tui.core.ledger import Kind, LedgerEntry
from kakashi_tui.core.models import Market, Side
from kakashi_tui.report import export_postmortem, gather, parse_day, render_markdown
from tests.conftest import SIM_START_MS, make_engine

T0 = SIM_START_MS
SECTIONS = ["## Period", "## Bankroll", "## Trades", "## Estimates: Brier score on settled markets",
            "## Predicted EV against realised PnL", "## Rejected decisions by reason", "## Guardrail breaches",
            "## Kill-switch and daily-stop events", "## Verdict", "## What went well", "## What went wrong",
            "## What to change"]


def entry(ts, kind, amount, key, ticker="T", side=Side.YES, contracts=0):
    return LedgerEntry(ts=ts, kind=kind, amount_cc=amount, key=key, ticker=ticker, side=side, contracts=D(contracts))


def single_trade_db(path):
    """$1,000 deposit; buy 10 YES @ 0.40 (fee 17c); it settles YES: +$10.00."""
    s = Store(path)
    with s.atomic():
        s.append_ledger([
            LedgerEntry(ts=T0, kind=Kind.DEPOSIT, amount_cc=10_000_000, key="deposit:initial"),
            entry(T0 + 60_000, Kind.BUY, -40_000, "fill:1:cost", contracts=10),
            entry(T0 + 60_000, Kind.BUY_FEE, -1_700, "fill:1:fee"),
            entry(T0 + 120_000, Kind.SETTLE, 100_000, "settle:T:yes", contracts=-10),
        ])
        for i, (eq, cash) in enumerate([(10_000_000, 10_000_000), (9_958_300, 9_958_300),
                                        (10_058_300, 10_058_300)]):
            s.insert_tick(tick=i + 1, ts=T0 + 60_000 * i, wall_ms=0, saved=0, rejected=0, decisions=0, fills=0,
                          settled=0, errors=0, latency_ms=0, cash_cc=cash, equity_cc=eq)
        s.record_outcome(Market(ticker="T", status="determined", result="yes"), T0 + 120_000)
        s.db.execute_sql("INSERT INTO estimates (ticker, ts, p_hat, source) VALUES ('T', ?, 0.6, 'x')", (T0,))
        s.db.execute_sql("INSERT INTO snapshots (ticker, ts, fetched_ts, yes_bid_cc, yes_ask_cc, last_cc,"
                         " volume_hundredths, book, source) VALUES ('T', ?, 0, 3800, 4200, NULL, 0, '', 'x')",
                         (T0 + 60_000,))
        s.db.execute_sql("INSERT INTO fills (decision_id, ts, ticker, side, action, requested_hundredths,"
                         " contracts_hundredths, value_cc, fee_cc, levels) VALUES (NULL, ?, 'T', 'yes', 'buy', 1000,"
                         " 1000, 40000, 1700, '[]')", (T0 + 60_000,))
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
    assert "| $1,000.00 | $1,005.83 | $1,005.83 | $5.83 | $4.17 |" in md
    assert "| 1 | 1 | 1 | 0 | $0.17 | $5.83 | $5.83 | n/a (fewer than 2 trades) |" in md
    assert "**0 breaches.**" in md and "Too few closed trades (1 < 30)" in md
    assert "scored better than the market price" in md


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
    run = lambda *a: subprocess.run([sys.executable, "-m", "kakashi_tui", "report", "--db", str(db), *a],
                                    capture_output=True, text=True, timeout=120)
    p = run("--out", str(tmp_path / "r"), "--no-charts")
    assert p.returncode == 0 and "post-mortem written to" in p.stdout
    p = run("--since", "yesterday")
    assert p.returncode == 2 and p.stderr.startswith("kakashi: error: bad date") and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "kakashi_tui", "report", "--db", str(tmp_path / "none.db")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "no database" in p.stderr
