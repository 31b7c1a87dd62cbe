"""Post-mortem charts as PNG files, rendered headless (matplotlib's Agg backend).

Every chart labels both axes with their units; the calibration chart prints how many settled
markets fell in each bin, so a dot made of one market is not read as a trend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display needed, ever
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from kakashi_tui.core.stats import drawdown_series  # noqa: E402

CHARTS = ("bankroll.png", "drawdown.png", "edge_hist.png", "calibration.png")
#: Issue #24's: CORP reliability diagrams (p̂ and the market's price at decision), the Murphy
#: curves, closing-line value against realised PnL.
EDGE_CHARTS = ("corp_phat.png", "corp_market.png", "murphy.png", "clv_pnl.png")
#: Issue #23's: mean markout by horizon, maker vs taker.
MARKOUT_CHART = "markouts.png"
TIME_LABEL = "time (UTC)"


def _dt(ms: int) -> Any:  # a datetime, which matplotlib plots as a date (its stubs say float)
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def calibration_bins(pairs) -> list[tuple[float, float, int]]:
    """(bin centre, share that settled YES, count) per p̂ decile that holds any market."""
    bins: dict[int, list[int]] = {}
    for p, _m, y in pairs:
        bins.setdefault(min(int(p * 10), 9), []).append(y)
    return [((b + 0.5) / 10, sum(v) / len(v), len(v)) for b, v in sorted(bins.items())]


#: The calibration chart's dots, in points²: the smallest bin's and the largest's. Once 20 + 10 n, a
#: bin of 200 markets drew a dot 45 points wide, over its neighbours, its count and the legend.
BUBBLE_MIN, BUBBLE_MAX = 30.0, 260.0


def bubble_sizes(counts: list[int]) -> list[float]:
    """Dot areas from ``BUBBLE_MIN`` to ``BUBBLE_MAX``, in proportion to each bin's count."""
    top = max(counts, default=0) or 1
    return [BUBBLE_MIN + (BUBBLE_MAX - BUBBLE_MIN) * n / top for n in counts]


def figures(d) -> dict[str, Figure]:
    """The four charts as matplotlib figures (the caller saves and closes them)."""
    out: dict[str, Figure] = {}
    # bankroll: equity over time, trades marked
    fig, ax = plt.subplots(figsize=(9, 4))
    if d.equity:
        xs = [_dt(t) for t, _ in d.equity]
        ax.plot(xs, [v / 10_000 for _, v in d.equity], lw=1.2, label="equity")
        eq_at = dict(d.equity)
        buys = [f for f in d.fills if f[4] == "buy"]
        if buys:
            ts = sorted(eq_at)
            marks = []
            for f in buys:
                near = min(ts, key=lambda t: abs(t - f[1]))
                marks.append((_dt(f[1]), eq_at[near] / 10_000))
            ax.scatter(
                [m[0] for m in marks],
                [m[1] for m in marks],
                s=12,
                marker="^",
                color="tab:green",
                label="trade",
                zorder=3,
            )
        ax.legend(loc="best")
    else:
        _empty(ax, "no ticks in this period")
    ax.set_title("Bankroll (equity, marked at the bid)")
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel("equity ($)")
    out["bankroll.png"] = fig

    # drawdown
    fig, ax = plt.subplots(figsize=(9, 3))
    dds = drawdown_series(d.equity)
    if dds:
        ax.fill_between(
            [_dt(t) for t, _ in dds], [-v / 10_000 for _, v in dds], 0, color="tab:red", alpha=0.4, step="post"
        )
    else:
        _empty(ax, "no ticks in this period")
    ax.set_title("Drawdown from the running peak")
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel("below peak ($)")
    out["drawdown.png"] = fig

    # edge histogram: predicted EV at entry and realised PnL per contract, of the period's closed trades
    fig, ax = plt.subplots(figsize=(9, 4))
    # centicents to cents per contract
    pred = [t.predicted_ev_cc / 100 / float(t.contracts) for t in d.closed if t.contracts]
    real = [t.pnl_cc / 100 / float(t.contracts) for t in d.closed if t.contracts]
    if pred or real:
        if pred:
            ax.hist(pred, bins=20, alpha=0.6, label="predicted EV at entry")
        if real:
            ax.hist(real, bins=20, alpha=0.6, label="realised PnL")
        ax.axvline(0, color="black", lw=0.8)
        ax.legend(loc="best")
    else:
        _empty(ax, "no trades in this period")
    ax.set_title("Edge: predicted against realised, per contract")
    ax.set_xlabel("¢ per contract")
    ax.set_ylabel("closed trades")
    out["edge_hist.png"] = fig

    # calibration: p_hat bins against settled outcomes, with the count in each bin; the legend sits
    # under the axes, where no point can be (a bin may land in any corner)
    fig, ax = plt.subplots(figsize=(5, 6))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfect calibration")
    cal = calibration_bins(d.brier_pairs)
    if cal:
        sizes = bubble_sizes([n for _x, _y, n in cal])
        ax.scatter(
            [x for x, _y, _n in cal],
            [y for _x, y, _n in cal],
            s=sizes,
            alpha=0.8,
            label="p̂ decile: share that settled YES (area: markets)",
        )
        for (x, y, n), size in zip(cal, sizes):  # each count just above its own dot, whatever its size
            up = size**0.5 / 2 + 2
            ax.annotate(f"n={n}", (x, y), textcoords="offset points", xytext=(0, up), ha="center", fontsize=8)
        leg = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, frameon=False)
        for h in leg.legend_handles:  # the legend's dot: small, beside its words
            if isinstance(h, PathCollection):
                h.set_sizes([BUBBLE_MIN])
    else:
        _empty(ax, "no settled markets with estimates")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.05, 1.1)  # a bin at 0 or 1 shows whole, its count above it
    ax.set_xlabel("p̂ (your probability of YES), by decile")
    ax.set_ylabel("observed frequency of YES")
    ax.set_title("Calibration (n = settled markets in the bin)")
    out["calibration.png"] = fig
    return out


