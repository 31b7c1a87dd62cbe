"""Post-mortem export: a Markdown summary of trades and bankroll, straight from the ledger.

Reads the database through its own read-only sqlite3 connection, so it can run beside a
live engine (WAL lets readers see the last committed tick) without touching the writer.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from kakashi_tui.adapters.store import snapshot_from_row
from kakashi_tui.core.ledger import Account, Kind, LedgerEntry, equity_cents
from kakashi_tui.core.models import Side
from kakashi_tui.core.money import fmt_cents


def _utc(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _connect(db: str | Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{Path(db).resolve()}?mode=ro", uri=True, timeout=5)


def render_postmortem(db: str | Path, generated_ms: int) -> str:
    con = _connect(db)
    try:
        entries = [LedgerEntry(ts=ts, kind=Kind(k), amount_cents=a, key=key, ticker=t or "",
                               side=Side(s) if s else None, contracts=c)
                   for ts, k, a, key, t, s, c in con.execute(
                       "SELECT ts, kind, amount_cents, key, ticker, side, contracts FROM ledger ORDER BY id")]
        acct = Account.from_entries(entries)
        marks = {}
        for p in acct.open_positions():
            row = con.execute("SELECT ticker, ts, yes_bid, yes_ask, last, volume, book FROM snapshots "
                              "WHERE ticker = ? ORDER BY ts DESC, id DESC LIMIT 1", (p.ticker,)).fetchone()
            if row:
                marks[p.ticker] = snapshot_from_row(*row)
        equity = equity_cents(acct, marks)
        fills = con.execute("SELECT ts, ticker, side, action, contracts, requested, cost_cents, fee_cents "
                            "FROM fills ORDER BY id").fetchall()
        reasons = Counter(r for (r,) in con.execute("SELECT reason FROM decisions WHERE accepted = 0"))
        events = con.execute("SELECT ts, kind, detail FROM events WHERE kind IN "
                             "('kill_switch', 'rearm', 'daily_stop', 'flatten') ORDER BY id").fetchall()
        first_ts = entries[0].ts if entries else None
        last_tick = con.execute("SELECT MAX(ts) FROM ticks").fetchone()[0]
    finally:
        con.close()

    settled = [c for c in acct.closed if c.kind is Kind.SETTLE]
    wins = sum(1 for c in settled if c.proceeds_cents > 0)
    out = [
        "# Kakashi post-mortem",
        "",
        f"Generated {_utc(generated_ms)}. **Paper trading only**: every fill below is simulated.",
        "",
        f"Period: {_utc(first_ts)} to {_utc(last_tick or first_ts)}",
        "",
        "## Bankroll",
        "",
        "| starting bankroll | ending cash | ending equity | realised PnL | fees paid | open positions |",
        "|---|---|---|---|---|---|",
        f"| {fmt_cents(acct.deposits_cents)} | {fmt_cents(acct.cash_cents)} | {fmt_cents(equity)} | "
        f"{fmt_cents(acct.realized_cents)} | {fmt_cents(acct.fees_cents)} | {len(acct.open_positions())} |",
        "",
        f"## Trades ({len(fills)})",
        "",
    ]
    if fills:
        out += ["| time | ticker | side | action | filled/requested | avg price | cost | fee |",
                "|---|---|---|---|---|---|---|---|"]
        for ts, t, s, action, n, req, cost, fee in fills:
            out.append(f"| {_utc(ts)} | {t} | {s.upper()} | {action} | {n}/{req} | {cost / 100 / n:.2f} | "
                       f"{fmt_cents(cost)} | {fmt_cents(fee)} |")
    else:
        out.append("No trades in this period.")
    out += ["", f"## Settled positions ({len(settled)}: {wins} won, {len(settled) - wins} lost)", ""]
    if settled:
        out += ["| time | ticker | side | contracts | payout | PnL |", "|---|---|---|---|---|---|"]
        for c in settled:
            out.append(f"| {_utc(c.ts)} | {c.ticker} | {c.side.value.upper()} | {c.contracts} | "
                       f"{fmt_cents(c.proceeds_cents)} | {fmt_cents(c.pnl_cents)} |")
    else:
        out.append("No settlements in this period.")
    out += ["", "## Rejected decisions by reason", ""]
    if reasons:
        by_reason: Counter[str] = Counter()
        for r, n in reasons.items():  # "max open positions reached (5/5)" counts as its guardrail
            by_reason[r.split(" (")[0]] += n
        out += ["| reason | count |", "|---|---|"] + [f"| {r} | {n} |" for r, n in by_reason.most_common()]
    else:
        out.append("None.")
    out += ["", "## Kill-switch and daily-stop events", ""]
    out += [f"- {_utc(ts)} {kind} {detail}".rstrip() for ts, kind, detail in events] or ["None."]
    out += ["", "## What went well", "", "_(operator)_", "", "## What went wrong", "", "_(operator)_", "",
            "## What to change", "", "_(operator)_", ""]
    return "\n".join(out)


def export_postmortem(db: str | Path, reports_dir: str | Path, generated_ms: int) -> Path:
    """Write ``<reports_dir>/<UTC timestamp>/postmortem.md`` and return its path."""
    stamp = datetime.fromtimestamp(generated_ms / 1000, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(reports_dir) / stamp
    n = 1
    while folder.exists():
        n += 1
        folder = Path(reports_dir) / f"{stamp}-{n}"
    folder.mkdir(parents=True)
    path = folder / "postmortem.md"
    path.write_text(render_postmortem(db, generated_ms), encoding="utf-8")
    return path
