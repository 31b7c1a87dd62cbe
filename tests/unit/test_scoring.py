"""The post-mortem's scoring (issue #24) against values worked out by hand, and the CORP
decomposition against an independent implementation (model-diagnostics, a test-only dependency)."""

import math

import numpy as np
import pytest

from kakashi_tui.frontends.report import scoring as sc


def test_clv_yes_no_mirrored_and_after_fees():
    # YES bought at 0.42, the market closed at a 0.50 mid: 8 cents of closing-line value
    assert sc.clv("yes", 0.42, 0.50) == pytest.approx(0.08)
    # after a 2-cent fee per contract: 6 cents
    assert sc.clv("yes", 0.42, 0.50, 0.02) == pytest.approx(0.06)
    # NO bought at 0.55 against a YES close of 0.50: NO closed at 0.50, so -5 cents
    assert sc.clv("no", 0.55, 0.50) == pytest.approx(-0.05)
    # NO bought at 0.30 against a YES close of 0.60: NO closed at 0.40, +10 cents; less 1.5c fee: +8.5
    assert sc.clv("no", 0.30, 0.60, 0.015) == pytest.approx(0.085)


def test_murphy_curve_is_the_pnl_of_buying_yes_at_theta_when_the_forecast_is_above_it():
    x = np.array([0.7, 0.3, 0.6])
    y = np.array([1, 0, 0])
    th = np.array([0.2, 0.5, 0.65, 0.8])
    # theta 0.2: all three buy: (1 - .2) + (0 - .2) + (0 - .2) = 0.4, over 3 forecasts
    # theta 0.5: the first and third: 0.5 - 0.5 = 0
    # theta 0.65: the first alone: 0.35 / 3
    # theta 0.8: none
    assert sc.murphy_pnl(x, y, th) == pytest.approx([0.4 / 3, 0.0, 0.35 / 3, 0.0])
    # Ehm et al.'s elementary score: half of (the P&L of knowing the outcome - the bettor's)
    # theta 0.5: knowing, only the first is bought: 0.5 / 3; so (0.5/3 - 0) / 2
    assert sc.elementary_score(x, y, np.array([0.5]))[0] == pytest.approx(0.5 / 3 / 2)
    # and its integral over theta is a quarter of the Brier score (the mixture representation)
    th = np.linspace(0, 1, 20_001)
    brier = float(sc.brier_scores(x, y).mean())
    assert np.trapezoid(sc.elementary_score(x, y, th), th) == pytest.approx(brier / 4, abs=1e-5)  # (steps at each x)


def test_the_interval_resamples_events_whole():
    # event A: four trades that each made $1; event B: one that made $0. Drawing two events with
    # replacement gives AA (mean 1), BB (mean 0) or AB (4/5): nothing else. A trade-level bootstrap
    # would all but never give a mean of 0 (0.2^5), so its lower bound would sit far above it.
    values = [1.0, 1.0, 1.0, 1.0, 0.0]
    groups = sc.cluster_index(["A", "A", "A", "A", "B"])
    iv = sc.clustered_mean(values, groups)
    assert iv.estimate == pytest.approx(0.8)
    assert (iv.lo, iv.hi) == (0.0, 1.0)  # BB and AA each come a quarter of the time
    assert (iv.n, iv.events) == (5, 2)
    # as independent trades (each its own event) the interval is narrower and above 0
    solo = sc.clustered_mean(values, sc.cluster_index(list("abcde")))
    assert solo.lo is not None and solo.lo > 0
    # one event: no interval at all
    assert sc.clustered_mean([1.0, 0.0], sc.cluster_index(["E", "E"])).lo is None


def test_skill_pairs_one_events_brackets_together():
    # two events of two brackets each; p̂ squared errors and the market's
    sp = np.array([0.01, 0.04, 0.09, 0.16])
    sm = np.array([0.04, 0.04, 0.16, 0.16])
    g = sc.cluster_index(["E1", "E1", "E2", "E2"])
    iv = sc.clustered_skill(sp, sm, g)
    assert iv.estimate == pytest.approx(1 - 0.30 / 0.40)
    # the draws: E1E1: 1 - .05/.08; E2E2: 1 - .25/.32; E1E2: the estimate. So the bounds are E2E2's and E1E1's
    assert iv.lo == pytest.approx(1 - 0.25 / 0.32)
    assert iv.hi == pytest.approx(1 - 0.05 / 0.08)


