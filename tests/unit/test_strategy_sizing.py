from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from kakashi_tui.core import sizing
from kakashi_tui.core.fees import FeeTerms, FeeType, fee_ratio, order_fee_cc
from kakashi_tui.core.models import Estimate, Side
from kakashi_tui.core.money import ceil_cc
from kakashi_tui.core.sizing import max_hundredths, per_trade_cap_cc, worst_fee_price_cc
from kakashi_tui.core.strategy import StrategyConfig, clearing_asks_cc, decide, side_evs
from tests.conftest import book
from tests.strategy_oracle import decide_decimal, kelly_contracts, kelly_fraction, max_contracts, worst_case_cc
from tests.strategy_oracle import net_ev as oracle_net_ev
from tests.strategy_oracle import side_evs as oracle_side_evs

M = FeeTerms()
EQ = 10_000_000  # $1,000 in centicents


def est(p, t="T"):
    return Estimate(ticker=t, p_hat=D(str(p)), source="test", ts=1000)


def test_per_trade_cap_is_one_percent_floored():
    assert per_trade_cap_cc(EQ, D("1")) == 100_000
    assert per_trade_cap_cc(9_999_999, D("1")) == 99_999
    assert per_trade_cap_cc(0, D("1")) == 0
    assert per_trade_cap_cc(-50, D("1")) == 0


def test_max_contracts_buys_fractions_and_fits_cost_plus_fee_under_cap():
    # $10.00 cap at 0.40: 24 contracts cost 9.60 + fee 0.4032 + rounding, over; 23.99 fit.
    n = max_contracts(100_000, D("0.40"), D("0.40"), M, D(10_000))
    assert n == D("23.99")
    assert worst_case_cc(D("23.99"), D("0.40"), D("0.40"), M) == 95_960 + 4_031 + 1
    assert worst_case_cc(D(24), D("0.40"), D("0.40"), M) > 100_000
    assert max_hundredths(100_000, 4_000, 4_000, fee_ratio(M, 0), 1_000_000) == 2_399


def test_max_contracts_limited_by_depth_and_zero_cases():
    assert max_contracts(100_000, D("0.40"), D("0.40"), M, D("3.50")) == D("3.50")
    assert max_contracts(0, D("0.40"), D("0.40"), M, D(10)) == 0
    assert max_contracts(30, D("0.40"), D("0.40"), M, D(10)) == 0  # 0.01 contract costs 40cc + fee + rounding


@given(
    cap=st.integers(0, 500_000),
    lo=st.integers(1, 9998),
    width=st.integers(0, 500),
    avail=st.integers(0, 500_000),
    levels=st.integers(1, 5),
)
def test_sizing_never_exceeds_cap(cap, lo, width, avail, levels):
    hi = min(lo + width, 9999)
    lo_p, hi_p, available = D(lo) / 10_000, D(hi) / 10_000, D(avail) / 100
    n = max_contracts(cap, lo_p, hi_p, M, available, levels)
    assert 0 <= n <= available and n == n.quantize(D("0.01"))
    # production's sizing, in hundredths and centicents, gives the oracle's size and worst case
    fee, w = fee_ratio(M, 0), worst_fee_price_cc(lo, hi)
    h = max_hundredths(cap, hi, w, fee, avail, levels)
    assert h == n * 100 and sizing.worst_case_cc(h, hi, w, fee, levels) == worst_case_cc(n, lo_p, hi_p, M, levels)
    if n:
        assert worst_case_cc(n, lo_p, hi_p, M, levels) <= cap
        # and any real fill of n contracts at the limit costs no more than the bound
        assert ceil_cc(n * hi_p) + order_fee_cc([(hi_p, n)], M) <= cap


def test_kelly():
    assert kelly_fraction(D("0.6"), D("0.5")) == D("0.2")
    assert kelly_fraction(D("0.4"), D("0.5")) == 0
    # quarter Kelly of $1000 at f*=0.2 -> $50 stake / 0.50 -> 100 contracts
    assert kelly_contracts(EQ, D("0.6"), D("0.50"), D("0.25")) == 100