def _corp(ax, x, y, who: str) -> None:
    """A CORP reliability diagram: the PAV-recalibrated curve, its consistency band, the forecasts' spread."""
    import numpy as np

    from kakashi_tui.frontends.report import scoring as sc

    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    recal = sc.recalibrate(xs, ys)
    bx, lo, hi = sc.consistency_band(xs)
    ax.fill_between(bx, lo, hi, color="tab:blue", alpha=0.18, step="post", label="90% consistency band (calibrated)")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfect calibration")
    ax.step(xs, recal, where="post", color="tab:red", lw=1.6, label="CORP recalibrated (PAV)")
    counts, edges = np.histogram(x, bins=20, range=(0, 1))
    ax.bar(
        edges[:-1],
        0.15 * counts / max(1, counts.max()),
        width=0.05,
        align="edge",
        color="black",
        alpha=0.25,
        label=f"forecasts per 0.05 (tallest bar: {counts.max()})",
    )
    d = sc.decompose(x, y)
    ax.text(
        0.02,
        0.97,
        f"n = {x.size}\nBrier {d.score:.4f}\nMCB {d.mcb:.4f}\nDSC {d.dsc:.4f}\nUNC {d.unc:.4f}",
        transform=ax.transAxes,
        va="top",
        fontsize=8,
        family="monospace",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"{who}: forecast probability of YES")
    ax.set_ylabel("recalibrated probability (CEP)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, frameon=False, ncol=2)


def edge_figures(d) -> dict[str, Figure]:
    """The scoring charts (issue #24) as matplotlib figures (the caller saves and closes them)."""
    import numpy as np

    from kakashi_tui.frontends.report import scoring as sc

    out: dict[str, Figure] = {}
    s = d.scored
    for name, who, key in (("corp_phat.png", "p̂", "p"), ("corp_market.png", "market mid at decision", "m")):
        fig, ax = plt.subplots(figsize=(5.5, 6.2))
        if s is not None and s.n >= 2:
            _corp(ax, getattr(s, key), s.y, who)
        else:
            _empty(ax, "too few settled markets with a decision")
        ax.set_title(f"CORP reliability: {who}")
        out[name] = fig

    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True, height_ratios=(2, 1))
    if s is not None:
        th = np.linspace(0.01, 0.99, 99)
        pp, pm = 100 * sc.murphy_pnl(s.p, s.y, th), 100 * sc.murphy_pnl(s.m, s.y, th)
        ax.plot(th, pp, color="tab:blue", lw=1.6, label="p̂")
        ax.plot(th, pm, color="tab:orange", lw=1.6, label="market mid at decision")
        ax.axhline(0, color="black", lw=0.6)
        ax.legend(loc="best")
        ax2.plot(th, pp - pm, color="tab:green", lw=1.4)
        ax2.axhline(0, color="black", lw=0.6)
    else:
        _empty(ax, "no settled markets with a decision")
    ax.set_xlim(0, 1)
    ax.set_title("Murphy curve: P&L of buying YES at θ when the forecast is above θ")
    ax.set_ylabel("mean P&L per settled\nmarket (¢/contract)")
    ax2.set_xlabel("θ (price paid for YES, $)")
    ax2.set_ylabel("p̂ minus market (¢)")
    out["murphy.png"] = fig

    fig, ax = plt.subplots(figsize=(7, 5))
    lv = d.line_value
    pts = [(e.clv_fees, e.pnl) for e in (lv.entries if lv else []) if e.pnl is not None]
    if pts:
        xs, ys = np.array([p[0] for p in pts]) * 100, np.array([p[1] for p in pts]) * 100
        ax.scatter(xs, ys, s=14, alpha=0.6, color="tab:blue", label=f"entries (n = {len(pts)})")
        ax.axvline(0, color="black", lw=0.6)
        ax.axhline(0, color="black", lw=0.6)
        ax.legend(loc="upper left")
    else:
        _empty(ax, "no closed entries with a closing price")
    ax.set_title("Closing-line value against realised PnL, per contract")
    ax.set_xlabel("CLV after fees (¢ per contract)")
    ax.set_ylabel("realised PnL (¢ per contract)")
    out["clv_pnl.png"] = fig
    return out


