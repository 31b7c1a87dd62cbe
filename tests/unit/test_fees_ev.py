from decimal import Decimal as D

import pytest

from kakashi_tui.core.fees import FeeAccumulator, FeeSchedule, FeeTerms, FeeType, order_fee_cc, taker_fee_cc
from kakashi_tui.core.models import Side
from tests.strategy_oracle import max_fee_cc, net_ev

T = FeeTerms()


@pytest.mark.parametrize(
    "c, p, cc",
    [
        ("1", "0.50", 175),  # 0.07*0.25 = $0.0175 exactly
        ("100", "0.50", 17500),  # $1.75
        ("1", "0.01", 7),  # $0.000693 -> up to the centicent
        ("10", "0.99", 70),  # $0.00693 -> $0.0070
        ("0", "0.50", 0),
        ("3", "0.30", 441),  # $0.0441
        ("1000", "0.37", 163170),  # $16.317
        ("2.50", "0.0030", 6),  # fractional, sub-penny: $0.000523425 -> $0.0006
    ],
)
def test_taker_fee_formula_rounds_up_to_the_centicent(c, p, cc):
    assert taker_fee_cc(D(c), D(p), T) == cc


def test_fee_terms_from_the_exchange_and_config_overrides():
    fs = FeeSchedule(series_multipliers={"INX": D("0.035")})
    assert fs.terms("INX").coefficient == D("0.035") and fs.terms("OTHER").coefficient == D("0.07")
    assert taker_fee_cc(D(100), D("0.50"), fs.terms("INX")) == 8750
    # the series' fee_multiplier scales Kalshi's 0.07 (spec: "a multiplier applied to the fee calculations")
    assert fs.terms("KX", fee_multiplier=D("0.5")).coefficient == D("0.035")
    assert fs.terms("INX", fee_multiplier=D("2")).coefficient == D("0.035")  # the operator's config wins
    assert fs.terms("KX", fee_type="quadratic_with_maker_fees").fee_type is FeeType.QUADRATIC_WITH_MAKER_FEES
    # flat (and a type this code does not know) pays the quadratic peak at any price
    for ft in ("flat", "something_new"):
        assert taker_fee_cc(D(10), D("0.10"), fs.terms("KX", fee_type=ft)) == 1750
    assert fs.terms("KX", waiver_until_ts=100).waived(99) and not fs.terms("KX", waiver_until_ts=100).waived(100)


def test_order_fee_accumulates_fills_so_the_order_pays_one_ceiling():
    # 0.07*(0.4*0.6 + 0.41*0.59) = $0.033733 -> 338cc
    assert order_fee_cc([(D("0.40"), D(1)), (D("0.41"), D(1))], T) == 338
    # 0.07*(0.05*0.95 + 0.06*0.94) = $0.007273 -> 73cc, where rounding each fill alone would charge 74
    assert order_fee_cc([(D("0.05"), D(1)), (D("0.06"), D(1))], T) == 73
    acc = FeeAccumulator(T, 0)
    assert [acc.charge(D(1), D("0.05")), acc.charge(D(1), D("0.06"))] == [34, 39]  # per fill, up, accumulated


def test_max_fee_bounds_every_price_in_range():
    for lo, hi in [("0.30", "0.35"), ("0.45", "0.55"), ("0.70", "0.80"), ("0.0010", "0.0090")]:
        bound = max_fee_cc(D("7.25"), D(lo), D(hi), T)
        for c in range(int(D(lo) * 10000), int(D(hi) * 10000) + 1, 7):
            assert taker_fee_cc(D("7.25"), D(c) / 10000, T) <= bound


def test_ev_yes_and_no_include_fees():
    # YES at 0.40 with p_hat 0.50: 0.10 - fee(1 @ 0.40) $0.0168 -> 0.0832
    assert net_ev(D("0.50"), Side.YES, D("0.40")) == D("0.0832")
    # NO at 0.45 with p_hat 0.40: 0.60 - 0.45 - $0.0174 (0.017325 up) = 0.1326
    assert net_ev(D("0.40"), Side.NO, D("0.45")) == D("0.1326")
    # at the edges: a 99c contract with p_hat 1 nets 1 - 0.99 - 0.0007
    assert net_ev(D("1"), Side.YES, D("0.99")) == D("0.0093")
    # fees amortise over contracts: 100 @ 0.50 pay $0.0175 each
    assert net_ev(D("0.60"), Side.YES, D("0.50"), D(100)) == D("0.0825")
    assert net_ev(D("0.60"), Side.YES, D("0.50"), D(100), FeeTerms(waiver_until_ts=10), now_ms=5) == D("0.1")


def test_ev_rejects_zero_contracts():
    with pytest.raises(ValueError):
        net_ev(D("0.5"), Side.YES, D("0.4"), D(0))
