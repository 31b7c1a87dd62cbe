"""Statistics for post-mortems: is the edge real, or luck? Pure functions, seeded.

A binary contract's payoff has large variance, so a few dozen trades say little. The
verdict leans on a bootstrap confidence interval of mean PnL per trade, and says plainly
when the sample is too small to tell.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

#: Below this many closed trades the report refuses to call an edge either way.
MIN_TRADES_FOR_VERDICT = 30


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def bootstrap_ci(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the mean. Same inputs and seed -> same interval."""
    n = len(values)
    if n < 2:
        return None
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    alpha = (1 - confidence) / 2
    lo = means[int(alpha * resamples)]
    hi = means[min(resamples - 1, int((1 - alpha) * resamples))]
    return lo, hi


@dataclass(frozen=True)
class Drawdown:
    depth: int  # in the series' unit (equity: centicents), >= 0
    peak_ts: int | None
    trough_ts: int | None


def max_drawdown(series: Sequence[tuple[int, int]]) -> Drawdown:
    """Largest peak-to-trough fall of (ts, equity) points."""
    best = Drawdown(0, None, None)
    peak_v, peak_t = None, None
    for ts, v in series:
        if peak_v is None or v > peak_v:
            peak_v, peak_t = v, ts
        elif peak_v - v > best.depth:
            best = Drawdown(peak_v - v, peak_t, ts)
    return best


def drawdown_series(series: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out, peak = [], None
    for ts, v in series:
        peak = v if peak is None else max(peak, v)
        out.append((ts, peak - v))
    return out


def brier(pairs: Sequence[tuple[float, int]]) -> float | None:
    """Mean squared error of probabilities against 0/1 outcomes (lower is better)."""
    if not pairs:
        return None
    return sum((p - y) ** 2 for p, y in pairs) / len(pairs)


def verdict(pnls: Sequence[float], ci: tuple[float, float] | None) -> str:
    n = len(pnls)
    if n == 0:
        return "No closed trades in this period: nothing to judge."
    if n < MIN_TRADES_FOR_VERDICT or ci is None:
        return (
            f"Too few closed trades ({n} < {MIN_TRADES_FOR_VERDICT}) to tell edge from luck. "
            "Keep paper trading; do not read anything into the bankroll line yet."
        )
    lo, hi = ci
    if lo > 0:
        return (
            f"Mean PnL per trade is positive and its 95% interval excludes zero over {n} trades: "
            "evidence of an edge on paper, with this estimator. It is not proof: check it holds "
            "out of sample before risking anything."
        )
    if hi < 0:
        return f"Mean PnL per trade is negative and its 95% interval excludes zero over {n} trades: a losing strategy."
    return (
        f"The 95% interval of mean PnL per trade includes zero over {n} trades: "
        "the result cannot be told apart from luck."
    )
