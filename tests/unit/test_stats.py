import pytest
from hypothesis import given
from hypothesis import strategies as st

from kakashi_tui.core.stats import (
    MIN_TRADES_FOR_VERDICT,
    bootstrap_ci,
    brier,
    drawdown_series,
    max_drawdown,
    mean,
    verdict,
)


def test_bootstrap_is_seeded_and_repeatable():
    xs = [1.0, -2.0, 3.5, 0.5, -1.0, 2.0, 4.0, -3.0]
    a = bootstrap_ci(xs, seed=42)
    assert a == bootstrap_ci(xs, seed=42)
    assert a != bootstrap_ci(xs, seed=43)
    lo, hi = a
    assert lo <= mean(xs) <= hi


@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=50))
def test_bootstrap_interval_is_ordered_and_within_data(xs):
    lo, hi = bootstrap_ci(xs, resamples=200)
    assert min(xs) - 1e-9 <= lo <= hi <= max(xs) + 1e-9


def test_bootstrap_needs_two_points():
    assert bootstrap_ci([]) is None and bootstrap_ci([1.0]) is None


def test_max_drawdown_and_dates():
    series = [(1, 100), (2, 120), (3, 90), (4, 130), (5, 95), (6, 140)]
    dd = max_drawdown(series)
    assert (dd.depth, dd.peak_ts, dd.trough_ts) == (35, 4, 5)
    assert drawdown_series(series) == [(1, 0), (2, 0), (3, 30), (4, 0), (5, 35), (6, 0)]
    assert max_drawdown([]).depth == 0 and max_drawdown([(1, 5), (2, 6)]).depth == 0


def test_brier():
    assert brier([(1.0, 1), (0.0, 0)]) == 0
    assert brier([(0.5, 1), (0.5, 0)]) == 0.25
    assert brier([(0.8, 1), (0.3, 0)]) == pytest.approx((0.04 + 0.09) / 2)
    assert brier([]) is None


def test_verdict_says_when_the_sample_is_too_small():
    assert "No closed trades" in verdict([], None)
    small = [1.0] * (MIN_TRADES_FOR_VERDICT - 1)
    assert "Too few" in verdict(small, (1.0, 1.0))
    n = MIN_TRADES_FOR_VERDICT
    assert "excludes zero" in verdict([1.0] * n, (0.5, 1.5)) and "evidence" in verdict([1.0] * n, (0.5, 1.5))
    assert "cannot be told apart from luck" in verdict([1.0] * n, (-0.5, 1.5))
    assert "losing" in verdict([-1.0] * n, (-1.5, -0.5))
