"""Event-clustered intervals and closing-line value: the edge's numbers that more than the report
needs (a plan's kill conditions are checked by the engine as trades settle: trading/plancheck.py).

Pure: numpy, no I/O. Moved here from ``frontends/report/scoring.py`` (which re-exports them) so the
report and the engine compute each number with the one function.

- **Event-clustered bootstrap**: brackets of one Kalshi event are mutually exclusive, so their
  outcomes are not independent. Every interval here resamples whole events (with replacement,
  as many as there are), never single trades; a statistic is a ratio of sums over the events
  drawn. Vectorised: one draw of event counts per resample, then a matrix product.
- **Closing-line value**: the side's closing mid less the price paid (less the fee per contract
  for the fee-adjusted variant).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Every interval's resamples and seed (repeatable: the same data gives the same interval).
RESAMPLES = 2000
SEED = 20_260_105
Z95 = 1.959963984540054


def brier_scores(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.asarray((np.asarray(x, float) - np.asarray(y, float)) ** 2, float)


# -- event-clustered intervals --------------------------------------------------------------
def cluster_index(events: Sequence[str]) -> np.ndarray:
    """Each item's event as an integer 0..G-1 (first seen, first numbered)."""
    seen: dict[str, int] = {}
    return np.array([seen.setdefault(e, len(seen)) for e in events], dtype=np.int64)


def _draws(groups: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """resamples x G: how many times each event is drawn (G draws with replacement), as counts:
    one flat ``bincount`` of uniform draws (a multinomial per resample was ten times slower). The
    same (G, resamples, seed) gives the same draws, made once (every statistic of a report on the
    same events shares them)."""
    return _draws_of(int(groups.max()) + 1, resamples, seed)


@lru_cache(maxsize=4)
def _draws_of(g: int, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, g, size=(resamples, g), dtype=np.int64)
    picks += (np.arange(resamples, dtype=np.int64) * g)[:, None]
    out = np.bincount(picks.ravel(), minlength=resamples * g).reshape(resamples, g).astype(float)
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class Interval:
    estimate: float
    lo: float | None  # None: fewer than two events, no interval
    hi: float | None
    n: int  # items (trades, forecasts)
    events: int

    @property
    def se(self) -> float | None:
        """The interval's half-width over 1.96: its standard error, as a normal reading of it."""
        return None if self.lo is None or self.hi is None else (self.hi - self.lo) / (2 * Z95)


def _percentile(stats: np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return float(lo), float(hi)


def clustered_mean(
    values: Sequence[float] | np.ndarray, groups: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED
) -> Interval:
    """The mean of ``values`` with a percentile 95% interval that resamples events."""
    v = np.asarray(values, float)
    n = int(v.size)
    g = int(groups.max()) + 1 if n else 0
    est = float(v.mean()) if n else math.nan
    if g < 2:
        return Interval(est, None, None, n, g)
    sums = np.bincount(groups, weights=v, minlength=g)
    counts = np.bincount(groups, minlength=g).astype(float)
    w = _draws(groups, resamples, seed)
    lo, hi = _percentile((w @ sums) / (w @ counts))
    return Interval(est, lo, hi, n, g)


def clustered_skill(
    score_p: np.ndarray, score_m: np.ndarray, groups: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED
) -> Interval:
    """Skill against the market, ``1 - mean score(p̂) / mean score(market)`` (above 0: p̂ scored
    better), with a percentile 95% interval that resamples events (the pairs of one event together)."""
    sp, sm = np.asarray(score_p, float), np.asarray(score_m, float)
    n = int(sp.size)
    g = int(groups.max()) + 1 if n else 0
    total_m = float(sm.sum())
    est = 1 - float(sp.sum()) / total_m if total_m > 0 else math.nan
    if g < 2 or total_m <= 0:
        return Interval(est, None, None, n, g)
    w = _draws(groups, resamples, seed)
    num = w @ np.bincount(groups, weights=sp, minlength=g)
    den = w @ np.bincount(groups, weights=sm, minlength=g)
    ok = den > 0
    lo, hi = _percentile(1 - num[ok] / den[ok])
    return Interval(est, lo, hi, n, g)


def more_needed(iv: Interval) -> int | None:
    """How many more settled trades before the 95% lower bound would clear zero, if the effect and
    the spread per trade stayed as observed (the interval narrows as 1/sqrt(n)): 0 when it already
    has, None when the effect is not above zero (no number of trades would do it)."""
    if iv.lo is not None and iv.lo > 0:
        return 0
    se = iv.se
    if se is None or not iv.estimate > 0 or not math.isfinite(iv.estimate):
        return None
    need = iv.n * (Z95 * se / iv.estimate) ** 2
    return max(0, math.ceil(need) - iv.n)


# -- closing-line value ---------------------------------------------------------------------
def clv(side: str, price: float, close_mid: float, fee: float = 0.0) -> float:
    """Closing-line value per contract, in dollars: the side's closing mid (YES: the mid; NO: one
    minus it) less the price paid, less ``fee`` per contract (0: the plain variant)."""
    closing = close_mid if side == "yes" else 1 - close_mid
    return closing - price - fee
