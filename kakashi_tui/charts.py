"""Post-mortem charts as PNG files, rendered headless (matplotlib's Agg backend)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed, ever
import matplotlib.pyplot as plt  # noqa: E402

from kakashi_tui.core.stats import drawdown_series  # noqa: E402

CHARTS = ("bankroll.png", "drawdown.png", "edge_hist.png", "calibration.png")


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def write_charts(d, folder: Path) -> list[str]:
    """bankroll.png, drawdown.png, edge_hist.png, calibration.png in ``folder``."""
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
            ax.scatter([m[0] for m in marks], [m[1] for m in marks], s=12, marker="^", color="tab:green",
                       label="trade", zorder=3)
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "no ticks in this period", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Bankroll (equity, marked at the bid)")
    ax.set_ylabel("$")
    _save(fig, folder / "bankroll.png")

    # drawdown
    fig, ax = plt.subplots(figsize=(9, 3))
    dds = drawdown_series(d.equity)
    if dds:
        ax.fill_between([_dt(t) for t, _ in dds], [-v / 10_000 for _, v in dds], 0, color="tab:red", alpha=0.4, step="post")
    ax.set_title("Drawdown from the running peak")
    ax.set_ylabel("$")
    _save(fig, folder / "drawdown.png")

    # edge histogram: predicted EV at entry and realised PnL per contract
    fig, ax = plt.subplots(figsize=(9, 4))
    pred = [t.predicted_ev_cc / float(t.contracts) for t in d.trades if t.contracts]
    real = [t.realized_cc / float(t.contracts) for t in d.trades if t.contracts and t.realized_cc is not None]
    if pred or real:
        bins = 20
        if pred:
            ax.hist(pred, bins=bins, alpha=0.6, label="predicted EV at entry (¢/contract)")
        if real:
            ax.hist(real, bins=bins, alpha=0.6, label="realised PnL (¢/contract)")
        ax.axvline(0, color="black", lw=0.8)
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "no trades in this period", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Edge: predicted against realised, per contract")
    _save(fig, folder / "edge_hist.png")

    # calibration: p_hat bins against settled outcomes
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfect calibration")
    if d.brier_pairs:
        bins: dict[int, list[int]] = {}
        for p, _m, y in d.brier_pairs:
            bins.setdefault(min(int(p * 10), 9), []).append(y)
        xs = [(b + 0.5) / 10 for b in sorted(bins)]
        ys = [sum(v) / len(v) for _b, v in sorted(bins.items())]
        ns = [len(v) for _b, v in sorted(bins.items())]
        ax.scatter(xs, ys, s=[20 + 10 * n for n in ns], label="p̂ decile: share that settled YES")
        ax.legend(loc="upper left")
    else:
        ax.text(0.5, 0.5, "no settled markets with estimates", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("p̂")
    ax.set_ylabel("observed frequency of YES")
    ax.set_title("Calibration")
    _save(fig, folder / "calibration.png")
    return list(CHARTS)
