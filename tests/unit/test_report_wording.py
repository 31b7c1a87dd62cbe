"""The post-mortem's and ``kakashi risk``'s wording nits (issue #24): a ± that never reads as
certainty, and zeros the rules make certain said to be so."""

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakashi_tui.core.ruin import Prob, RuinSpec, RuinTrade, simulate
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


def _trade(k: int, p: float = 0.5) -> RuinTrade:
    # 1% of equity at 0.50 a contract: wins as much as it risks
    return RuinTrade(f"M{k}", "yes", stake=10.0, stake_frac=0.01, win_mult=1.0, p_hat=p, market=p)


def _result(halt: bool):
    spec = RuinSpec(
        n_trades=300, paths=400, seed=5, start_equity=1_000.0, daily_cap_frac=None, halt_at_drawdown_stop=halt
    )
    return simulate([_trade(k, 0.4) for k in range(5)], spec)


def test_zeros_the_drawdown_stop_makes_certain_say_so():
    """Behind a halting 10% stop and a 1% per-trade cap no path falls 1 - 0.9 x 0.99 = 10.9% below its
    peak: P(drawdown >= 20%) and P(ruin) are zero by construction, and the table says so."""
    res = _result(halt=True)
    assert res.unreachable_drawdown == pytest.approx(0.109)
    assert res.ruin_impossible
    assert max(float(c.max_drawdown.max()) for c in res.cases) < 0.109  # what the bound claims, on every path
    rows = {r[0]: r[1:] for r in ruin.table_rows(res)}
    assert rows["P(drawdown >= 20.0%)"] == ("0 by construction (stop at 10.0%)",) * 2
    assert rows["P(ruin)"] == ("0 by construction (stop at 10.0%)",) * 2
    assert "by construction" not in rows["P(drawdown >= 10.0%)"][0]  # reached: a measured figure
    line = ruin.construction_line(res)[0]
    assert line.startswith("0 by construction: the drawdown stop halts a path first.")
    assert "no path falls 10.9% or more below its peak, nor to the ruin floor" in line


def test_zeros_without_a_halting_stop_are_measured_and_bounded():
    res = _result(halt=False)  # the stop reported, trading goes on: a 20% fall can happen
    assert res.unreachable_drawdown is None and not res.ruin_impossible
    assert ruin.construction_line(res) == []
    for what, cells in ((r[0], r[1:]) for r in ruin.table_rows(res)):
        assert not any("by construction" in c for c in cells), what
