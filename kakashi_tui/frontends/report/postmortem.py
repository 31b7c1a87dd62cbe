"""Post-mortems: the weekly template filled in from the ledger, with charts.

Reads the database through its own read-only sqlite3 connection and the named reads of
``adapters.queries`` (no SQL here), so it runs beside a live engine (WAL lets readers see the
last committed tick) without touching the writer.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from kakashi_tui.adapters import queries
from kakashi_tui.adapters.closing import Candles, catalog_of
from kakashi_tui.adapters.queries import connect_readonly, verify_ledger
from kakashi_tui.core.errors import ConfigError
from kakashi_tui.core.fees import FeeSchedule
from kakashi_tui.core.ledger import LedgerEntry
from kakashi_tui.core.money import fmt_cc, fmt_count, hundredths_to_count
from kakashi_tui.core.risk import HARD_MAX_LOSS_PER_TRADE_PCT, HARD_MAX_OPEN_POSITIONS
from kakashi_tui.core.sizing import per_trade_cap_cc
from kakashi_tui.core.stats import Drawdown, brier, max_drawdown, mean, verdict
from kakashi_tui.frontends.fmt import event_text, fmt_price, fmt_signed
from kakashi_tui.frontends.fmt import fmt_utc as _utc
from kakashi_tui.frontends.report.books import Books, Trade, Window

if TYPE_CHECKING:
    from kakashi_tui.frontends.report.band import Band

DAY_MS = 86_400_000
BOOTSTRAP_SEED = 20_260_105


def parse_day(text: str, end: bool = False) -> int:
    """'2026-01-05' -> epoch ms at 00:00 UTC (or the end of that day with ``end``)."""
    try:
        d = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"bad date {text!r}: use YYYY-MM-DD (UTC)") from None
    ms = int(d.timestamp() * 1000)
    return ms + DAY_MS - 1 if end else ms


def parse_days(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    """``--since`` / ``--until`` days as an epoch-ms window (either may be open)."""
    lo = parse_day(since) if since else None
    hi = parse_day(until, end=True) if until else None
    if lo is not None and hi is not None and hi < lo:
        raise ConfigError("--until is before --since")
    return lo, hi


@dataclass
class ReportData:
    since_ms: int | None
    until_ms: int | None
    first_ts: int | None
    last_ts: int | None
    start_equity: int
    end_equity: int
    equity: list[tuple[int, int]]
    fills: list[tuple]
    period: Window  # every realised, fee and trade figure of the period, from one ledger fold
    brier_pairs: list[tuple[float, float, int]]  # (p_hat, market price, outcome)
    reasons: Counter
    events: list[tuple[int, str, str]]
    breaches: list[str]
    checks: list[str] = field(default_factory=list)
    summary: list[tuple[str, Window]] = field(default_factory=list)  # today, this week, since start
    clock: str = queries.CLOCK_SIMULATED
    events_of: dict[str, str] = field(default_factory=dict)  # ticker -> event_ticker: intervals resample events
    entries: list = field(default_factory=list)  # edge.Entry: the period's entries (closing-line value)
    forecasts: list = field(default_factory=list)  # edge.Forecast: settled markets' first decisions, scored
    brier_tickers: list[str] = field(default_factory=list)  # the market of each of ``brier_pairs``
    catalog_note: str = ""  # why the catalog's candlesticks could not serve as closing prices
    markouts: list = field(default_factory=list)  # markouts.FillMarkouts: the period's fills (#23, item 6)
    data_end_ms: int | None = None  # the last tick: a markout's read time past it is pending
    plan: list[str] = field(default_factory=list)  # the plan in force, graded (report/plan.py)
    tick_gap_ms: int | None = None  # the period's median tick interval: the data's sampling (markouts)
    band: Band | None = None  # band.Band: the orders under the three queue models (#23, item 7); None: no order

    # -- figures, each read off ``period`` -------------------------------------------------
    @property
    def closed(self) -> tuple[Trade, ...]:
        return self.period.trades

    @property
    def realized_cc(self) -> int:
        """Realised PnL over the period from the ledger itself: every fee (entries, flatten sales,
        exits) included."""
        return self.period.realized_cc

    @property
    def fees_cc(self) -> int:
        return self.period.fees_cc

    @property
    def end_cash(self) -> int:
        return self.period.end.cash_cc

    @property
    def pnls(self) -> list[float]:
        return self.period.pnls

    def event_of(self, ticker: str) -> str:
        return self.events_of.get(ticker) or ticker

    @cached_property
    def ci(self) -> tuple[float, float] | None:
        """95% interval of mean PnL per closed trade, resampling events (scoring.py)."""
        return _event_ci(self.pnls, [self.event_of(t.ticker) for t in self.closed])

    @property
    def drawdown(self) -> Drawdown:
        return max_drawdown(self.equity)

    @property
    def wins(self) -> int:
        return self.period.wins

    @property
    def brier_model(self) -> float | None:
        return brier([(p, y) for p, _m, y in self.brier_pairs])

    @property
    def brier_market(self) -> float | None:
        return brier([(m, y) for _p, m, y in self.brier_pairs])

    @cached_property
    def brier_diff_ci(self) -> tuple[float, float] | None:
        """Bootstrap 95% interval of mean (p̂ squared error - market squared error) per settled
        market: below zero means p̂ scored better. Paired, so the markets' own difficulty cancels;
        resampling events, so the brackets of one event move together."""
        diffs = [(p - y) ** 2 - (m - y) ** 2 for p, m, y in self.brier_pairs]
        names = self.brier_tickers if len(self.brier_tickers) == len(diffs) else [str(i) for i in range(len(diffs))]
        return _event_ci(diffs, [self.event_of(t) for t in names])

    @cached_property
    def scored(self):  # edge.Scored | None
        from kakashi_tui.frontends.report import edge

        return edge.score(self.forecasts)

    @cached_property
    def line_value(self):  # edge.LineValue | None
        from kakashi_tui.frontends.report import edge

        return edge.line_value(self.entries)


def _event_ci(values: list[float], events: list[str]) -> tuple[float, float] | None:
    """The 95% interval of the mean of ``values``, resampling their events (None: under two events)."""
    if len(values) < 2:
        return None
    from kakashi_tui.frontends.report import scoring

    iv = scoring.clustered_mean(values, scoring.cluster_index(events))
    return None if iv.lo is None or iv.hi is None else (iv.lo, iv.hi)


def cash_book(entries, since: int | None, until: int | None) -> Window:
    """The ledger's figures for a period: what the report's every money figure is read from."""
    return Books(entries).window(since, until)


def _in(ts: int, since: int | None, until: int | None) -> bool:
    return (since is None or ts >= since) and (until is None or ts <= until)


def gather(
    db: str | Path,
    since_ms: int | None = None,
    until_ms: int | None = None,
    fees: FeeSchedule | None = None,
    catalog: str | Path | None = None,
) -> ReportData:
    """The report's figures; open positions marked at ``fees`` (the config's, as the engine's);
    closing prices the database lacks read from the ``catalog``'s candlesticks."""
    con = connect_readonly(db)
    try:
        return _gather(con, verify_ledger(con, db), since_ms, until_ms, fees, catalog_of(db, catalog))
    finally:
        con.close()


