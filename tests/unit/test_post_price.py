"""The post price (issue #23 item 2, ``core/strategy.py::post_price``): the highest price on the
market's grid that (a) rests under the side's best ask, (b) improves its best bid by at most one
grid step, and (c) clears the edge threshold after the maker's fee per contract, rounded up to the
centicent as Kalshi rounds. Each case on a hand-made book, the expected price worked out here;
then the post's size and the config that asks for it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from kakashi_tui.core.errors import ConfigError
from kakashi_tui.core.fees import FeeTerms, FeeType
from kakashi_tui.core.grid import PriceGrid
from kakashi_tui.core.models import Estimate, Side
from kakashi_tui.core.strategy import StrategyConfig, decide_post, is_post, post_price, post_side
from kakashi_tui.trading.config import load_config
from tests.conftest import book

MAKERS = FeeTerms(fee_type=FeeType.QUADRATIC_WITH_MAKER_FEES)  # a maker pays 0.0175 x P x (1 - P)
FREE = FeeTerms()  # quadratic: a maker pays nothing
THR = D("0.03")
DECI = PriceGrid(((0, 10_000, 10),))  # deci_cent: $0.001 steps


def spread(bid="0.40", ask="0.45", size=10):
    """YES bids at ``bid``, YES asks at ``ask`` (a NO bid at 1 - ask), ``size`` contracts each."""
    return book(yes=((float(bid), size),), no=((float(1 - D(ask)), size),))


def test_b_improves_the_best_bid_by_one_grid_step_and_no_more():
    """Bid 0.40, ask 0.45, p_hat 0.60: every price up to 0.44 clears by far (at 0.44: 0.60 - 0.44
    - 0.0044 = 0.1556), but one step over the bid is as high as a post goes: 0.41 on whole cents
    (a market that states no grid), 0.401 on a deci-cent grid. The NO side mirrors it: its bid is
    1 - 0.45 = 0.55, so 0.56 at p_hat 0.30 (NO wins 0.70)."""
    s = spread()
    assert post_price(s, D("0.60"), Side.YES, THR, MAKERS) == 4100
    assert post_price(s, D("0.60"), Side.YES, THR, MAKERS, DECI) == 4010
    assert post_price(s, D("0.30"), Side.NO, THR, MAKERS) == 5600


def test_a_a_post_never_reaches_the_ask():
    """Bid 0.40, ask 0.41: one step over the bid is the ask itself, which would cross; the
    highest price under it on whole cents is 0.40 (it joins the bid)."""
    assert post_price(spread(ask="0.41"), D("0.60"), Side.YES, THR, MAKERS) == 4000


def test_c_the_threshold_after_the_maker_fee_rounded_up_to_the_centicent():
    """Bid 0.40, ask 0.45. At 0.41 a maker's fee per contract is 0.0175 x 0.41 x 0.59 =
    0.00423325, which Kalshi rounds up to 0.0043. p_hat 0.44425: p_hat - 0.41 - 0.00423325 =
    0.03001675 would clear 0.03, but p_hat - 0.41 - 0.0043 = 0.02995 does not; so 0.40 (its fee
    0.0042: 0.44425 - 0.40 - 0.0042 = 0.04005). With no maker fee (quadratic) 0.41 clears
    (0.03425); with the maker-fee series at p_hat 0.44 the threshold binds at 0.40 too."""
    s = spread()
    assert post_price(s, D("0.44425"), Side.YES, THR, MAKERS) == 4000
    assert post_price(s, D("0.44425"), Side.YES, THR, FREE) == 4100
    assert post_price(s, D("0.44"), Side.YES, THR, MAKERS) == 4000
    # well under the book when the belief is: p_hat 0.30 clears at most 0.30 - 0.03 = 0.27 less the
    # fee: 0.26 (0.30 - 0.26 - 0.0034 = 0.0366; at 0.27: 0.30 - 0.27 - 0.0035 < 0.03)
    assert post_price(s, D("0.30"), Side.YES, THR, MAKERS) == 2600


def test_none_when_no_price_clears_or_the_side_has_no_bid_or_ask():
    s = spread()
    assert post_price(s, D("0.03"), Side.YES, THR, MAKERS) is None  # 0.03 - 0.03 leaves no price above 0
    assert post_price(s, D("0.99"), Side.NO, THR, MAKERS) is None  # NO wins 0.01
    assert post_price(book(yes=(), no=((0.55, 10),)), D("0.60"), Side.YES, THR, MAKERS) is None  # no YES bid
    assert post_price(book(yes=((0.40, 10),), no=()), D("0.60"), Side.YES, THR, MAKERS) is None  # no YES ask
    assert post_side(s, D("0.03"), D("0.98"), MAKERS) is None  # neither side clears a 0.98 threshold


def test_the_side_with_the_better_ev_after_the_maker_fee():
    """p_hat 0.45 on bid 0.40 / ask 0.45: YES at 0.41 (0.45 - 0.41 - 0.0043 = 0.0357), NO at 0.51
    (its bid 0.55 is far over what clears: 0.55 - 0.51 - 0.0044 = 0.0356): YES, by a centicent."""
    side, price, _ev = post_side(spread(), D("0.45"), THR, MAKERS)
    assert (side, price) == (Side.YES, 4100)
    assert post_price(spread(), D("0.45"), Side.NO, THR, MAKERS) == 5100


def test_a_post_is_sized_by_the_per_trade_cap_at_its_price_not_by_displayed_depth():
    """$1,000 equity, 1%: $10 = 100,000 cc. Post-only at 0.41 (41 cc a hundredth), the maker's fee
    0.423325 cc a hundredth: 2,414 hundredths cost 98,974 + fee 1,022 (ceil 1,021.91) + 1 = 99,997
    <= 100,000; 2,415: 99,015 + 1,023 + 1 = 100,039 > it. So 24.14 contracts, though the book
    shows 10 at each price. Kelly
    at 1%: 0.01 x (0.60 - 0.41) / (1 - 0.41) x $1,000 / $0.41 = 7.854...: 7.85 contracts."""
    est = Estimate(ticker="T", p_hat=D("0.60"), source="t", ts=0)
    d = decide_post(spread(), est, 10_000_000, D("1"), MAKERS, StrategyConfig(mode="post"))
    assert d is not None and is_post(d)
    assert (d.side, d.limit_price, d.best_ask, d.contracts, d.worst_case_cc) == (
        Side.YES,
        D("0.4100"),
        D("0.4500"),
        D("24.14"),
        99_997,
    )
    assert d.ev_per_contract == D("0.1857")  # 0.60 - 0.41 - 0.0043
    kelly = StrategyConfig(mode="post", kelly_fraction=D("0.01"))
    assert decide_post(spread(), est, 10_000_000, D("1"), MAKERS, kelly).contracts == D("7.85")


@pytest.mark.parametrize("fee_type", [FeeType.QUADRATIC_WITH_MAKER_FEES, FeeType.FLAT])
def test_a_post_sized_in_a_fee_waiver_stays_within_the_cap_once_the_waiver_ends(fee_type):
    """$1,000 equity, 1%: $10. A waiver ends at 1 s; a YES post at 0.05 decided at 0 may fill
    after it. Sized at the waived (zero) fee, the order reserved $13.50 (flat) or $10.17 once the
    waiver ended, past the cap it was sized to (a review measured it)."""
    from kakashi_tui.core.orders import TimeInForce, reserved_cc, submit

    waived = FeeTerms(fee_type=fee_type, waiver_until_ts=1_000)
    est = Estimate(ticker="T", p_hat=D("0.30"), source="t", ts=0)
    d = decide_post(spread("0.04", "0.10", 50), est, 10_000_000, D("1"), waived, StrategyConfig(mode="post"), now_ms=0)
    assert d is not None and d.limit_price == D("0.0500") and d.worst_case_cc <= 100_000
    o = submit("1", "T", Side.YES, 500, int(d.contracts * 100), 0, TimeInForce.GTC, post_only=True)
    o.activate(500)
    assert reserved_cc(o, waived, 0) <= d.worst_case_cc  # (while waived: the same worst case)
    assert reserved_cc(o, waived, 5_000) <= d.worst_case_cc <= 100_000  # and after it


def test_the_config_names_the_mode_and_the_post_terms_or_refuses_them_in_one_line(tmp_path):
    def cfg(text):
        p = tmp_path / "k.toml"
        p.write_text("[strategy]\n" + text + "\n")
        return load_config(str(p)).strategy

    assert cfg("").mode == "take"  # the default: nothing changes for existing runs
    s = cfg('mode = "both"\npost_tif = "gtd"\npost_expiry_seconds = 300\npost_only = false')
    assert (s.mode, s.post_tif, s.post_expiry_seconds, s.post_only) == ("both", "gtd", 300, False)
    for text, said in (
        ('mode = "maker"', "[strategy] mode: Input should be 'take', 'post' or 'both'"),
        ('post_tif = "gtd"', '[strategy] post_expiry_seconds: post_tif = "gtd" needs post_expiry_seconds'),
        ("post_expiry_seconds = 60", '[strategy] post_expiry_seconds = 60: only for post_tif = "gtd"'),
        ('post_tif = "gtd"\npost_expiry_seconds = 0', "[strategy] post_expiry_seconds = 0: Input should be greater"),
        ('post_tif = "ioc"', "[strategy] post_tif: Input should be 'gtc' or 'gtd'"),
    ):
        with pytest.raises(ConfigError) as e:
            cfg(text)
        assert said in str(e.value) and "\n" not in str(e.value)


def test_a_post_kept_for_one_quote_and_belief_is_redone_when_the_makers_fee_changes():
    """``post_side`` keeps what it found for a quote's top and a belief (the replay decides a
    market on an unmoved quote tick after tick); the maker's fee is part of what it is kept by.
    p_hat 0.44425 on bid 0.40 / ask 0.45: with no maker fee YES would post at 0.41 (test_c) and
    NO at 0.52 (0.55575 - 0.52 = 0.03575, the better EV); with the maker's fee elsewhere. Under a
    fee waiver the maker-fee series posts as the free one, and once the waiver ends as it does
    without one: the same terms object each time, as the engine hands them over."""
    s, p = spread(), D("0.44425")
    free, makers = post_side(s, p, THR, FREE), post_side(s, p, THR, MAKERS)
    assert free is not None and makers is not None and free != makers
    waived = FeeTerms(fee_type=FeeType.QUADRATIC_WITH_MAKER_FEES, waiver_until_ts=2_000)
    assert post_side(s, p, THR, waived, now_ms=1_000) == free
    assert post_side(s, p, THR, waived, now_ms=2_000) == makers
    assert post_side(s, p, THR, waived, now_ms=1_999) == free
