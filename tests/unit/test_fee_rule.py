"""Fees as Kalshi charges them (#22): the fee types and their maker shares, and the fee in force
at a time (series, then its schedule, then the event's override, then the waiver), one rule."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from kakashi_tui.core.fees import (
    MAKER_SHARE,
    FeeChange,
    FeeLevel,
    FeeSchedule,
    FeeTerms,
    FeeType,
    fee_level_at,
    order_fee_cc,
    taker_fee_cc,
)


def fee_in_force(
    series: FeeLevel,
    schedule: list[FeeChange],
    overrides: list[FeeChange],
    waiver_until_ts: int | None = None,
    t: int = 0,
    config: FeeSchedule | None = None,
    series_ticker: str = "",
) -> FeeTerms:
    """The terms a fill at ``t`` pays, composed as production composes them: the feed's
    ``fee_level_at`` (adapters/kalshi/fee_state.py) writes the level into the market row, and the
    engine's ``FeeSchedule.terms`` reads it with the waiver (``FeeTerms.waived(t)``)."""
    level = fee_level_at(series, schedule, overrides, t)
    return (config or FeeSchedule()).terms(series_ticker, level.multiplier, level.fee_type, waiver_until_ts)


def test_combo_maker_fee_series_charge_takers_the_quadratic_curve():
    """``quadratic_with_combo_maker_fees`` (spec 3.34) adds maker fees only: a taker pays the
    quadratic curve. (Before, an unknown word, it was charged the flat peak.)"""
    terms = FeeSchedule().terms("KXCOMBO", D("1"), "quadratic_with_combo_maker_fees")
    assert terms.fee_type is FeeType.QUADRATIC_WITH_COMBO_MAKER_FEES
    assert taker_fee_cc(D(10), D("0.10"), terms) == 630  # 0.07 x 10 x 0.1 x 0.9 = $0.063, not the peak $0.175


def test_each_fee_types_maker_pays_its_share_of_the_taker_fee():
    levels = [(D("0.40"), D(3)), (D("0.41"), D("2.50"))]  # sum of q x p x (1 - p) = 1.32475
    for name, share, maker_cc in [
        ("quadratic", D(0), 0),
        ("quadratic_with_maker_fees", D("0.25"), 116),  # 0.035/4 x 1.32475 = $0.01159... up
        ("quadratic_with_combo_maker_fees", D("0.5"), 232),  # 0.035/2 x 1.32475 = $0.02318... up
        ("flat", D(1), 482),  # the peak, as a taker: 0.035 x 5.5 x 0.25 = $0.048125 up
    ]:
        terms = FeeSchedule().terms("S", D("0.5"), name)  # a taker's coefficient 0.035
        assert MAKER_SHARE[terms.fee_type] == share
        maker = terms.maker()
        assert maker.coefficient == D("0.035") * share and maker.fee_type is terms.fee_type
        assert order_fee_cc(levels, maker) == maker_cc  # one ceiling per order, as a taker's
    waived = FeeSchedule().terms("S", D(1), "quadratic_with_maker_fees", waiver_until_ts=100)
    assert order_fee_cc(levels, waived.maker(), now_ms=99) == 0 and order_fee_cc(levels, waived.maker(), 100) > 0


def test_fee_in_force_goes_series_schedule_override_waiver():
    series = FeeLevel("quadratic", D(1))
    schedule = [FeeChange(100, "quadratic_with_maker_fees", D("0.5")), FeeChange(300, "quadratic", D(2))]
    overrides = [FeeChange(200, None, D("0.25")), FeeChange(400, None, None)]  # set, then cleared
    at = [fee_level_at(series, schedule, overrides, t) for t in (50, 100, 200, 300, 400)]
    assert at == [
        FeeLevel("quadratic", D(1)),  # the series
        FeeLevel("quadratic_with_maker_fees", D("0.5")),  # its scheduled change, due
        FeeLevel("quadratic_with_maker_fees", D("0.25")),  # the event's multiplier over it; type kept
        FeeLevel("quadratic", D("0.25")),  # a later change: its type; the override's multiplier stays
        FeeLevel("quadratic", D(2)),  # the override cleared: back to the schedule
    ]
    terms = fee_in_force(series, schedule, overrides, waiver_until_ts=250, t=200, series_ticker="S")
    assert terms.coefficient == D("0.0175") and terms.waived(200) and not terms.waived(250)
    # the operator's config still wins for a series it lists
    cfg = FeeSchedule(series_multipliers={"S": D("0.01")})
    assert fee_in_force(series, schedule, overrides, None, 200, cfg, "S").coefficient == D("0.01")


# -- properties of the order ---------------------------------------------------------------
_types = st.sampled_from([None, "quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees", "flat"])
_mults = st.one_of(st.none(), st.sampled_from([D(0), D("0.5"), D(1), D("1.25"), D(2)]))
_times = st.integers(min_value=0, max_value=1_000)
_changes = st.lists(st.builds(FeeChange, ts=_times, fee_type=_types, multiplier=_mults), max_size=6)
_series = st.builds(FeeLevel, fee_type=_types, multiplier=_mults)


@given(_series, _changes, _changes, _times)
def test_changes_not_yet_due_never_matter(series, schedule, overrides, t):
    due = fee_level_at(series, [c for c in schedule if c.ts <= t], [c for c in overrides if c.ts <= t], t)
    assert fee_level_at(series, schedule, overrides, t) == due


@given(_series, _changes, _changes, _times, st.randoms())
def test_the_order_the_changes_arrive_in_does_not_matter(series, schedule, overrides, t, rnd):
    # (changes at one time are told apart by their order; here every time is distinct)
    schedule = list({c.ts: c for c in schedule}.values())
    overrides = list({c.ts: c for c in overrides}.values())
    s2, o2 = schedule[:], overrides[:]
    rnd.shuffle(s2)
    rnd.shuffle(o2)
    assert fee_level_at(series, s2, o2, t) == fee_level_at(series, schedule, overrides, t)


@given(_series, _changes, _changes, _times, _types, _mults)
def test_the_latest_due_override_decides_each_field_it_sets(series, schedule, overrides, t, ft, m):
    latest = max((c.ts for c in overrides if c.ts <= t), default=-1)
    o = FeeChange(max(latest + 1, 0), ft, m)
    t = max(t, o.ts)
    under = fee_level_at(series, schedule, (), t)  # series and schedule alone
    got = fee_level_at(series, schedule, [*overrides, o], t)
    assert got.fee_type == (ft if ft is not None else under.fee_type)  # a null field: cleared
    assert got.multiplier == (m if m is not None else under.multiplier)


@given(_series, _changes, _times)
def test_without_changes_due_the_series_fee_is_in_force(series, changes, t):
    later = [FeeChange(t + 1 + c.ts, c.fee_type, c.multiplier) for c in changes]
    assert fee_level_at(series, later, later, t) == series


@given(_series, _changes, _changes, _times, st.integers(min_value=0, max_value=2_000))
def test_a_waiver_ahead_charges_nothing_whatever_the_fee(series, schedule, overrides, t, until):
    terms = fee_in_force(series, schedule, overrides, until, t)
    if t < until:
        assert order_fee_cc([(D("0.37"), D(5))], terms, t) == 0
        assert order_fee_cc([(D("0.37"), D(5))], terms.maker(), t) == 0
    else:
        level = fee_level_at(series, schedule, overrides, t)
        assert terms == FeeSchedule().terms("", level.multiplier, level.fee_type, until)