def check_period(since: int | None, until: int | None, first_ts: int | None) -> None:
    """Refuse a backwards period, in one line: the end before the start, or before any data."""
    if since is not None and until is not None and until < since:
        raise ConfigError(f"--until {_utc(until, '%Y-%m-%d')} is before --since {_utc(since, '%Y-%m-%d')}")
    if until is not None and first_ts is not None and until < first_ts:
        raise ConfigError(
            f"--until {_utc(until, '%Y-%m-%d')} is before this database's first record "
            f"({_utc(first_ts)}): nothing to report"
        )


def _gather(
    con: sqlite3.Connection,
    entries: list[LedgerEntry],
    since: int | None,
    until: int | None,
    fees: FeeSchedule | None = None,
    catalog: Path | None = None,
) -> ReportData:
    check_period(since, until, entries[0].ts if entries else None)
    checks = [
        "cash never negative",
        f"at most {HARD_MAX_OPEN_POSITIONS} open positions",
        f"worst case within {HARD_MAX_LOSS_PER_TRADE_PCT}% of equity per trade",
        "no fill beyond the worst case approved",
        "no buy while the kill switch was thrown",
        "no buy after the daily stop",
        "each position settled at most once",
        "cash reconciles with realised PnL to the cent",
        "realised PnL is the sum of the closed trades' PnL and the settlement corrections",
        "the ledger's hash chain holds, and every entry matches its fill, its market's result or the start's deposit",
    ]
    all_fills = queries.fill_rows(con)
    ticks = queries.tick_rows(con)
    books = Books(entries, {f[0]: f[9] for f in all_fills if f[4] == "buy"}, ticks)
    acct = books.account
    books.marked_equity = queries.marked_equity_cc(con, acct, fees)
    breaches = list(books.breaches)

    equity = [(ts, eq) for ts, eq, _c in ticks if _in(ts, since, until)]
    before = [(ts, eq) for ts, eq, _c in ticks if since is not None and ts < since]
    if since is None:
        start_equity = acct.deposits_cc
    elif before:  # the equity the period started from: the last tick before it
        start_equity = before[-1][1]
    else:
        start_equity = equity[0][1] if equity else acct.deposits_cc
    end_equity = equity[-1][1] if (equity and until is not None) else books.marked_equity
    period = books.window(since, until)
    if not period.balanced:
        breaches.append(
            f"cash does not reconcile: the ledger gives {fmt_cc(period.end.cash_cc)}, start + realised "
            f"- open cost gives {fmt_cc(period.expected_end_cash)}"
        )
    if period.booked_cc != period.realized_cc:
        breaches.append(
            f"realised PnL {fmt_signed(period.realized_cc)} is not its closed trades and corrections "
            f"({fmt_signed(period.booked_cc)})"
        )

    fills = [
        (*f[:5], hundredths_to_count(f[5]), hundredths_to_count(f[6]), *f[7:])
        for f in all_fills
        if _in(f[1], since, until)
    ]
    for fid, _ts, t, _s, action, _n, _req, cost, fee, _ev, worst, eq in fills:
        if action != "buy" or worst is None:
            continue
        if cost + fee > worst:
            breaches.append(f"fill {fid} on {t} cost {fmt_cc(cost + fee)} > approved worst case {fmt_cc(worst)}")
        if eq and worst > per_trade_cap_cc(eq, HARD_MAX_LOSS_PER_TRADE_PCT):
            breaches.append(
                f"fill {fid} on {t} risked {fmt_cc(worst)} > {HARD_MAX_LOSS_PER_TRADE_PCT}% of {fmt_cc(eq)}"
            )
    events = queries.control_events(con)
    buys = [(f[0], f[1], f[2]) for f in fills if f[4] == "buy"]
    kill_from: int | None = None
    windows: list[tuple[int, int | None]] = []
    for ts, kind, _d in events:
        if kind == "kill_switch" and kill_from is None:
            kill_from = ts
        elif kind == "rearm" and kill_from is not None:
            windows.append((kill_from, ts))
            kill_from = None
    if kill_from is not None:
        windows.append((kill_from, None))
    for fid, ts, t in buys:
        for a, b in windows:
            if ts > a and (b is None or ts < b):
                breaches.append(f"buy fill {fid} on {t} at {_utc(ts)} while the kill switch was thrown")
        for ets, kind, _d in events:
            if kind == "daily_stop" and ets < ts and ets // DAY_MS == ts // DAY_MS:
                breaches.append(f"buy fill {fid} on {t} at {_utc(ts)} after the daily stop")

    pairs, brier_tickers = [], []
    for t, result, ts in queries.outcome_rows(con):
        if not _in(ts, since, until):
            continue
        p_hat = queries.p_hat_at(con, t, ts)
        q = queries.quote_at(con, t, ts)
        if p_hat is None or q is None:
            continue
        bid, ask, last = q
        market = (bid + ask) / 2 if bid is not None and ask is not None else last
        if market is None:
            continue
        pairs.append((p_hat, market, 1 if result == "yes" else 0))
        brier_tickers.append(t)

    reasons: Counter = Counter()
    for reason, ts in queries.refused_decisions(con):
        if _in(ts, since, until):
            reasons[reason.split(" (")[0]] += 1
    first_ts = equity[0][0] if equity else (entries[0].ts if entries else None)
    last_ts = equity[-1][0] if equity else first_ts
    from kakashi_tui.frontends.report.edge import gather_entries, gather_forecasts
    from kakashi_tui.frontends.report.plan import plan_lines

    closes: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for tr in period.trades:
        pnl, n = closes.get((tr.ticker, tr.side.value), (0, Decimal(0)))
        closes[(tr.ticker, tr.side.value)] = (pnl + tr.pnl_cc, n + tr.contracts)
    events_of = {r[0]: r[3] for r in queries.market_rows(con) if r[3]}
    edge_entries, catalog_note = gather_entries(con, since, until, ticks[-1][0] if ticks else None, closes, catalog)
    from kakashi_tui.frontends.report.band import gather_band
    from kakashi_tui.frontends.report.markouts import gather_markouts, tick_gap_ms

    data_end = ticks[-1][0] if ticks else None
    return ReportData(
        since_ms=since,
        until_ms=until,
        first_ts=first_ts,
        last_ts=last_ts,
        start_equity=start_equity,
        end_equity=end_equity,
        equity=equity,
        fills=fills,
        period=period,
        brier_pairs=pairs,
        reasons=reasons,
        events=[e for e in events if _in(e[0], since, until)],
        breaches=breaches,
        checks=checks,
        summary=performance_windows(books, until if until is not None else last_ts, until),
        clock=queries.engine_clock(con),
        events_of=events_of,
        entries=edge_entries,
        forecasts=gather_forecasts(con, since, until, events_of),
        brier_tickers=brier_tickers,
        catalog_note=catalog_note,
        markouts=gather_markouts(con, since, until, data_end, catalog, tick_ts=[t for t, _eq, _c in ticks]),
        data_end_ms=data_end,
        plan=plan_lines(con, Candles(catalog)),  # (the plan's closing lines: the same as the entries')
        tick_gap_ms=tick_gap_ms([t for t, _eq, _c in ticks if _in(t, since, until)]),
        band=gather_band(con, since, until, data_end),
    )