def test_decide_picks_the_side_with_edge_and_respects_threshold():
    s = book(yes=((0.40, 50),), no=((0.55, 50),))  # YES ask 0.45, NO ask 0.60
    d = decide(s, est(0.55), EQ, D("1"), M, StrategyConfig(edge_threshold=D("0.03")))
    assert d.side is Side.YES and d.best_ask == D("0.45") and d.ev_per_contract == D("0.0826")
    assert d.worst_case_cc <= 100_000 and d.contracts > 0 and d.equity_cc == EQ
    d = decide(s, est(0.30), EQ, D("1"), M, StrategyConfig())
    assert d.side is Side.NO and d.best_ask == D("0.60")  # 0.70 - 0.60 - 0.0168 = 0.0832
    assert decide(s, est(0.48), EQ, D("1"), M, StrategyConfig()) is None  # 0.48-0.45-0.0174 = 0.0126
    # a threshold exactly met trades; a hair more does not
    assert decide(s, est("0.4974"), EQ, D("1"), M, StrategyConfig(edge_threshold=D("0.03"))) is not None
    assert decide(s, est("0.4974"), EQ, D("1"), M, StrategyConfig(edge_threshold=D("0.0301"))) is None


def test_decide_on_a_quiet_market_proposes_nothing():
    assert decide(book(yes=(), no=()), est(0.9), EQ, D("1"), M, StrategyConfig()) is None


def test_decide_limit_walks_only_levels_that_keep_the_edge():
    # YES asks: 0.45 (5), 0.46 (5), 0.52 (50). p_hat 0.52 -> 0.46 keeps 0.04 edge, 0.52 does not.
    s = book(yes=((0.40, 50),), no=((0.55, 5), (0.54, 5), (0.48, 50)))
    d = decide(s, est(0.52), EQ, D("1"), M, StrategyConfig(edge_threshold=D("0.03")))
    assert d.limit_price == D("0.46") and d.contracts == 10


def test_decide_kelly_never_above_cap():
    s = book(yes=((0.40, 5000),), no=((0.55, 5000),))
    full = decide(s, est(0.90), EQ, D("1"), M, StrategyConfig())
    kelly = decide(s, est(0.90), EQ, D("1"), M, StrategyConfig(kelly_fraction=D("1")))
    assert kelly.contracts == full.contracts  # full Kelly wants far more; the cap wins
    tiny = decide(s, est(0.90), EQ, D("1"), M, StrategyConfig(kelly_fraction=D("0.001")))
    assert 0 < tiny.contracts < full.contracts


# -- the one path (integers) and the oracle (the rule in Decimal dollars) decide alike --------
_prices = st.integers(min_value=1, max_value=9_999)
_qtys = st.one_of(st.integers(min_value=1, max_value=10**7), st.integers(min_value=1, max_value=10**14))  # hundredths


@st.composite
def _quotes(draw):
    """A valid quote on the $0.0001 grid: YES bids and NO bids, each strictly descending, crossing nowhere."""
    bid = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=9_998)))
    ask = draw(st.one_of(st.none(), st.integers(min_value=(bid or 0) + 1, max_value=9_999)))
    yes = (
        sorted(draw(st.sets(st.integers(min_value=1, max_value=bid), max_size=4)) | {bid}, reverse=True) if bid else []
    )
    no = (
        sorted(
            draw(st.sets(st.integers(min_value=1, max_value=10_000 - ask), max_size=4)) | {10_000 - ask}, reverse=True
        )
        if ask
        else []
    )
    q = [draw(_qtys) for _ in range(len(yes) + len(no))]
    return book(
        ts=5_000,
        yes=tuple((D(p).scaleb(-4), D(h).scaleb(-2)) for p, h in zip(yes, q)),
        no=tuple((D(p).scaleb(-4), D(h).scaleb(-2)) for p, h in zip(no, q[len(yes) :])),
    )


def _dec(n: int, places: int) -> D:
    """n x 10^-places, exactly (``scaleb`` and sums round to the context's 28 digits)."""
    return D(f"{n}E-{places}")


