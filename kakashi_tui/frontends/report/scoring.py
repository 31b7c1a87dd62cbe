"""Is the edge real? p̂ scored against the market's price, with intervals that resample events.

Imported only by the report (numpy at import; scikit-learn's isotonic regression inside the
functions that need it), so no command but ``kakashi report`` and a post-mortem pays for it.

Methods (cited in the report's own "Methods" section and in rules.md):

- **CORP** (Dimitriadis, Gneiting and Jordan, "Stable reliability diagrams for probabilistic
  classifiers", PNAS 118(8), 2021): the recalibrated forecast is the isotonic (PAV) regression of
  the outcomes on the forecast (scikit-learn's ``IsotonicRegression``); the mean score splits as
  ``score = MCB - DSC + UNC``: miscalibration ``S(x) - S(x_recal)``, discrimination
  ``S(climatology) - S(x_recal)``, uncertainty ``S(climatology)``. Consistency bands: outcomes
  redrawn as Bernoulli(x) (what a calibrated forecast would see), recalibrated again, the
  pointwise 5% and 95% quantiles; the redraws are fitted all at once (``recalibrate_many``, the
  same PAV fit as scikit-learn's, checked against it in the tests).
- **Murphy curve** (Ehm, Gneiting, Jordan and Krüger, "Of quantiles and expectiles: consistent
  scoring functions, Choquet representations and forecast rankings", JRSS-B 78(3), 2016): for a
  binary event the elementary score at threshold θ is, up to a term the forecast cannot move,
  the P&L of a bettor who buys YES at price θ whenever the forecast is above θ. ``murphy_pnl``
  is that P&L per forecast; ``elementary_score`` is the paper's
  ``S_θ(x, y) = ½[(y - θ)₊ - 1{x > θ}(y - θ)]``, whose integral over θ in (0, 1) is a quarter of
  the Brier score.
- **Event-clustered bootstrap** and **closing-line value**: ``core/intervals.py`` (re-exported
  here), where the engine reads them too (a plan's kill conditions, trading/plancheck.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kakashi_tui.core.intervals import (  # noqa: F401 (the report's names for them)
    RESAMPLES,
    SEED,
    Z95,
    Interval,
    brier_scores,
    cluster_index,
    clustered_mean,
    clustered_skill,
    clv,
    more_needed,
)

#: CORP consistency bands: redraws of the outcomes under calibration, and their seed.
BAND_RESAMPLES = 200
#: The log score's forecasts are held inside [EPS, 1 - EPS] (a belief of exactly 0 or 1 that
#: missed would score infinity; the clip is said in the report).
EPS = 1e-4


# -- scores ---------------------------------------------------------------------------------
def log_scores(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Negative log likelihood (natural log): lower is better. 0·log 0 is 0."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    p = np.where(y == 1, x, 1 - x)
    with np.errstate(divide="ignore"):
        return np.asarray(-np.log(p), float)


SCORES = {"Brier": brier_scores, "log": log_scores}


def recalibrate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CORP: the PAV (isotonic, increasing) fit of outcomes on forecasts, at each forecast."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    return np.asarray(iso.fit_transform(np.asarray(x, float), np.asarray(y, float)), float)


#: Above this many distinct forecasts ``recalibrate_many`` fits row by row (its table grows as the square).
MANY_MAX_DISTINCT = 150


def recalibrate_many(x: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """``recalibrate(x, row)`` for every row of 0/1 outcomes ``draws`` (rows x n), ``x`` sorted.

    The same PAV fit, all rows at once: scikit-learn's per-call overhead (~1 ms) was most of a
    consistency band's cost. Tied forecasts are pooled first (as scikit-learn does), then the
    isotonic fit at block ``i`` is its min-max form ``max_{j<=i} min_{k>=i} mean(blocks j..k)``
    (Barlow et al., *Statistical Inference under Order Restrictions*, 1972), each mean one
    division of whole counts; ``tests/unit/test_scoring.py`` checks it against scikit-learn."""
    x = np.asarray(x, float)
    d = np.asarray(draws, dtype=bool)
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]]) if x.size else np.zeros(0, np.int64)
    m = starts.size
    if m == 0 or m > MANY_MAX_DISTINCT:
        return np.vstack([recalibrate(x, row.astype(float)) for row in d]).reshape(d.shape)
    ones = np.add.reduceat(d.astype(np.int64), starts, axis=1)  # rows x m: YES outcomes per block
    cs = np.concatenate([np.zeros((d.shape[0], 1), np.int64), np.cumsum(ones, axis=1)], axis=1)
    cw = np.r_[0, np.cumsum(np.diff(np.r_[starts, x.size]))]
    j, k = np.arange(m)[:, None], np.arange(m)[None, :]
    n_jk = np.where(k >= j, cw[k + 1] - cw[j], 1)  # items in blocks j..k (1 where unused)
    out = np.empty((d.shape[0], m))
    step = max(1, 2_000_000 // (m * m))
    for r0 in range(0, d.shape[0], step):
        c = cs[r0 : r0 + step]
        mean = (c[:, None, 1:] - c[:, :-1, None]) / n_jk  # [r, j, k]: mean of blocks j..k
        low = np.minimum.accumulate(mean[:, :, ::-1], axis=2)[:, :, ::-1]  # [r, j, i]: min over k >= i
        out[r0 : r0 + step] = np.where(k >= j, low, -np.inf).max(axis=1)  # max over j <= i
    return np.repeat(out, np.diff(np.r_[starts, x.size]), axis=1)


@dataclass(frozen=True)
class Decomposition:
    score: float
    mcb: float  # miscalibration (>= 0)
    dsc: float  # discrimination (>= 0)
    unc: float  # uncertainty


def decompose(x: np.ndarray, y: np.ndarray, score: str = "Brier", recal: np.ndarray | None = None) -> Decomposition:
    """``score = mcb - dsc + unc`` (CORP), for the Brier or the log score."""
    f = SCORES[score]
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if score == "log":
        x = np.clip(x, EPS, 1 - EPS)
    r = recalibrate(x, y) if recal is None else recal
    clim = np.full_like(y, y.mean())
    s, s_r, s_c = float(f(x, y).mean()), float(f(r, y).mean()), float(f(clim, y).mean())
    return Decomposition(s, s - s_r, s_c - s_r, s_c)


def consistency_band(
    x: np.ndarray, resamples: int = BAND_RESAMPLES, seed: int = SEED, level: float = 0.90
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted forecasts, lower, upper): where a calibrated forecaster's recalibrated curve falls
    ``level`` of the time, outcomes redrawn as Bernoulli(x) each time (CORP's consistency band)."""
    x = np.sort(np.asarray(x, float))
    rng = np.random.default_rng(seed)
    draws = rng.random((resamples, x.size)) < x
    fits = recalibrate_many(x, draws)
    a = (1 - level) / 2
    lo, hi = np.quantile(fits, [a, 1 - a], axis=0)
    return x, lo, hi


# -- Murphy curve ---------------------------------------------------------------------------
def murphy_pnl(x: np.ndarray, y: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """Mean P&L per forecast, in dollars per contract, of buying one YES at price θ whenever the
    forecast is above θ, for each θ (higher is better)."""
    x = np.asarray(x, float)[None, :]
    y = np.asarray(y, float)[None, :]
    t = np.asarray(thetas, float)[:, None]
    return np.asarray(((x > t) * (y - t)).mean(axis=1), float)


def elementary_score(x: np.ndarray, y: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """Ehm et al.'s mean elementary score at each θ (lower is better): half the P&L a bettor
    buying at θ missed against one who knew the outcome."""
    y2 = np.asarray(y, float)[None, :]
    t = np.asarray(thetas, float)[:, None]
    best = np.maximum(y2 - t, 0).mean(axis=1)
    return np.asarray(0.5 * (best - murphy_pnl(x, y, thetas)), float)
