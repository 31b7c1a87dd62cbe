from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from kakashi_tui.core.fees import fill_fee_cents
from kakashi_tui.core.models import Estimate, Side
from kakashi_tui.core.sizing import (
    kelly_contracts, kelly_fraction, max_contracts, per_trade_cap_cents, worst_case_cents,
)
from kakashi_tui.core.strategy import StrategyConfig, decide
from tests.conftest import book

M = D("0.07")


def est(p, t="T"):
    return Estimate(ticker=t, p_hat=D(str(p)), source="test", ts=1000)


def test_per_trade_cap_is_one_percent_floored():
    assert per_trade_cap_cents(100_000, D("1")) == 1000
    assert per_trade_cap_cents(99_999, D("1")) == 999
    assert per_trade_cap_cents(0, D("1")) == 0
    assert per_trade_cap_cents(-50, D("1")) == 0


def test_max_contracts_fits_cost_plus_fee_under_cap():
    # 10.00 cap at 0.40: 24 contracts cost 9.60 + fee 0.41 = 10.01, over; 23 cost 9.20 + 0.39.
    n = max_contracts(1000, D("0.40"), D("0.40"), M, 10_000)
    assert n == 23
    assert worst_case_cents(23, D("0.40"), D("0.40"), M) == 959
    assert worst_case_cents(24, D("0.40"), D("0.40"), M) == 1001


def test_max_contracts_limited_by_depth_and_zero_cases():
    assert max_contracts(1000, D("0.40"), D("0.40"), M, 3) == 3
    assert max_contracts(0, D("0.40"), D("0.40"), M, 10) == 0
    assert max_contracts(30, D("0.40"), D("0.40"), M, 10) == 0  # one contract costs 40c + fee


@given(cap=st.integers(0, 50_000), lo=st.integers(1, 98), width=st.integers(0, 5), avail=st.integers(0, 5000))
def test_sizing_never_exceeds_cap(cap, lo, width, avail):
    hi = min(lo + width, 99)
    n = max_contracts(cap, D(lo) / 100, D(hi) / 100, M, avail)
    assert 0 <= n <= avail
    if n:
        assert worst_case_cents(n, D(lo) / 100, D(hi) / 100, M) <= cap
        # and any real fill of n contracts inside [lo, hi] costs no more than the bound
        assert n * hi + fill_fee_cents([(D(hi) / 100, n)]) <= cap


def test_kelly():
    assert kelly_fraction(D("0.6"), D("0.5")) == D("0.2")
    assert kelly_fraction(D("0.4"), D("0.5")) == 0
    # quarter Kelly of 1000.00 at f*=0.2 -> 50.00 stake / 0.50 -> 100 contracts
    assert kelly_contracts(100_000, D("0.6"), D("0.50"), D("0.25")) == 100


def test_decide_picks_the_side_with_edge_and_respects_threshold():
    s = book(yes=((0.40, 50),), no=((0.55, 50),))  # YES ask 0.45, NO ask 0.60
    d = decide(s, est(0.55), 100_000, D("1"), M, StrategyConfig(edge_threshold=D("0.03")))
    assert d.side is Side.YES and d.best_ask == D("0.45") and d.ev_per_contract == D("0.08")
    assert d.worst_case_cents <= 1000 and d.contracts > 0
    d = decide(s, est(0.30), 100_000, D("1"), M, StrategyConfig())
    assert d.side is Side.NO and d.best_ask == D("0.60")  # 0.70 - 0.60 - 0.02 = 0.08
    assert decide(s, est(0.48), 100_000, D("1"), M, StrategyConfig()) is None  # 0.48-0.45-0.02 = 0.01
    # a threshold exactly met trades; one cent more does not
    assert decide(s, est(0.50), 100_000, D("1"), M, StrategyConfig(edge_threshold=D("0.03"))) is not None
    assert decide(s, est(0.50), 100_000, D("1"), M, StrategyConfig(edge_threshold=D("0.04"))) is None


def test_decide_limit_walks_only_levels_that_keep_the_edge():
    # YES asks: 0.45 (5), 0.46 (5), 0.52 (50). p_hat 0.52 -> 0.46 keeps 0.04 edge, 0.52 does not.
    s = book(yes=((0.40, 50),), no=((0.55, 5), (0.54, 5), (0.48, 50)))
    d = decide(s, est(0.52), 100_000, D("1"), M, StrategyConfig(edge_threshold=D("0.03")))
    assert d.limit_price == D("0.46") and d.contracts == 10


def test_decide_kelly_never_above_cap():
    s = book(yes=((0.40, 5000),), no=((0.55, 5000),))
    full = decide(s, est(0.90), 100_000, D("1"), M, StrategyConfig())
    kelly = decide(s, est(0.90), 100_000, D("1"), M, StrategyConfig(kelly_fraction=D("1")))
    assert kelly.contracts == full.contracts  # full Kelly wants far more; the cap wins
    tiny = decide(s, est(0.90), 100_000, D("1"), M, StrategyConfig(kelly_fraction=D("0.001")))
    assert 0 < tiny.contracts < full.contracts
