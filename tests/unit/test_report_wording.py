"""The post-mortem's and ``kakashi risk``'s wording nits (issue #24): a ± that never reads as
certainty."""

import math
import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kakashi_tui.core.ruin import Prob
from kakashi_tui.frontends.fmt import fmt_pct_bound, fmt_pct_pm
from kakashi_tui.frontends.report import ruin


def test_a_plus_minus_shows_the_digits_its_error_needs():
    # P(daily stop) 99.9% over 5,000 paths: se = sqrt(.999 x .001 / 5,000) = 0.045%, once printed "± 0.0%"
    assert fmt_pct_pm(0.999, math.sqrt(0.999 * 0.001 / 5_000)) == "99.90% ± 0.04%"
    assert fmt_pct_pm(0.685, 0.0066) == "68.5% ± 0.7%"  # a tenth of a point where that shows the error
    assert fmt_pct_pm(0.0003, 0.000245) == "0.03% ± 0.02%"
    assert fmt_pct_pm(0.5, 2e-7) == "50.000% ± < 0.001%"  # past a thousandth of a point: said, not zero
    # the odds of ruin print through it: P(daily stop) 4,995 of 5,000 paths
    assert ruin._prob(Prob.of(np.arange(5_000) >= 5), 5_000) == "99.90% ± 0.04%"
    assert ruin._prob(Prob.of(np.zeros(2_000, bool)), 2_000) == "0 of 2,000 (< 0.2% at 95%)"


@settings(max_examples=200, deadline=None)
@given(p=st.floats(0.0, 1.0), se=st.floats(1e-9, 0.5))
def test_a_plus_minus_never_reads_as_an_exact_zero(p, se):
    text = fmt_pct_pm(p, se)
    assert not re.search(r"± 0(\.0*)?%", text), text


def test_a_rule_of_three_bound_is_rounded_outward():
    # 3 / 2,000 = 0.15% and 1 - 3 / 2,000 = 99.85%: once "< 0.1%" and "> 99.9%", each past the truth
    assert fmt_pct_bound(3 / 2_000) == "< 0.2%"
    assert fmt_pct_bound(1 - 3 / 2_000, above=True) == "> 99.8%"
    assert fmt_pct_bound(3 / 5_000) == "< 0.06%"  # the first digit that is not zero
    assert fmt_pct_bound(1 - 3 / 100_000, above=True) == "> 99.997%"