#: coefficients: the standard and halved schedules, none, a market's multiplier up to 100 (x 0.07),
#: and ones with many digits (past the 28 of Decimal's default context on a large order)
_coefficients = st.one_of(
    st.sampled_from([D("0.07"), D("0.035"), D("0.0175"), D(0), D("0.0123456"), D("0.123456789012345678"), D("7")]),
    st.integers(min_value=0, max_value=10**30).map(lambda x: _dec(x, 30)),
)
_terms = st.builds(
    FeeTerms,
    coefficient=_coefficients,
    fee_type=st.sampled_from(list(FeeType)),
    waiver_until_ts=st.sampled_from([None, 1_000, 10_000]),
)
_p_hats = st.one_of(
    st.integers(min_value=0, max_value=10_000).map(lambda x: D(x).scaleb(-4)),
    st.integers(min_value=0, max_value=10**18).map(lambda x: D(x).scaleb(-18)),
    st.integers(min_value=0, max_value=10**24).map(lambda x: D(x).scaleb(-24)),
    st.integers(min_value=0, max_value=10**40).map(lambda x: _dec(x, 40)),  # past 28 digits
    # a belief a hair off a price: the EV within 10^-35 of the threshold
    st.tuples(st.integers(1, 9_999), st.integers(-5, 5)).map(lambda t: _dec(t[0] * 10**31 + t[1], 35)),
)
_thresholds = st.one_of(
    st.sampled_from([D(0), D("0.01"), D("0.03"), D("0.0301"), D("0.2"), D("0.030000000000000000000001")]),
    st.integers(min_value=0, max_value=10**32).map(lambda x: _dec(x, 33)),
)
_kelly = st.one_of(
    st.none(),
    st.sampled_from([D(1), D("0.25"), D("0.01"), D("0.001")]),
    st.integers(min_value=1, max_value=10**30).map(lambda x: _dec(x, 30)),
)


@settings(max_examples=400)
@given(
    _quotes(),
    _p_hats,
    st.one_of(st.integers(min_value=-10, max_value=10**11), st.integers(min_value=10**11, max_value=10**20)),
    st.sampled_from([D("1"), D("0.5"), D("0.25"), D("0.3333333333333333333333333333333")]),
    _terms,
    _thresholds,
    _kelly,
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**13)),
)
def test_decide_equals_the_rule_in_decimal_for_every_input(q, p_hat, equity, pct, terms, threshold, kelly, ts):
    """The one production path against its oracle: same side, size, limit, EV, fee and worst
    case, Kelly sizing, beliefs of 40 places, sub-penny prices and any fee coefficient included."""
    e = Estimate(ticker="T", p_hat=p_hat, source="test", ts=1)
    cfg = StrategyConfig(edge_threshold=threshold, kelly_fraction=kelly)
    got = decide(q, e, equity, pct, terms, cfg, 5_000, ts)
    want = decide_decimal(q, e, equity, pct, terms, cfg, 5_000)
    if want is not None and ts is not None:
        want = want._replace(ts=ts)
    assert got == want
    if got is not None:
        assert got.verdict(True, "accepted") == want._replace(accepted=True, reason="accepted")
    assert side_evs(q, p_hat, terms, 5_000) == oracle_side_evs(q, p_hat, terms, 5_000)


def test_decide_sizes_past_decimals_28_digits_exactly():
    s = book(yes=((0.40, 10**12),), no=((0.55, 10**12),))  # 10^14 hundredths available
    e = est(0.90)
    d = decide(s, e, 10**17, D("1"), M, StrategyConfig())
    assert d == decide_decimal(s, e, 10**17, D("1"), M, StrategyConfig()) and d.contracts > 10**9


def test_kelly_sizes_the_exact_stake():
    # quarter-percent-of-a-percent Kelly: $2,100 x 0.01 x f* (0.1 / 0.3 = 1/3) = $7.00 at 0.70:
    # 10.00 contracts. Decimal's 28 digits made 1/3 a hair short, and the old path bought 9.99.
    s = book(yes=((0.60, 5000),), no=((0.30, 5000),))  # YES ask 0.70
    d = decide(s, est("0.80"), 21_000_000, D("1"), M, StrategyConfig(kelly_fraction=D("0.01")))
    assert (d.side, d.best_ask, d.contracts) == (Side.YES, D("0.70"), D("10.00"))


