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
from matplotlib.figure import Figure  # noqa: E402

from kakashi_tui.core.stats import drawdown_series  # noqa: E402

CHARTS = ("bankroll.png", "drawdown.png", "edge_hist.png", "calibration.png")
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
        ax.scatter(
            [x for x, _y, _n in cal],
            [y for _x, y, _n in cal],
            s=[20 + 10 * n for _x, _y, n in cal],
            label="p̂ decile: share that settled YES",
        )
        for x, y, n in cal:
            ax.annotate(f"n={n}", (x, y), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, frameon=False)
    else:
        _empty(ax, "no settled markets with estimates")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.05, 1.1)  # a bin at 0 or 1 shows whole, its count above it
    ax.set_xlabel("p̂ (your probability of YES), by decile")
    ax.set_ylabel("observed frequency of YES")
    ax.set_title("Calibration (n = settled markets in the bin)")
    out["calibration.png"] = fig
    return out


def write_charts(d, folder: Path) -> list[str]:
    """bankroll.png, drawdown.png, edge_hist.png, calibration.png in ``folder``."""
    for name, fig in figures(d).items():
        fig.tight_layout()
        fig.savefig(folder / name, dpi=100, metadata={"Software": None})
        plt.close(fig)
    return list(CHARTS)
