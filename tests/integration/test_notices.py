"""#19: an alert for each fill and one for each UTC day's summary, from a headless run as from the
desk (journal.Notices): the log file, stderr and a real webhook on loopback. The expected alerts
are read back from the database (its fills table, its ledger), not from the code that raised them."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal

from kakashi_tui.adapters import alerts as al
from kakashi_tui.adapters.store.rows import account_of, read_ledger
from kakashi_tui.core.ledger import Kind
from kakashi_tui.core.money import fmt_cc, fmt_count, hundredths_to_count
from kakashi_tui.frontends.cli import main as cli
from kakashi_tui.frontends.fmt import fmt_signed
from kakashi_tui.trading.config import KakashiConfig, SimSection
from tests.conftest import make_engine

from .test_alerts_log import _Hook, hook_server  # noqa: F401 - a fixture

DAY_MS = 86_400_000


def expected_fill_alerts(db) -> list[str]:
    """Each fill's alert, from the fills table, in order; a paper order's with what its order says
    (issue #23: the price decided on, from its decision, beside the price filled at)."""
    import json

    with sqlite3.connect(db) as c:
        rows = c.execute(
            "SELECT f.ticker, f.side, f.action, f.contracts_hundredths, f.value_cc, f.fee_cc, f.order_id, f.role,"
            " f.levels, o.limit_cc, d.best_ask_cc, o.insert_latency_ms FROM fills f LEFT JOIN orders o"
            " ON o.id = f.order_id LEFT JOIN decisions d ON d.id = o.decision_id ORDER BY f.id"
        )
        out = []
        for ticker, side, action, h, value, fee, oid, role, levels, limit, ask, latency in rows:
            n = hundredths_to_count(h)
            price = Decimal(value) / 10_000 / n
            said = ""
            if oid is not None:
                lv = [(int(Decimal(p) * 10_000), int(Decimal(q) * 100)) for p, q in json.loads(levels)]
                avg = -(-sum(c * k for c, k in lv) // sum(k for _c, k in lv))
                said = (
                    f" (order {oid} decided @<={Decimal(limit) / 10_000:.4f} (ask {Decimal(ask) / 10_000:.4f}),"
                    f" filled @{Decimal(avg) / 10_000:.4f} {role}, {latency} ms latency)"
                )
            out.append(
                f"filled: {action} {ticker} {side.upper()} x{fmt_count(n)} @{price:.4f}, fee {fmt_cc(fee)}{said}"
            )
    return out


def expected_summary(db, day: str) -> str:
    """A UTC day's summary from the database: fills and fees from the fills table; realised PnL
    as the ledger's realised PnL at the day's end less at its start; closes (sales, settlements)
    and wins from the account the ledger folds into."""
    start = int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)
    end = start + DAY_MS
    with sqlite3.connect(db) as c:
        fills, fees = c.execute(
            "SELECT COUNT(*), COALESCE(SUM(fee_cc), 0) FROM fills WHERE ts >= ? AND ts < ?", (start, end)
        ).fetchone()
        entries = list(read_ledger(c))
    realised = (
        account_of(e for e in entries if e.ts < end).realized_cc
        - account_of(e for e in entries if e.ts < start).realized_cc
    )
    closes = [x for x in account_of(entries).closed if start <= x.ts < end and x.kind in (Kind.SELL, Kind.SETTLE)]
    wins = sum(x.pnl_cc > 0 for x in closes)
    rate = f"{wins}/{len(closes)} ({wins / len(closes):.0%})" if closes else "—"
    return (
        f"daily summary {day}: realised {fmt_signed(realised)}, fees {fmt_cc(fees)}, "
        f"fills {fills}, closed {len(closes)}, win rate {rate}"
    )


def _headless(tmp_path, ticks: int, alerts: str) -> None:
    """A headless run, ten minutes a tick from 2026-01-05 00:00 UTC (the database remembers the
    simulator's clock), with ``alerts`` as its config's [alerts] section."""
    db = tmp_path / "k.db"
    make_engine(db, cfg=KakashiConfig(sim=SimSection(step_seconds=600))).store.close()
    cfg = tmp_path / "k.toml"
    cfg.write_text(f"[sim]\nstep_seconds = 600\n\n[alerts]\n{alerts}\n")
    argv = ["run", "--headless", "--ticks", str(ticks), "--interval", "0", "--no-record"]
    assert cli.main([*argv, "--db", str(db), "--config", str(cfg)]) == 0


def test_a_headless_run_alerts_each_fill_and_each_day_to_the_webhook(tmp_path, capsys, hook_server):  # noqa: F811
    _headless(tmp_path, 300, f'webhook_url = "{hook_server}"')  # 50 hours: two days end
    err = capsys.readouterr().err
    db = tmp_path / "k.db"
    fills = expected_fill_alerts(db)
    days = [expected_summary(db, "2026-01-05"), expected_summary(db, "2026-01-06")]
    assert fills and any("closed 0," not in d for d in days)  # fills, and a day with closes
    sent = [(b["kind"], b["message"], b["severity"]) for _t, b in _Hook.received]
    assert [s for s in sent if s[0] == al.FILL] == [(al.FILL, m, "information") for m in fills]
    assert [s for s in sent if s[0] == al.DAILY_SUMMARY] == [(al.DAILY_SUMMARY, d, "information") for d in days]
    assert len(sent) == len(fills) + 2  # nothing else happened to alert of
    said = re.findall(r"^kakashi: ALERT (.*)$", err, re.M)  # the headless run's notification
    assert said == [m for _k, m, _s in sent]
    log = (tmp_path / "kakashi.log").read_text()
    for d in days:
        assert re.search(rf"ALERT    run=\w+ db=k\.db daily_summary: {re.escape(d)}$", log, re.M)
    assert log.count(" fill: filled: ") == len(fills)


def test_fill_alerts_off_leaves_the_daily_summary(tmp_path, capsys, hook_server):  # noqa: F811
    _headless(tmp_path, 150, f'fills = false\nwebhook_url = "{hook_server}"')  # the first day ends at tick 144
    err = capsys.readouterr().err
    db = tmp_path / "k.db"
    assert expected_fill_alerts(db)  # there were fills
    assert [(b["kind"], b["message"]) for _t, b in _Hook.received] == [
        (al.DAILY_SUMMARY, expected_summary(db, "2026-01-05"))
    ]
    assert "filled:" not in err and "FILL" in (tmp_path / "kakashi.log").read_text()  # still in the log


def test_a_bad_fills_setting_is_one_clear_line(tmp_path, capsys):
    cfg = tmp_path / "k.toml"
    cfg.write_text('[alerts]\nfills = "sometimes"\n')
    assert cli.main(["run", "--headless", "--ticks", "1", "--db", str(tmp_path / "k.db"), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kakashi: ") and "[alerts] fills" in err[0]
    assert not (tmp_path / "k.db").exists()