def test_a_belief_past_28_digits_is_compared_exactly():
    # EV = p - 0.45 - 0.0174 (the fee at 0.45, rounded up) - a threshold of exactly 0.03: a p_hat
    # 10^-31 short of clearing must not clear (Decimal's 28 digits rounded it up to clearing)
    s = book(yes=((0.40, 50),), no=((0.55, 50),))  # YES ask 0.45
    at = D("0.4974")
    short = D("0.4973999999999999999999999999999")  # 10^-31 short
    assert decide(s, est(at), EQ, D("1"), M, StrategyConfig()) is not None
    assert decide(s, est(short), EQ, D("1"), M, StrategyConfig()) is None
    assert decide(s, est(short), EQ, D("1"), M, StrategyConfig()) == decide_decimal(
        s, est(short), EQ, D("1"), M, StrategyConfig()
    )


# -- the catalog replay's pre-filter: derived from the rule, never drops a trade ----------------
@settings(max_examples=400)
@given(_quotes(), _p_hats, _thresholds, _terms, st.sampled_from([D(0), D("0.0175"), D("0.035"), D("0.07")]))
def test_the_prefilters_bound_never_drops_a_row_the_strategy_would_trade(q, p_hat, threshold, terms, floor):
    """``clearing_asks_cc`` under a fee floor no dearer than the market's terms: a quote the
    strategy trades has an ask at or under its side's bound. Under the floor's own terms the
    bound is exact: a side clears just when its ask is at or under it."""
    if not terms.waived(5_000) and terms.coefficient < floor:
        terms = FeeTerms(floor, terms.fee_type, terms.waiver_until_ts)
    floor_fee = fee_ratio(FeeTerms(D(0) if terms.waived(5_000) else floor), 0)
    by, bn = clearing_asks_cc(p_hat, threshold, floor_fee)
    bid_cc, ask_cc, _ = q.prices_cc
    no_cc = None if bid_cc is None else 10_000 - bid_cc
    d = decide(
        q,
        Estimate(ticker="T", p_hat=p_hat, source="t", ts=1),
        EQ,
        D("1"),
        terms,
        StrategyConfig(edge_threshold=threshold),
        5_000,
    )
    if d is not None:
        assert (ask_cc is not None and ask_cc <= by) or (no_cc is not None and no_cc <= bn)
        assert d.best_ask * 10_000 <= (by if d.side is Side.YES else bn)
    floor_terms = FeeTerms(D(0) if terms.waived(5_000) else floor)
    evs = oracle_side_evs(q, p_hat, floor_terms, 5_000)
    for side, a, bound in ((Side.YES, ask_cc, by), (Side.NO, no_cc, bn)):
        if a is not None:
            assert (evs[side] >= threshold) == (a <= bound)


def test_the_prefilters_bound_with_a_fee_too_steep_to_rise_with_price():
    # a multiplier of 100 (coefficient 7): the cost (price + fee) falls past $0.50, so the
    # highest clearing ask is found by scanning, not bisecting; still the rule's own answer
    fee = fee_ratio(FeeTerms(D(7)), 0)
    by, bn = clearing_asks_cc(D("0.999"), D("0.03"), fee)
    for a in range(10_001):
        ev = oracle_net_ev(D("0.999"), Side.YES, D(a).scaleb(-4), terms=FeeTerms(D(7)))
        assert (ev >= D("0.03")) == (a <= by) or a < by  # every ask above the bound fails
        if a > by:
            assert ev < D("0.03")
    assert bn == -1  # NO wins 0.001: nothing clears


def test_a_verdict_sets_the_last_two_fields_and_keeps_the_proposal():
    from kakashi_tui.core.models import TradeDecision

    p = TradeDecision("T", 5, Side.NO, D("1.50"), D("0.44"), D("0.42"), D("0.4"), D("0.1"), 700, 9_000)
    assert (p.accepted, p.reason) == (False, "")
    d = p.verdict(True, "accepted")
    assert d == p._replace(accepted=True, reason="accepted")
    assert (d.ticker, d.side, d.contracts, d.worst_case_cc, d.equity_cc, d.accepted, d.reason) == (
        "T",
        Side.NO,
        D("1.50"),
        700,
        9_000,
        True,
        "accepted",
    )