def performance_windows(books: Books, end_ms: int | None, until: int | None) -> list[tuple[str, Window]]:
    """Today, this week (from Monday) and since the start, as of the report's end on the engine's
    clock: three windows of the same books as the period's."""
    if end_ms is None:
        return [("since start", books.window(None, until))]
    day = end_ms - end_ms % DAY_MS
    week = end_ms - (end_ms - MONDAY_EPOCH_MS) % WEEK_MS
    return [
        (f"today ({_utc(day, '%Y-%m-%d')})", books.window(day, until)),
        (f"this week (from Monday {_utc(week, '%Y-%m-%d')})", books.window(week, until)),
        ("since start", books.window(None, until)),
    ]


def _money(x: float) -> str:
    return fmt_cc(int(round(x * 10_000)))


def time_span(a: int | None, b: int | None) -> str:
    """'2026-01-05 00:00 – 06:40 UTC' within a day, the second date written out otherwise."""
    if a is None or b is None:
        return f"{_utc(a)} – {_utc(b)}"
    same_day = a // DAY_MS == b // DAY_MS
    return f"{_utc(a, '%Y-%m-%d %H:%M')} – {_utc(b, '%H:%M' if same_day else '%Y-%m-%d %H:%M')} UTC"


def period_bounds_of(d: ReportData) -> tuple[int | None, int | None]:
    """The period the report covers, on the engine's clock."""
    return (
        d.since_ms if d.since_ms is not None else d.first_ts,
        d.until_ms if d.until_ms is not None else d.last_ts,
    )


