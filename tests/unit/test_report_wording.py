"""The post-mortem's and ``kakashi risk``'s wording nits (issue #24): a ± that never reads as
certainty, zeros the rules make certain said to be so, "trades needed" capped near a zero
estimate, and no capital after a colon mid-sentence."""

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakashi_tui.core.ruin import Prob, RuinSpec, RuinTrade, simulate
from kakashi_tui.frontends.fmt import fmt_pct_bound, fmt_pct_pm
from kakashi_tui.frontends.report import edge, ruin
from kakashi_tui.frontends.report import scoring as sc


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


def near_zero() -> sc.Interval:
    # seed 1's oracle at 1,500 ticks: +0.0003 [-0.0148, +0.0156] on 1,316 markets projected ~3 million more
    return sc.Interval(0.0003, -0.0148, 0.0156, 1_316, 1_278)


def test_trades_needed_is_capped_near_a_zero_estimate():
    iv = near_zero()
    assert sc.more_needed(iv) > 3_000_000
    words = edge.need_words(iv, "skill", "settled markets")
    assert "3,0" not in words and "about" not in words
    assert (
        "the 95% lower bound would clear zero only after more than 100x the sample (over 131,600 more settled "
        "markets): no edge visible at this size." in words
    )
    # within the cap: the projection, as before (estimate 0.10 on 100 trades: 44 more, 144 in all)
    assert "about 44 more settled trades (144 in all)" in edge.need_words(sc.Interval(0.10, -0.02, 0.22, 100, 100), "x")
    # a negative estimate keeps its words
    assert edge.need_words(sc.Interval(-0.01, -0.05, 0.03, 100, 100), "skill") == (
        "its estimate, -0.0100, is not above zero, so no number of further settled trades at this effect would "
        "lift the 95% lower bound above zero: no skill shown."
    )


def test_no_capital_after_the_colon_of_the_skill_and_clv_lines():
    """Once "Brier skill: Its estimate ...": the words follow a colon, so they start in lower case
    (a Scored made by hand: no isotonic fit needed to write the section)."""
    d = sc.Decomposition(0.2, 0.01, 0.04, 0.23)
    skill = {"Brier": sc.Interval(-0.02, -0.04, 0.01, 50, 50), "log": sc.Interval(0.0, -0.01, 0.01, 50, 50)}
    s = edge.Scored(50, 50, np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), {}, skill)
    s.decomp = {(k, who): d for k in sc.SCORES for who in ("p̂", "market")}
    text = "\n".join(edge.score_section(s))
    assert "Brier skill: its estimate, -0.0200, is not above zero" in text
    assert not re.search(r"[a-z]: [A-Z][a-z]", text), text
    for iv in (sc.Interval(0.1, None, None, 1, 1), sc.Interval(0.1, 0.01, 0.2, 9, 9), near_zero()):
        assert edge.need_words(iv, "x")[0].islower()


def test_the_calibration_charts_dots_stay_small_enough_to_read():
    """Once 20 + 10 n points²: a bin of 218 markets drew a dot 47 points wide, over its neighbours and its
    count. Now in proportion, from the smallest size to the largest."""
    from kakashi_tui.frontends.report.charts import BUBBLE_MAX, BUBBLE_MIN, bubble_sizes

    sizes = bubble_sizes([39, 155, 218, 25])
    assert max(sizes) == BUBBLE_MAX and min(sizes) > BUBBLE_MIN and BUBBLE_MAX**0.5 < 17
    assert sizes[1] == pytest.approx(BUBBLE_MIN + (BUBBLE_MAX - BUBBLE_MIN) * 155 / 218)