def markout_figure(d) -> Figure:
    """Mean markout by horizon, per role, with its 95% interval (by event): the adverse-selection
    table drawn (issue #23, item 6). A horizon no fill has yet is left out of its line, as is one
    where no fill saw a quote newer than its own (it measures nothing: a note where it would be says so)."""
    from kakashi_tui.core.markout import LABELS
    from kakashi_tui.frontends.report.markouts import by_role

    fig, ax = plt.subplots(figsize=(8, 4.5))
    roles = by_role(d.markouts)
    colours = {"taker": "tab:blue", "maker": "tab:orange"}
    for k, r in enumerate(roles):
        colour = colours.get(r.role, f"C{k + 2}")
        for j, (attr, style, word) in enumerate((("plain", "-", "markout"), ("net", "--", "after fees"))):
            pts = [
                (i, getattr(c, attr)) for i, c in enumerate(r.cells) if getattr(c, attr) is not None and not c.all_blind
            ]
            if not pts:
                continue
            shift = 0.07 * (2 * k + j - (2 * len(roles) - 1) / 2)  # side by side, each bar its own
            xs = [i + shift for i, _iv in pts]
            ys = [iv.estimate / 100 for _i, iv in pts]
            err = [
                [(iv.estimate - iv.lo) / 100 if iv.lo is not None else 0 for _i, iv in pts],
                [(iv.hi - iv.estimate) / 100 if iv.hi is not None else 0 for _i, iv in pts],
            ]
            ax.errorbar(
                xs,
                ys,
                yerr=err,
                fmt="o" + style,
                color=colour,
                capsize=3,
                lw=1.4,
                ms=4,
                alpha=1.0 if attr == "plain" else 0.6,
                label=f"{r.role} {word} (n = {r.fills})",
            )
    if roles:
        ax.axhline(0, color="black", lw=0.6)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8, frameon=False, ncol=2)
    else:
        _empty(ax, "no fills in this period")
    blind = {c.label for r in roles for c in r.cells if c.all_blind}
    for i, label in enumerate(LABELS):  # said in the plot, where the point would be: the axis stays as it is
        if label in blind:
            ax.axvspan(i - 0.35, i + 0.35, color="grey", alpha=0.12, lw=0)
            ax.text(
                i,
                0.5,
                "no quote\nbetween:\n= fill-time\nmid",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="center",
                fontsize=8,
                color="dimgrey",
            )
    ax.set_xticks(range(len(LABELS)), LABELS)
    ax.set_xlim(-0.5, len(LABELS) - 0.5)
    ax.set_title("Markouts: the mid after each fill less its price (95% CI by event)")
    ax.set_xlabel("time after the fill")
    ax.set_ylabel("¢ per contract (above 0: the fill's way)")
    return fig


def save(fig: Figure, path: Path) -> None:
    """Lay ``fig`` out tightly, write it as a PNG and close it. ``tight_layout`` leaves a
    placeholder layout engine behind, which makes ``savefig`` draw the whole figure once more
    before the real draw; dropping it after the layout is done writes the same pixels for two
    draws, not three."""
    fig.tight_layout()
    fig.set_layout_engine(None)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def write_charts(d, folder: Path) -> list[str]:
    """bankroll.png, drawdown.png, edge_hist.png, calibration.png, the scoring charts and the
    markouts in ``folder``."""
    for name, fig in {**figures(d), **edge_figures(d), MARKOUT_CHART: markout_figure(d)}.items():
        save(fig, folder / name)
    return [*CHARTS, *EDGE_CHARTS, MARKOUT_CHART]