#: The engine's time, named, when it is not the wall clock's (a live run's is: nothing to say).
CLOCK_WORDS = {queries.CLOCK_SIMULATED: "simulated time", queries.CLOCK_REPLAYED: "replayed time"}


def generated_line(d: ReportData, generated_ms: int) -> str:
    """When the report was written (the wall clock) and the time it covers (the engine's clock,
    which is the wall clock only for a live run: then it is said once)."""
    span = time_span(*period_bounds_of(d))
    if d.clock not in CLOCK_WORDS:
        return f"Generated {_utc(generated_ms)}; covers {span} (a live run: its clock is the wall clock)."
    return f"Generated {_utc(generated_ms)} (wall clock); covers {CLOCK_WORDS[d.clock]} {span}."


def _win_rate(w: Window) -> str:
    n = len(w.trades)
    return f"{w.wins}/{n} ({w.wins / n:.0%})" if n else "—"


def performance_section(d: ReportData) -> list[str]:
    """Today, this week and since the start, as of the period's end: realised, unrealised, fees
    and the win rate, each read off the same ledger fold as every other figure."""
    end = period_bounds_of(d)[1]
    when = f" ({CLOCK_WORDS[d.clock]})" if d.clock in CLOCK_WORDS else ""
    out = [
        f"As of {_utc(end)}{when}.",
        "",
        "| | realised PnL | unrealised PnL | total PnL | fees | closed trades | win rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, w in d.summary:
        u = w.unrealized_cc
        out.append(
            f"| {label} | {fmt_signed(w.realized_cc)} | {fmt_signed(u) if u is not None else 'n/a'} | "
            f"{fmt_signed(w.realized_cc + u) if u is not None else 'n/a'} | {fmt_cc(w.fees_cc)} | {len(w.trades)} | "
            f"{_win_rate(w)} |"
        )
    out += [
        "",
        "Realised PnL counts every fee. Unrealised PnL is its change over the row's time: what the open "
        "positions would fetch sold into the bids, after fees, less their cost. Total = realised + unrealised "
        "(n/a when no tick marked what was held at the row's start). These are what the ledger booked, not "
        "estimates: whether the trades show an edge is the interval under Trades.",
    ]
    return out


def render_markdown(
    d: ReportData, generated_ms: int, charts: list[str] | None = None, ruin: list[str] | None = None
) -> str:
    """The post-mortem's text; ``ruin``: the odds-of-ruin section's lines (``report/ruin.py``), placed
    with the other results (after the stops that happened, before the plan), Methods after them all."""
    w = d.period
    pnls = w.pnls
    ci = d.ci
    dd = d.drawdown
    period_from, period_to = (_utc(t) for t in period_bounds_of(d))
    no_interval = "n/a (fewer than 2 trades)" if len(pnls) < 2 else "n/a (trades in fewer than 2 events)"
    clock_note = (
        f' ({CLOCK_WORDS[d.clock]}: every time in this report but "Generated" is on the engine\'s clock)'
        if d.clock in CLOCK_WORDS
        else ""
    )
    out = [
        "# Kakashi weekly post-mortem",
        "",
        f"{generated_line(d, generated_ms)} **Paper trading only**: every fill below is simulated.",
        "",
        "## Period",
        "",
        f"{period_from} to {period_to}{clock_note}",
        "",
        "## Bankroll",
        "",
        "| starting bankroll | ending equity | ending cash | change in equity | max drawdown | drawdown from | to |",
        "|---|---|---|---|---|---|---|",
        f"| {fmt_cc(d.start_equity)} | {fmt_cc(d.end_equity)} | {fmt_cc(d.end_cash)} | "
        f"{fmt_signed(d.end_equity - d.start_equity)} | {fmt_cc(dd.depth)} | {_utc(dd.peak_ts)} | "
        f"{_utc(dd.trough_ts)} |",
        "",
        *reconciliation(d),
        "",
        "## Performance summary",
        "",
        *performance_section(d),
        "",
        "## Trades",
        "",
        "| fills | closed trades | wins | losses | fees | realised PnL | mean PnL per trade | 95% CI (bootstrap) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {len(d.fills)} | {len(pnls)} | {w.wins} | {w.losses} | {fmt_cc(w.fees_cc)} | "
        f"{fmt_signed(w.realized_cc)} | {_money(mean(pnls)) if pnls else '—'} | "
        f"{f'{_money(ci[0])} to {_money(ci[1])}' if ci else no_interval} |",
        "",
        f"Bootstrap: 2,000 resamples of closed-trade PnL by event (the trades of one event together), seed "
        f"{BOOTSTRAP_SEED} (repeatable). Realised PnL "
        "includes every fee: entries, exits and flatten sales. A closed trade is a sale (a partial sale is "
        "one of its own) or a settlement; a settlement corrected later counts the correction in its PnL.",
        *corrections_note(w),
        "",
        "## Estimates: Brier score on settled markets",
        "",
    ]
    out += brier_section(d)
    out += edge_sections(d)
    out += markout_section(d)
    out += band_section(d)
    out += ["", "## Predicted EV against realised PnL", ""]
    if w.trades or w.corrections:
        pred = w.predicted_ev_cc
        ratio = f"{(w.realized_cc / pred):.2f}" if pred else "—"
        out += [
            "| closed trades | predicted EV at entry | realised PnL | realised / predicted |",
            "|---|---|---|---|",
            f"| {len(w.trades)} | {fmt_cc(int(round(pred)))} | {fmt_signed(w.realized_cc)} | {ratio} |",
            "",
            "The same closed trades and realised PnL as under Trades; the predicted EV is the EV per contract "
            "the entry's decision predicted, times the contracts each trade closed.",
        ]
    else:
        out.append("No trade closed in this period.")
    out += ["", "## Rejected decisions by reason", ""]
    if d.reasons:
        out += ["| reason | count |", "|---|---|"] + [f"| {r} | {n} |" for r, n in d.reasons.most_common()]
    else:
        out.append("None.")
    out += ["", "## Guardrail breaches", ""]
    if d.breaches:
        out.append(f"**{len(d.breaches)} breach(es). This must be zero: stop and investigate.**")
        out += [f"- {b}" for b in d.breaches]
    else:
        out.append("**0 breaches.** Checked against the ledger: " + "; ".join(d.checks) + ".")
    out += ["", "## Kill-switch and daily-stop events", ""]
    out += [f"- {_utc(ts)} {kind} {event_text(kind, detail)}".rstrip() for ts, kind, detail in d.events] or ["None."]
    if ruin:
        out += ["", *"\n".join(ruin).strip("\n").split("\n")]
    out += ["", "## Plan (registered before the evidence)", "", *d.plan]
    out += ["", "## Verdict", "", verdict(pnls, ci), ""]
    if d.fills:
        out += [
            "## Fills",
            "",
            "| time | ticker | side | action | filled/requested | avg price | cost | fee |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for _id, ts, t, s, action, n, req, cost, fee, *_r in d.fills[-200:]:
            out.append(
                f"| {_utc(ts)} | {t} | {s.upper()} | {action} | {fmt_count(n)}/{fmt_count(req)} | "
                f"{fmt_price(Decimal(cost) / 10_000 / n)} | "
                f"{fmt_cc(cost)} | {fmt_cc(fee)} |"
            )
        out.append("")
    if charts:
        out += ["## Charts", ""] + [f"![{c}]({c})" for c in charts] + [""]
    from kakashi_tui.frontends.report.edge import methods_section

    out += ["## Methods", "", *methods_section(), ""]
    out += [
        "## What went well",
        "",
        "_(operator)_",
        "",
        "## What went wrong",
        "",
        "_(operator)_",
        "",
        "## What to change",
        "",
        "_(operator)_",
        "",
    ]
    return "\n".join(out)


def edge_sections(d: ReportData) -> list[str]:
    """Is the edge real: p̂ scored against the market, closing-line value, the Murphy curve."""
    from kakashi_tui.frontends.report import edge

    out = ["", "## Forecasts scored against the market (at each market's first decision)", ""]
    out += edge.score_section(d.scored)
    out += ["", "## Closing-line value", ""]
    out += edge.clv_section(d.line_value)
    if d.catalog_note:
        out += ["", f"Note: {d.catalog_note}."]
    out += ["", "## Murphy curve at market prices", ""]
    out += edge.murphy_section(d.scored)
    return out


def markout_section(d: ReportData) -> list[str]:
    """Markouts by role and horizon: the adverse-selection table (issue #23, item 6)."""
    from kakashi_tui.frontends.report import markouts

    head = ["", "## Markouts: adverse selection, maker vs taker", ""]
    return head + markouts.section(d.markouts, d.data_end_ms, d.clock == queries.CLOCK_REPLAYED, d.tick_gap_ms)


def band_section(d: ReportData) -> list[str]:
    """The orders under the three queue models, and what replayed maker PnL is (#23, item 7)."""
    from kakashi_tui.frontends.report import band

    return ["", "## Queue models: the band", "", *band.section(d.band)]


def corrections_note(w: Window) -> list[str]:
    if not w.corrections:
        return []
    return [
        "",
        f"Realised PnL includes {fmt_signed(w.corrections_cc)} of settlement corrections booked in this period "
        f"to {len(w.corrections)} trade(s) closed before it.",
    ]


def reconciliation(d: ReportData) -> list[str]:
    """The line that proves the books add up: start + realised - open cost = ending cash."""
    c = d.period
    start_cash, deposits = c.start.cash_cc, c.deposits_cc
    if start_cash == 0 and deposits:  # the whole run: the bankroll is the first deposit
        parts = f"starting bankroll {fmt_cc(deposits)}"
    else:
        parts = f"starting cash {fmt_cc(start_cash)}"
        if deposits:
            parts += f" + deposits {fmt_cc(deposits)}"
    parts += f" + realised PnL {fmt_signed(c.realized_cc)}"
    cost_start, cost_end = c.start.open_cost_cc, c.end.open_cost_cc
    moved = cost_end - cost_start
    if moved:
        parts += f" {'-' if moved > 0 else '+'} cost of open positions {fmt_cc(abs(moved))}"
        if cost_start:
            parts += f" (now {fmt_cc(cost_end)}, at the start {fmt_cc(cost_start)})"
    if c.balanced:
        return [f"Cash reconciles to the cent: {parts} = ending cash **{fmt_cc(c.end.cash_cc)}** ✓"]
    return [
        f"**Cash does not reconcile**: {parts} = {fmt_cc(c.expected_end_cash)}, but the ledger's cash is "
        f"{fmt_cc(c.end.cash_cc)} (off by {fmt_signed(c.end.cash_cc - c.expected_end_cash)})."
    ]


def brier_claim(d: ReportData) -> str:
    """What the Brier comparison allows us to say: "better" only when the interval excludes zero."""
    ci = d.brier_diff_ci
    n = len(d.brier_pairs)
    if ci is None:
        return f"{n} settled market: too few to compare your estimates with the market price."
    lo, hi = ci
    span = f"95% interval of the difference (p̂ minus market, per market): {lo:+.4f} to {hi:+.4f}"
    if hi < 0:
        return f"Your estimates scored better than the market price ({span}; below zero throughout)."
    if lo > 0:
        return f"Your estimates scored worse than the market price ({span}; above zero throughout)."
    return (
        f"Your estimates cannot be told apart from the market price on {n} settled markets ({span}; it includes zero)."
    )


def brier_section(d: ReportData) -> list[str]:
    bm, bk = d.brier_model, d.brier_market
    if bm is None:
        return ["No settled market with both an estimate and a quote in this period."]
    return [
        "| markets | Brier (p̂) | Brier (market mid, baseline) |",
        "|---|---|---|",
        f"| {len(d.brier_pairs)} | {bm:.4f} | {bk:.4f} |",
        "",
        brier_claim(d) + " Lower is better. The market price here is the last quote before settlement; the "
        "section below scores p̂ against the price at each decision. The bootstrap resamples events (2,000 times, "
        f"seed {BOOTSTRAP_SEED}).",
    ]


def key_figures(d: ReportData) -> list[tuple[str, str]]:
    ci = d.ci
    return [
        ("Ending equity", fmt_cc(d.end_equity)),
        ("Closed trades", str(len(d.closed))),
        ("Mean PnL / trade", _money(mean(d.pnls)) if d.pnls else "—"),
        ("95% CI", f"{_money(ci[0])} to {_money(ci[1])}" if ci else "n/a"),
        ("Max drawdown", fmt_cc(d.drawdown.depth)),
        ("Brier p̂ / market", f"{d.brier_model:.3f} / {d.brier_market:.3f}" if d.brier_model is not None else "—"),
        ("Breaches", str(len(d.breaches))),
    ]


def reports_dir(db: str | Path, configured: str | Path | None = None) -> Path:
    """Where post-mortems go: the folder given (``--out``, ``[desk] reports_dir``), else
    ``reports/`` beside the database, as the log and the catalog are (not the current directory)."""
    return Path(configured) if configured else Path(db).resolve().parent / "reports"


@dataclass(frozen=True)
class Exported:
    path: Path
    figures: list[tuple[str, str]]


def export_postmortem(
    db: str | Path,
    reports_dir: str | Path,
    generated_ms: int,
    since_ms: int | None = None,
    until_ms: int | None = None,
    charts: bool = True,
    fees: FeeSchedule | None = None,
    catalog: str | Path | None = None,
    limits=None,  # the configured RiskLimits (the odds of ruin play them); default: the loosest
) -> Exported:
    """Write ``<reports_dir>/<UTC timestamp>/postmortem.md`` and the PNG charts beside it."""
    data = gather(db, since_ms, until_ms, fees, catalog)
    stamp = datetime.fromtimestamp(generated_ms / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(reports_dir) / stamp
    n = 1
    while folder.exists():
        n += 1
        folder = Path(reports_dir) / f"{stamp}-{n}"
    folder.mkdir(parents=True, mode=0o700)
    names: list[str] = []
    if charts:
        from kakashi_tui.frontends.report.charts import write_charts

        names = write_charts(data, folder)
    from kakashi_tui.core.risk import RiskLimits
    from kakashi_tui.frontends.report.ruin import report_section

    ruin_md, ruin_charts = report_section(db, folder, limits or RiskLimits(), charts, fees)  # odds of ruin (#24)
    path = folder / "postmortem.md"
    text = render_markdown(data, generated_ms, names + ruin_charts, ruin_md)
    path.write_text(text, encoding="utf-8")
    from kakashi_tui.adapters.crashlog import owner_only

    owner_only(folder, *folder.iterdir())  # the operator's record alone, whatever the umask
    return Exported(path, key_figures(data))


# -- post-mortems on schedule --------------------------------------------------------------
WEEK_MS = 7 * DAY_MS
MONDAY_EPOCH_MS = 4 * DAY_MS  # 1970-01-05 was a Monday


def period_bounds(now_ms: int, schedule: str) -> tuple[int, int] | None:
    """The last complete UTC period before ``now_ms``: a week from Monday 00:00, or a day."""
    if schedule == "weekly":
        end = now_ms - (now_ms - MONDAY_EPOCH_MS) % WEEK_MS
        return end - WEEK_MS, end - 1
    if schedule == "daily":
        end = now_ms - now_ms % DAY_MS
        return end - DAY_MS, end - 1
    return None


def daily_summary(d: ReportData, day_ms: int) -> str:
    """One paragraph for the day just ended."""
    n = len(d.closed)
    bm, bk = d.brier_model, d.brier_market
    brier_part = (
        f" Brier p̂ {bm:.3f} against the market's {bk:.3f} on {len(d.brier_pairs)} settled market(s)."
        if bm is not None
        else ""
    )
    recon = "reconciles to the cent" if d.period.balanced else "DOES NOT reconcile"
    stops = [k for _t, k, _d in d.events if k in ("kill_switch", "daily_stop")]
    return (
        f"{_utc(day_ms, '%Y-%m-%d')} (UTC): equity {fmt_cc(d.start_equity)} → {fmt_cc(d.end_equity)} "
        f"({fmt_signed(d.end_equity - d.start_equity)}); realised PnL {fmt_signed(d.realized_cc)} after "
        f"{fmt_cc(d.fees_cc)} in fees on {len(d.fills)} fill(s) and {n} closed "
        f"trade(s) ({d.wins} won); max drawdown {fmt_cc(d.drawdown.depth)}; cash {recon}."
        f"{brier_part} {sum(d.reasons.values())} decision(s) refused by the risk gate"
        f"{'; ' + ', '.join(stops) if stops else ''}; {len(d.breaches)} guardrail breach(es)."
    )


@dataclass
class Scheduled:
    kind: str  # "weekly" | "daily" (the post-mortem) or "summary" (the daily paragraph)
    since_ms: int
    path: Path


class PostmortemSchedule:
    """Writes the post-mortem by itself when a period ends (on the engine's clock), and a one-paragraph
    summary at each UTC day roll. A period's folder or file name is the period, so a period is
    never written twice, across restarts too: what exists is skipped."""

    def __init__(
        self,
        db: str | Path,
        reports_dir: str | Path,
        schedule: str = "weekly",
        daily_summary: bool = True,
        fees: FeeSchedule | None = None,
    ) -> None:
        self.db = Path(db)
        self.fees = fees  # the engine's fee schedule: open positions marked as it marks them
        self.dir = Path(reports_dir)
        self.schedule = schedule
        self.summaries = daily_summary and schedule != "off"
        self._checked: set[tuple[str, int]] = set()

    def due(self, now_ms: int, first_ms: int | None) -> list[tuple[str, int, int, Path]]:
        """(kind, since, until, path) for each period that ended, has data, and is not written yet."""
        out = []
        jobs = []
        if self.schedule in ("weekly", "daily"):
            jobs.append((self.schedule, self.schedule))
        if self.summaries:
            jobs.append(("summary", "daily"))
        for kind, span in jobs:
            bounds = period_bounds(now_ms, span)
            if bounds is None or (kind, bounds[0]) in self._checked:
                continue
            since, until = bounds
            if first_ms is None or first_ms > until:
                continue  # nothing happened in that period: nothing to write
            day = _utc(since, "%Y-%m-%d")
            path = (
                self.dir / f"{kind}-{day}" / "postmortem.md" if kind != "summary" else self.dir / "daily" / f"{day}.md"
            )
            self._checked.add((kind, since))
            if not path.exists():
                out.append((kind, since, until, path))
        return out

    def run(self, now_ms: int, generated_ms: int | None = None) -> list[Scheduled]:
        """Write what is due at ``now_ms`` on the engine's clock; a post-mortem says it was generated at
        ``generated_ms`` (the wall clock's now when not given). Reads the database read-only (safe
        beside the live engine)."""
        if generated_ms is None:
            generated_ms = int(time.time() * 1000)
        con = connect_readonly(self.db)
        try:
            first = queries.first_ledger_ts(con)
            written = []
            entries: list[LedgerEntry] | None = None
            for kind, since, until, path in self.due(now_ms, first):
                if entries is None:
                    entries = verify_ledger(con, self.db)
                data = _gather(con, entries, since, until, self.fees, catalog_of(self.db))
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                if kind == "summary":
                    tmp.write_text(daily_summary(data, since) + "\n", encoding="utf-8")
                else:
                    from kakashi_tui.frontends.report.charts import write_charts

                    names = write_charts(data, path.parent)
                    tmp.write_text(render_markdown(data, generated_ms, names), encoding="utf-8")
                tmp.replace(path)  # the name appears only once the file is whole
                written.append(Scheduled(kind, since, path))
            return written
        finally:
            con.close()
