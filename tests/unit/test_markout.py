"""Markouts' arithmetic (issue #23, item 6): the sign for the side held, NO mirrored, a sale
reversed, the fee, and when a horizon is read or still pending (core/markout.py)."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakashi_tui.core import markout as mk

MIN = 60_000


def test_a_yes_buy_is_the_mid_less_the_price_and_the_fee_per_contract():
    # 10 YES at 0.42 (42,000 cc), fee 1,700 cc; later 0.43 / 0.45: mid 0.44, +200 cc a contract
    assert mk.markout_cc("yes", "buy", 1_000, 42_000, 1_700, 4_300 + 4_500) == (200, 30)


def test_the_no_side_is_mirrored_and_a_sale_reversed():
    # 5 NO at 0.55; YES 0.40 / 0.42: YES mid 0.41, NO mid 0.59: +400 cc; fee 800 / 5 = 160
    assert mk.markout_cc("no", "buy", 500, 27_500, 800, 4_000 + 4_200) == (400, 240)
    # 10 YES sold at 0.38; mid 0.48 later: the sale was 1,000 cc a contract too cheap
    assert mk.markout_cc("yes", "sell", 1_000, 38_000, 1_600, 4_700 + 4_900) == (-1_000, -1_160)


def test_a_half_centicent_mid_and_a_fractional_fill_stay_exact():
    # 2.50 YES for 10,501 cc (4,200.4 cc each); mid (4,199 + 4,202) / 2 = 4,200.5: +0.1 cc
    gross, net = mk.markout_cc("yes", "buy", 250, 10_501, 3, 4_199 + 4_202)
    assert gross == Fraction(1, 10) and net == Fraction(1, 10) - Fraction(6, 5)
    with pytest.raises(ValueError):
        mk.price_cc(100, 0)


def test_a_horizon_is_read_at_its_time_held_at_the_stop_and_pending_past_the_data():
    t = 1_000 * MIN
    assert mk.read_at(t, 5 * MIN, None, t + 60 * MIN) == t + 5 * MIN
    assert mk.read_at(t, 30 * MIN, t + 10 * MIN, t + 60 * MIN) == t + 10 * MIN  # the market stopped first
    assert mk.read_at(t, 30 * MIN, t + 10 * MIN, t + 5 * MIN) is None  # its stop is past the data's end
    assert mk.read_at(t, 30 * MIN, None, t + 29 * MIN) is None  # pending, not zero
    assert mk.read_at(t, 30 * MIN, None, t + 30 * MIN) == t + 30 * MIN  # the data's last tick itself is known
    assert mk.read_at(t, 5 * MIN, t - MIN, t + 60 * MIN) == t + 5 * MIN  # a stop before the fill holds nothing
    assert mk.read_at(t, 0, None, None) is None  # no data at all
    assert mk.LABELS == ("at fill", "1 min", "5 min", "30 min", "close")


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 1_000),  # whole contracts
    st.integers(1, 9_999),  # the NO price per contract, cc
    st.integers(0, 20_000),  # twice the YES mid, cc
    st.integers(0, 5_000),  # the fee
)
def test_buying_no_marks_out_as_selling_yes_at_one_minus_the_price(c, q, mid2, fee):
    """NO at q is YES sold at 1 - q: the same markout, before and after the same fee."""
    no_buy = mk.markout_cc("no", "buy", 100 * c, q * c, fee, mid2)
    yes_sale = mk.markout_cc("yes", "sell", 100 * c, (10_000 - q) * c, fee, mid2)
    assert no_buy == yes_sale
    assert no_buy[0] == 10_000 - Fraction(mid2, 2) - q  # the NO mid less the NO price
    assert no_buy[0] - no_buy[1] == Fraction(fee, c)  # the fee per contract, exactly