def test_more_trades_needed_scales_the_interval_as_one_over_root_n():
    # estimate 0.10, interval -0.02..+0.22 on 100 trades: se = 0.24 / 3.92; the lower bound clears
    # zero at n = 100 x (1.96 se / 0.10)^2 = 100 x 1.2^2 = 144: 44 more
    iv = sc.Interval(0.10, -0.02, 0.22, 100, 100)
    assert sc.more_needed(iv) == 44
    assert sc.more_needed(sc.Interval(0.10, 0.01, 0.19, 100, 100)) == 0  # already clear
    assert sc.more_needed(sc.Interval(-0.01, -0.05, 0.03, 100, 100)) is None  # never, at this effect
    assert sc.more_needed(sc.Interval(0.10, None, None, 1, 1)) is None  # no interval to scale


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_decomposition_matches_model_diagnostics(seed):
    from model_diagnostics.scoring import LogLoss, SquaredError, decompose

    rng = np.random.default_rng(seed)
    n = 400
    truth = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < truth).astype(float)
    p_hat = np.round(np.clip(truth + rng.normal(0, 0.1, n), 0.01, 0.99), 2)  # ties, as real beliefs have
    market = np.round(np.clip(0.5 + 0.6 * (truth - 0.5) + rng.normal(0, 0.05, n), 0.01, 0.99), 2)
    for x in (p_hat, market):
        for kind, fn in (("Brier", SquaredError()), ("log", LogLoss())):
            ours = sc.decompose(x, y, kind)
            theirs = decompose(y, x, scoring_function=fn).row(0, named=True)
            assert ours.score == pytest.approx(theirs["score"], rel=1e-9)
            assert ours.mcb == pytest.approx(theirs["miscalibration"], rel=1e-9, abs=1e-12)
            assert ours.dsc == pytest.approx(theirs["discrimination"], rel=1e-9, abs=1e-12)
            assert ours.unc == pytest.approx(theirs["uncertainty"], rel=1e-9)
            assert ours.score == pytest.approx(ours.mcb - ours.dsc + ours.unc)


def test_decomposition_worked_by_hand():
    # forecasts .2 .2 .8 .8, outcomes 0 1 1 1. PAV: the .2s recalibrate to 1/2, the .8s to 1.
    x = np.array([0.2, 0.2, 0.8, 0.8])
    y = np.array([0, 1, 1, 1])
    d = sc.decompose(x, y)
    score = (0.04 + 0.64 + 0.04 + 0.04) / 4
    recal = (0.25 + 0.25 + 0 + 0) / 4
    clim = (0.5625 + 0.0625 * 3) / 4  # climatology 3/4
    assert (d.score, d.mcb, d.dsc, d.unc) == pytest.approx((score, score - recal, clim - recal, clim))
    assert math.isclose(d.score, d.mcb - d.dsc + d.unc)


def test_consistency_band_holds_a_calibrated_forecast():
    rng = np.random.default_rng(5)
    x = rng.uniform(0.05, 0.95, 300)
    xs, lo, hi = sc.consistency_band(x)
    assert np.all(lo <= hi) and np.all(np.diff(xs) >= 0)
    # the band is around the diagonal: most forecasts lie inside their own band
    assert np.mean((lo <= xs) & (xs <= hi)) > 0.9


@pytest.mark.parametrize("n, distinct", [(1, 1), (2, 2), (7, 3), (60, 60), (150, 12), (250, 250)])
def test_recalibrate_many_is_scikit_learns_pav_row_by_row(n, distinct):
    """The consistency band's all-rows-at-once PAV gives scikit-learn's fit for every row: ties
    pooled, blocks merged, above and below its table's size limit (250 distinct: row by row)."""
    rng = np.random.default_rng(n + distinct)
    x = np.sort(rng.choice(rng.uniform(0.01, 0.99, distinct), n))
    draws = rng.random((40, n)) < rng.uniform(0, 1, n)
    draws[0], draws[1] = True, False  # all YES, all NO
    want = np.vstack([sc.recalibrate(x, d.astype(float)) for d in draws])
    np.testing.assert_allclose(sc.recalibrate_many(x, draws), want, rtol=0, atol=1e-12)


def test_consistency_band_with_tied_forecasts_is_the_row_by_row_band():
    x = np.repeat(np.linspace(0.05, 0.95, 19), 5)  # market prices: many forecasts share one
    xs, lo, hi = sc.consistency_band(x)
    draws = np.random.default_rng(sc.SEED).random((sc.BAND_RESAMPLES, x.size)) < xs
    fits = np.vstack([sc.recalibrate(xs, d.astype(float)) for d in draws])
    want_lo, want_hi = np.quantile(fits, [0.05, 0.95], axis=0)
    np.testing.assert_allclose(lo, want_lo, rtol=0, atol=1e-12)
    np.testing.assert_allclose(hi, want_hi, rtol=0, atol=1e-12)
