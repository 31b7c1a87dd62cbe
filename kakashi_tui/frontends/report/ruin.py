"""Odds of ruin from a database: the inputs of ``core/ruin.py`` read off the run (its recent
filled buys, its equity, its trades per day), the table ``kakashi risk`` prints, and the
post-mortem's section and charts (an equity fan for both cases, the drawdown distribution).

Reads through its own read-only connection (``adapters.queries``), never writes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from kakashi_tui.adapters import queries
from kakashi_tui.core.errors import KakashiError
from kakashi_tui.core.fees import FeeSchedule
from kakashi_tui.core.money import fmt_cc
from kakashi_tui.core.risk import RiskLimits
from kakashi_tui.core.ruin import BAND_QUANTILES, RuinResult, RuinSpec, RuinTrade, simulate, trades_per_day
from kakashi_tui.core.text import safe_text
from kakashi_tui.frontends.fmt import fmt_pct_bound, fmt_pct_pm

DAY_MS = 86_400_000
#: The trades sampled: the run's latest filled buys.
SAMPLE_TRADES = 500
DEFAULT_TRADES = 200
DEFAULT_PATHS = 5_000
DEFAULT_SEED = 20_260_124
#: The drawdown stop's level when the configuration has none (issue #24, 6: its default).
DEFAULT_DRAWDOWN_STOP_PCT = Decimal("10")
RUIN_CHARTS = ("ruin_fan.png", "ruin_drawdown.png")


@dataclass(frozen=True)
class RuinInputs:
    trades: list[RuinTrade]
    start_equity_cc: int
    trades_per_day: int
    events: dict[str, str]
    first_ts: int
    last_ts: int
    exclusive: frozenset[str] = frozenset()  # the events stored as mutually exclusive (markets.event_exclusive)
    peak_cc: int = 0  # the drawdown stop's stored peak (0: none yet)
    drawdown_stop: str = ""  # why the drawdown stop halted trading ("": it has not)
    kill_reason: str | None = None  # the kill switch's reason while it is thrown (None: armed)
    paused: bool = False


def load_inputs(db: str | Path, fees: FeeSchedule | None = None, sample: int = SAMPLE_TRADES) -> RuinInputs:
    """The run's latest ``sample`` filled buys as trades, its marked equity now, its trades per day."""
    con = queries.connect_readonly(db)
    try:
        st = queries.read_status(con, db, fees)
        peak_cc, dd_stop = queries.drawdown_stop(con)
        rows = queries.ruin_trade_rows(con, sample)
        trades: list[RuinTrade] = []
        events: dict[str, str] = {}
        days: Counter[int] = Counter()
        exclusive: set[str] = set()
        for ts, ticker, side, p_hat, eq_cc, hundredths, value_cc, fee_cc, event, ex in rows:
            stake_cc = value_cc + fee_cc
            if stake_cc <= 0 or hundredths <= 0 or not eq_cc or eq_cc <= 0 or side not in ("yes", "no"):
                continue  # nothing paid, or no equity recorded to size it against
            q = queries.quote_at(con, ticker, ts)
            mid = None
            if q is not None:
                bid, ask, last = q
                mid = (bid + ask) / 2 if bid is not None and ask is not None else last
            trades.append(
                RuinTrade(
                    ticker=ticker,
                    side=side,
                    stake=stake_cc / 10_000,
                    stake_frac=stake_cc / eq_cc,
                    win_mult=hundredths * 100 / stake_cc - 1,  # a contract pays $1 = 10,000 cc
                    p_hat=float(p_hat),
                    market=float(p_hat if mid is None else mid),
                )
            )
            if event:
                events[ticker] = event
                if ex:
                    exclusive.add(event)
            days[ts // DAY_MS] += 1
    finally:
        con.close()
    if not trades:
        raise KakashiError(f"no filled trades in {safe_text(str(db))} to sample: run the engine first", 1)
    per_day = trades_per_day(list(days.values()))
    return RuinInputs(
        trades,
        st.equity_cc,
        per_day,
        events,
        rows[0][0],
        rows[-1][0],
        frozenset(exclusive),
        peak_cc=peak_cc,
        drawdown_stop=dd_stop,
        kill_reason=(st.kill_reason or "operator") if st.kill_switch else None,
        paused=st.paused,
    )


def carried_peak(inputs: RuinInputs, stop: float) -> float | None:
    """The peak the simulation measures drawdowns from, in dollars, when it is not today's equity:
    the run's stored peak while equity is below it and the drawdown stop has not halted trading (a
    re-arm after the drawdown stop restarts the peak from the equity then; a re-arm after a kill
    keeps it). None: today's equity is the peak (or is past the stop already: the engine halts at
    its next tick, and the peak restarts at the re-arm)."""
    eq, peak = inputs.start_equity_cc, inputs.peak_cc
    if inputs.drawdown_stop or peak <= eq or 1 - eq / peak >= stop:
        return None
    return peak / 10_000


def spec_for(
    inputs: RuinInputs,
    limits: RiskLimits,
    n_trades: int = DEFAULT_TRADES,
    paths: int = DEFAULT_PATHS,
    seed: int = DEFAULT_SEED,
    exclusive: frozenset[str] = frozenset(),
    floor_pct: Decimal | None = None,
) -> RuinSpec:
    """The simulation at the configured rules: the per-trade and daily caps, and the drawdown stop
    (halting when the configuration has one: ``[risk] max_drawdown_pct``)."""
    dd = getattr(limits, "max_drawdown_pct", None)
    start = inputs.start_equity_cc / 10_000
    stop = float(dd if dd is not None else DEFAULT_DRAWDOWN_STOP_PCT) / 100
    return RuinSpec(
        n_trades=n_trades,
        paths=paths,
        seed=seed,
        start_equity=start,
        max_loss_frac=float(limits.max_loss_per_trade_pct) / 100,
        daily_cap_frac=float(limits.daily_loss_cap_pct) / 100,
        trades_per_day=inputs.trades_per_day,
        drawdown_stop=stop,
        halt_at_drawdown_stop=dd is not None,
        start_peak=carried_peak(inputs, stop),
        ruin_floor=None if floor_pct is None else start * float(floor_pct) / 100,
        events=inputs.events,
        exclusive=exclusive | inputs.exclusive,  # named with --exclusive, or stored as Kalshi says
    )


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _prob(p, paths: int, impossible: str = "") -> str:
    """A probability with its Monte Carlo error (fmt.py's one rule for a ±); a zero the rules make
    certain (``impossible``: why) says so, and is never dressed as a measured estimate."""
    if p.p == 0 and impossible:
        return f"0 by construction ({impossible})"
    if p.p == 0:  # no path: the standard error says nothing; the rule of three bounds it
        return f"0 of {paths:,} ({fmt_pct_bound(3 / paths)} at 95%)"
    if p.p == 1:
        return f"all {paths:,} ({fmt_pct_bound(1 - 3 / paths, above=True)} at 95%)"
    return fmt_pct_pm(p.p, p.se)


def _stop_first(res: RuinResult) -> str:
    return f"stop at {_pct(res.spec.drawdown_stop)}"


def table_rows(res: RuinResult) -> list[tuple[str, str, str]]:
    """(what, optimistic, sceptical) rows: the figures of both cases side by side."""
    a, b = res.cases
    n = res.spec.paths
    bound = res.unreachable_drawdown
    rows = []
    for x in a.p_drawdown:
        why = _stop_first(res) if bound is not None and x >= bound else ""
        rows.append((f"P(drawdown >= {_pct(x)})", _prob(a.p_drawdown[x], n, why), _prob(b.p_drawdown[x], n, why)))
    never = _stop_first(res) if res.ruin_impossible else ""
    rows += [
        ("P(daily stop)", _prob(a.p_daily_stop, n), _prob(b.p_daily_stop, n)),
        ("P(ruin)", _prob(a.p_ruin, n, never), _prob(b.p_ruin, n, never)),
        (f"P(drawdown stop, {_pct(res.spec.drawdown_stop)})", _prob(a.p_dd_stop, n), _prob(b.p_dd_stop, n)),
    ]

    def when(c) -> str:
        t = c.time_to_dd_stop
        return "never reached" if t is None else f"{t[1]:.0f} (10%: {t[0]:.0f}, 90%: {t[2]:.0f})"

    def final(c) -> str:
        import numpy as np

        lo, mid, hi = np.quantile(c.final, (0.05, 0.5, 0.95))
        return f"{_signed(mid - 1)} ({_signed(lo - 1)} to {_signed(hi - 1)})"

    rows += [
        ("trades to the drawdown stop: median", when(a), when(b)),
        ("equity change: median (5% to 95%)", final(a), final(b)),
    ]
    return rows


def _signed(x: float) -> str:
    return f"{100 * x:+.1f}%"


def state_lines(res: RuinResult, inputs: RuinInputs) -> list[str]:
    """What the run's state means for the figures, said before them: a halted run takes no trade,
    so they are for after a re-arm (and whether the peak restarts then); a run below its peak
    carries it."""
    s = res.spec
    eq = fmt_cc(inputs.start_equity_cc)
    out = []
    if inputs.drawdown_stop:
        out.append(
            f"Halted now ({safe_text(inputs.drawdown_stop)}): the run takes no trade until the operator re-arms "
            "(`kakashi rearm`, `r` on the desk). These figures are for trading after a re-arm, not for the run as "
            f"it stands: a re-arm restarts the drawdown stop's peak from the equity then (risk_limits.md, 2a), "
            f"taken here as today's {eq}."
        )
    elif s.start_peak is None and inputs.peak_cc > inputs.start_equity_cc:
        out.append(
            f"Equity {eq} is already {_pct(1 - inputs.start_equity_cc / inputs.peak_cc)} below its peak "
            f"{fmt_cc(inputs.peak_cc)}, past the {_pct(s.drawdown_stop)} drawdown stop: the engine halts at its next "
            "tick. These figures are for trading after a re-arm, which restarts the peak from the equity then "
            "(risk_limits.md, 2a), taken here as today's."
        )
    if inputs.kill_reason is not None:
        out.append(
            f"Halted now: the kill switch is thrown ({safe_text(inputs.kill_reason, 80)}); the run takes no trade "
            "until the operator re-arms. These figures are for trading after a re-arm."
        )
    if inputs.paused:
        out.append("Paused now: the run takes no decision until it is resumed. These figures are for after.")
    if s.start_peak is not None:
        out.append(
            f"Drawdowns are measured from the run's peak {fmt_cc(round(s.start_peak * 10_000))}: equity is "
            f"{_pct(1 - inputs.start_equity_cc / 10_000 / s.start_peak)} below it now (the peak a re-arm after "
            "a kill keeps; only the drawdown stop's re-arm restarts it)."
        )
    return out


def construction_line(res: RuinResult) -> list[str]:
    """Why some zeros are the rules' (``core.ruin.unreachable_drawdown``), when any are."""
    s, bound = res.spec, res.unreachable_drawdown
    if bound is None:
        return []
    most = 1 - (1 - bound) / (1 - s.drawdown_stop)  # the largest share of equity a trade risks
    return [
        f"0 by construction: the drawdown stop halts a path first. A path trades only while it is less than "
        f"{_pct(s.drawdown_stop)} below its peak and a trade risks at most {_pct(most)} of equity, so no path falls "
        f"{_pct(bound)} or more below its peak" + (", nor to the ruin floor" if res.ruin_impossible else "") + ": "
        "those zeros are the rules', not a measurement."
    ]


def describe(res: RuinResult, inputs: RuinInputs) -> list[str]:
    """What was simulated, in words: the sample, the rules, what a day and ruin are."""
    s = res.spec
    stop = (
        f"drawdown stop {_pct(s.drawdown_stop)} from the peak (halts the path)"
        if s.halt_at_drawdown_stop
        else f"drawdown stop {_pct(s.drawdown_stop)} from the peak (not a configured rule: when it is first "
        "reached is reported, trading goes on)"
    )
    floor = (
        "the smallest sampled trade's stake" if s.ruin_floor is None else f"{_pct(s.ruin_floor / s.start_equity)} of it"
    )
    return [
        f"{s.paths:,} paths x {s.n_trades:,} trades, seed {s.seed} (the same seed gives the same numbers); "
        f"starting equity {fmt_cc(inputs.start_equity_cc)} (the ledger's, marked now).",
        f"Sample: the run's latest {res.trades} filled buys ({res.blocks} blocks: a market is one, a mutually "
        "exclusive event one), resampled by block; each risks the share of equity it risked when decided.",
        f"Rules: per-trade cap {_pct(s.max_loss_frac or 0)}, daily loss cap {_pct(s.daily_cap_frac or 0)}, "
        f"{stop}. A day is {s.trades_per_day} trades (the run's mean per UTC day that had trades).",
        f"Ruin: equity below {fmt_cc(round(res.ruin_floor * 10_000))} ({floor}). Optimistic: outcomes drawn "
        "from p̂; sceptical: from the market's mid at decision. ± is one Monte Carlo standard error.",
        *[f"Note: {n}." for n in res.notes],
        *construction_line(res),
    ]


def terminal_lines(res: RuinResult, inputs: RuinInputs) -> list[str]:
    rows = [("", *(c.case for c in res.cases)), *table_rows(res)]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    out = ["odds of ruin over the next trades (paper): " + describe(res, inputs)[0], ""]
    state = state_lines(res, inputs)
    out += [*state, ""] if state else []
    out += [f"{r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]}".rstrip() for r in rows]
    out += ["", *describe(res, inputs)[1:]]
    return out


def markdown_lines(res: RuinResult, inputs: RuinInputs) -> list[str]:
    a, b = res.cases
    out = ["## Odds of ruin (Monte Carlo)", ""]
    for line in state_lines(res, inputs):  # a halted run's figures are for after a re-arm: said first
        out += [line, ""]
    out += [f"| | {a.case} | {b.case} |", "|---|---|---|"]
    out += [f"| {r[0]} | {r[1]} | {r[2]} |" for r in table_rows(res)]
    for line in describe(res, inputs):  # a paragraph each (Markdown joins adjacent lines into one)
        out += ["", line]
    return [*out, ""]


def write_charts(res: RuinResult, folder: Path) -> list[str]:
    """ruin_fan.png (equity quantile bands, both cases) and ruin_drawdown.png (max drawdown per path)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from kakashi_tui.frontends.report.charts import save

    colours = ("tab:green", "tab:red")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, c, colour in zip(axes, res.cases, colours):
        x = c.band_steps
        q = dict(zip(BAND_QUANTILES, (100 * (row - 1) for row in c.bands)))
        ax.fill_between(x, q[0.05], q[0.95], color=colour, alpha=0.18, label="5% to 95% of paths")
        ax.fill_between(x, q[0.25], q[0.75], color=colour, alpha=0.38, label="25% to 75%")
        ax.plot(x, q[0.5], color=colour, lw=1.6, label="median")
        ax.axhline(0, color="black", lw=0.7)
        ax.set_title(f"{c.case}")
        ax.set_xlabel("trades from now")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_ylabel("equity change (% of today's equity)")
    fig.suptitle(f"Equity fan: {res.spec.paths:,} paths, seed {res.spec.seed}")
    save(fig, folder / RUIN_CHARTS[0])

    fig, ax = plt.subplots(figsize=(9, 4))
    top = max(float(np.max(c.max_drawdown)) for c in res.cases) * 100
    bins = [float(b) for b in np.linspace(0, max(top, 1.0), 41)]
    for c, colour in zip(res.cases, colours):
        ax.hist(100 * c.max_drawdown, bins=bins, color=colour, alpha=0.5, label=c.case)
    for k, level in enumerate(res.spec.drawdown_levels):
        ax.axvline(100 * level, color="grey", ls="--", lw=0.8, label="levels of P(drawdown >= x)" if k == 0 else None)
    stop = res.spec.drawdown_stop
    ax.axvline(100 * stop, color="black", lw=1.0, label=f"drawdown stop {_pct(stop)}")
    if res.unreachable_drawdown is not None:  # the zeros by construction, drawn as such
        right = max(100 * max(res.spec.drawdown_levels, default=0), top) * 1.05
        ax.axvspan(
            100 * res.unreachable_drawdown, right, color="grey", alpha=0.12, lw=0, label="no path: the stop halts first"
        )
        ax.set_xlim(right=right)
    ax.set_xlabel(f"largest drawdown over the next {res.spec.n_trades} trades (% of the peak)")
    ax.set_ylabel("paths")
    ax.set_title(f"Drawdown distribution ({res.spec.paths:,} paths, seed {res.spec.seed})")
    ax.legend(loc="best", fontsize=8)  # where no bar or line is (upper right hid the 20% line)
    save(fig, folder / RUIN_CHARTS[1])
    return list(RUIN_CHARTS)


def report_section(
    db: str | Path, folder: Path, limits: RiskLimits, charts: bool, fees: FeeSchedule | None = None
) -> tuple[list[str], list[str]]:
    """The post-mortem's section and chart names (none without filled buys: a line says so)."""
    try:
        inputs = load_inputs(db, fees)
    except KakashiError as e:
        return ["## Odds of ruin (Monte Carlo)", "", f"Not simulated: {e}.", ""], []
    res = simulate(inputs.trades, spec_for(inputs, limits, paths=2_000))
    return markdown_lines(res, inputs), (write_charts(res, folder) if charts else [])
