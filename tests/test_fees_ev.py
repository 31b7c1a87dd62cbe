from decimal import Decimal as D

import pytest

from kakashi_tui.core.ev import net_ev
from kakashi_tui.core.fees import FeeSchedule, fill_fee_cents, max_fee_cents, taker_fee_cents
from kakashi_tui.core.models import Side


@pytest.mark.parametrize("c, p, cents", [
    (1, "0.50", 2),     # 0.07*0.25 = 0.0175 -> ceil to 2c
    (100, "0.50", 175),  # exactly 1.75 dollars
    (1, "0.01", 1),     # 0.000693 -> 1c: the ceiling bites on tiny fees
    (10, "0.99", 1),    # 0.00693 -> 1c
    (0, "0.50", 0),
    (3, "0.30", 5),     # 0.07*3*0.21 = 0.0441 -> 5c
    (1000, "0.37", 1632),  # 0.07*1000*0.2331 = 16.317 -> 1632c
])
def test_taker_fee_formula(c, p, cents):
    assert taker_fee_cents(c, D(p)) == cents


def test_series_multiplier_is_configurable():
    fs = FeeSchedule(series_multipliers={"INX": D("0.035")})
    assert fs.multiplier("INX") == D("0.035") and fs.multiplier("OTHER") == D("0.07")
    assert taker_fee_cents(100, D("0.50"), fs.multiplier("INX")) == 88  # 0.875 -> 88c


def test_fill_fee_sums_levels_then_ceils_once():
    # 0.07*(0.4*0.6 + 0.41*0.59) = 0.033733 -> 4c
    assert fill_fee_cents([(D("0.40"), 1), (D("0.41"), 1)]) == 4
    # 0.07*(0.05*0.95 + 0.06*0.94) = 0.007273 -> 1c, where ceiling each level would charge 2c
    assert fill_fee_cents([(D("0.05"), 1), (D("0.06"), 1)]) == 1


def test_max_fee_bounds_every_price_in_range():
    for lo, hi in [("0.30", "0.35"), ("0.45", "0.55"), ("0.70", "0.80")]:
        bound = max_fee_cents(7, D(lo), D(hi), D("0.07"))
        for c in range(int(D(lo) * 100), int(D(hi) * 100) + 1):
            assert taker_fee_cents(7, D(c) / 100) <= bound


def test_ev_yes_and_no_include_fees():
    # YES at 0.40 with p_hat 0.50: 0.10 - fee(1 @ 0.40)=0.02 -> 0.08
    assert net_ev(D("0.50"), Side.YES, D("0.40")) == D("0.08")
    # NO at 0.45 with p_hat 0.40: (0.60) - 0.45 - 0.02 = 0.13
    assert net_ev(D("0.40"), Side.NO, D("0.45")) == D("0.13")
    # at the edges: a 99c contract with p_hat 1 nets 1 - 0.99 - 0.01
    assert net_ev(D("1"), Side.YES, D("0.99")) == D("0")
    # fees amortise over contracts: 100 @ 0.50 pays 1.75c each, not 2c
    assert net_ev(D("0.60"), Side.YES, D("0.50"), 100) == D("0.0825")


def test_ev_rejects_zero_contracts():
    with pytest.raises(ValueError):
        net_ev(D("0.5"), Side.YES, D("0.4"), 0)
