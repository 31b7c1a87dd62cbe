"""A plan registered before the evidence (core/plan.py): its grammar, its numbers (the report's own
functions), and success judged once, at the sample."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakashi_tui.core import intervals as iv
from kakashi_tui.core.plan import (
    MEASURES,
    Plan,
    PlanError,
    PlanTrade,
    Sample,
    check_success,
    judge_at_sample,
    max_fall_pct,
    measure,
    parse_condition,
    parse_sample,
    state_line,
)

GOOD = [
    ("clv_hi95 < 0 after 50 trades", "clv_hi95 < 0 after 50 trades"),
    ("drawdown > 8%", "drawdown > 8%"),
    ("drawdown>8", "drawdown > 8%"),
    ("pnl_lo95 > 0 and clv_lo95 > 0 after 200 trades", "pnl_lo95 > 0 and clv_lo95 > 0 after 200 trades"),
    ("  pnl >= $0.10   and   skill_lo95 >= -0.05  ", "pnl >= 0.1 and skill_lo95 >= -0.05"),
    ("clv <= -1.50c after 1 trade", "clv <= -1.5 after 1 trades"),
    ("clv < -2¢ after 3 days", "clv < -2 after 3 days"),
    ("trades >= 300 and pnl < -$0", "trades >= 300 and pnl < 0"),
    ("days > 30", "days > 30"),
]

BAD = [
    ("", "it is empty"),
    ("   ", "it is empty"),
    ("clw > 0", "unknown measure 'clw'"),
    ("clw > 0", "did you mean clv?"),
    ("clv", "expected <, <=, > or >= after 'clv'"),
    ("clv = 0", "'=' is not a comparison here"),
    ("clv == 0", "'==' is not a comparison here"),
    ("clv >", "expected a number after clv >"),
    ("clv > zero", "expected a number after clv >, got 'zero'"),
    ("clv > 5%", "'%' goes with drawdown, not clv"),
    ("drawdown > 5c", "'c' goes with the clv measures, not drawdown"),
    ("skill > $1", "'$' goes with the pnl measures, not skill"),
    ("clv > 0 and", "expected a measure after 'and'"),
    ("clv > 0 or pnl > 0", "'or' is not in the grammar"),
    ("clv > 0 pnl > 0", "unexpected 'pnl': expected 'and' or 'after'"),
    ("clv > 0 after", "expected a whole number of trades or days after 'after'"),
    ("clv > 0 after 5", "expected 'trades' or 'days' after 'after 5'"),
    ("clv > 0 after 5 weeks", "expected 'trades' or 'days' after 'after 5', got 'weeks'"),
    ("clv > 0 after 0 trades", "0 is out of range"),
    ("clv > 0 after 2.5 trades", "expected a whole number after 'after', got '2.5'"),
    ("clv > 0 after 5 trades and pnl > 0", "unexpected 'and' after '5 trades'"),
    ("clv > 10000000", "out of range"),
    ("clv > 0 ; drop table plans", "unexpected ';'"),
    ("x" * 400, "characters long"),
]


def test_good_conditions_parse_to_one_canonical_text():
    for text, canonical in GOOD:
        c = parse_condition(text)
        assert c.text == canonical, text
        assert parse_condition(c.text) == c  # the stored text parses back to the same condition


def test_bad_conditions_are_one_line_naming_the_text_and_the_problem():
    for text, why in BAD:
        with pytest.raises(PlanError) as e:
            parse_condition(text, "kill condition")
        msg = str(e.value)
        assert why in msg and "\n" not in msg and msg.startswith("plan: kill condition "), (text, msg)
        assert e.value.exit_code == 2


def test_samples_and_success_judged_only_at_the_sample():
    assert parse_sample("200 trades") == Sample(200, "trades") and parse_sample("30 day") == Sample(30, "days")
    for bad in ("", "200", "trades", "0 trades", "200 weeks", "1.5 days", "200 trades now"):
        with pytest.raises(PlanError, match=r"^plan: sample "):
            parse_sample(bad)
    s = Sample(200, "trades")
    check_success([parse_condition("clv_lo95 > 0 after 200 trades")], s)  # the same sample: fine
    with pytest.raises(PlanError, match="success is judged once, at the plan's sample"):
        check_success([parse_condition("clv_lo95 > 0 after 50 trades")], s)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(MEASURES)),
            st.sampled_from(["<", "<=", ">", ">="]),
            st.decimals(min_value=-999, max_value=999, places=3, allow_nan=False),
        ),
        min_size=1,
        max_size=4,
    ),
    st.one_of(st.none(), st.tuples(st.integers(1, 10_000), st.sampled_from(["trades", "days"]))),
)
def test_any_condition_of_the_grammar_round_trips_through_its_text(clauses, after):
    text = " and ".join(f"{m} {op} {v}" for m, op, v in clauses)
    text += f" after {after[0]} {after[1]}" if after else ""
    c = parse_condition(text)
    assert [(x.measure, x.op, x.value) for x in c.clauses] == [(m, op, v) for m, op, v in clauses]
    assert parse_condition(c.text) == c


def trade(i, event, pnl, *, side="yes", price=0.40, fee=0.01, close=0.45, p=0.6, m=0.42, y=1, settled=None):
    return PlanTrade(
        fill_id=i,
        settled_ts=1000 + i if settled is None else settled,
        ticker=f"T{i}",
        event=event,
        side=side,
        contracts=10.0,
        price=price,
        fee=fee,
        p_hat=p,
        market=m,
        outcome=y,
        close=close,
        pnl=pnl,
    )


def test_the_measures_are_the_reports_numbers_worked_out_by_hand():
    trades = [
        trade(1, "E1", 1.0, close=0.45),  # yes at 0.40, fee 0.01: 0.45 - 0.40 - 0.01 = +4c
        trade(2, "E1", -2.0, side="no", price=0.50, close=0.45),  # no: (1 - 0.45) - 0.50 - 0.01 = +4c
        trade(3, "E2", 0.5, close=0.30, y=0),  # 0.30 - 0.40 - 0.01 = -11c
        trade(4, "E3", 2.5, close=None),  # no closing line: not in CLV
    ]
    m = measure(trades, drawdown_pct=2.5, days=1.5)
    assert m["trades"] == 4 and m["days"] == 1.5 and m["drawdown"] == 2.5
    assert m["clv"] == pytest.approx((4 + 4 - 11) / 3)
    assert m["pnl"] == pytest.approx(0.5)  # (1 - 2 + 0.5 + 2.5) / 4
    # the intervals are the report's clustered_mean / clustered_skill on the same numbers
    groups = iv.cluster_index(["E1", "E1", "E2"])
    clv = iv.clustered_mean([0.04, 0.04, -0.11], groups)
    assert (m["clv_lo95"], m["clv_hi95"]) == pytest.approx((clv.lo * 100, clv.hi * 100))
    pnl = iv.clustered_mean([1.0, -2.0, 0.5, 2.5], iv.cluster_index(["E1", "E1", "E2", "E3"]))
    assert (m["pnl_lo95"], m["pnl_hi95"]) == (pnl.lo, pnl.hi)
    # Brier skill: p̂ 0.6 against the mid 0.42, outcomes 1, 1, 0, 1
    bp, bm = 3 * 0.4**2 + 0.6**2, 3 * 0.58**2 + 0.42**2
    assert m["skill"] == pytest.approx(1 - bp / bm)
    # one event: no interval, so a clause on a bound cannot be met
    one = measure([trade(1, "E1", 1.0), trade(2, "E1", 1.0)])
    assert one["pnl"] == 1.0 and one["pnl_lo95"] is None
    assert not parse_condition("pnl_lo95 > -100").met(one)
    assert measure([])["clv"] is None and measure([])["trades"] == 0


def test_clv_is_the_reports_own_closing_line_value():
    """The plan's CLV and the post-mortem's are one function: the same entries give the same interval."""
    from kakashi_tui.frontends.report.edge import Entry, line_value

    trades = [trade(i, f"E{i % 3}", 0.0, close=0.30 + 0.05 * i, side="yes" if i % 2 else "no") for i in range(1, 8)]
    entries = [
        Entry(
            t.fill_id,
            t.settled_ts,
            t.ticker,
            t.event,
            t.side,
            t.contracts,
            t.price,
            t.fee,
            t.p_hat,
            t.market,
            1,
            t.close,
        )
        for t in trades
    ]
    lv = line_value(entries)
    m = measure(trades, groups=("clv",))
    assert (m["clv"], m["clv_lo95"], m["clv_hi95"]) == pytest.approx(
        (lv.fees.estimate * 100, lv.fees.lo * 100, lv.fees.hi * 100)
    )


def test_drawdown_is_the_largest_fall_below_the_running_peak():
    assert max_fall_pct([100, 110, 99, 105, 88, 120, 119]) == pytest.approx(20.0)
    assert max_fall_pct([]) == 0.0 and max_fall_pct([5, 6, 7]) == 0.0


def plan(sample="40 trades", success=("pnl > 0",), kill=()):
    return Plan(
        id=1,
        created_ms=0,
        hypothesis="h",
        settings="{}",
        beliefs="b",
        sample=parse_sample(sample),
        kill=tuple(parse_condition(k) for k in kill),
        success=tuple(parse_condition(s) for s in success),
        after_decision_id=0,
        after_fill_id=0,
        after_tick=0,
    )


def test_success_is_judged_once_at_the_sample_never_by_an_early_look():
    winners = [trade(i, f"E{i}", 1.0) for i in range(1, 21)]  # the first 20 to settle win $1
    losers = [trade(i, f"E{i}", -3.0) for i in range(21, 41)]  # the next 20 lose $3
    p = plan("40 trades")
    # an early look at 20 trades would pass (mean +$1): no verdict is given before the sample
    assert parse_condition("pnl > 0").met(measure(winners))
    assert judge_at_sample(p, winners, 0.0, 1.0) is None
    verdict, numbers = judge_at_sample(p, winners + losers, 0.0, 1.0)
    assert verdict == "not passed" and "pnl -$1.0000" in numbers
    # and vice versa: registered at 20, the verdict is on the first 20 to settle (by settlement,
    # whatever the fill order), not on what settled after
    q = plan("20 trades")
    late = [trade(i, f"L{i}", -3.0, settled=5000 + i) for i in range(1, 30)]
    assert judge_at_sample(q, late[:5] + winners, 0.0, 1.0) is not None
    assert judge_at_sample(q, late + winners, 0.0, 1.0)[0] == "passed"
    # a sample of days: judged on what settled in them, at the first look past N days
    d = plan("3 days")
    assert judge_at_sample(d, winners, 0.0, 2.9) is None
    assert judge_at_sample(d, winners, 0.0, 3.0)[0] == "passed"


def test_state_lines():
    p = plan("40 trades")
    assert state_line(p, 12, 0.3) == "plan 1: on track (12 of 40 settled trades)"
    from dataclasses import replace

    failed = replace(p, killed_ts=5, killed_by="drawdown > 8%", killed_detail="drawdown 8.40%, trades 3")
    assert state_line(failed, 3, 1.0) == "plan 1: FAILED (kill drawdown > 8%: drawdown 8.40%, trades 3)"
    assert state_line(replace(p, judged_ts=5, verdict="not passed"), 40, 1.0) == "plan 1: NOT PASSED at 40 trades"
    assert state_line(replace(p, superseded_by=2), 7, None).startswith("plan 1: superseded by plan 2 at 7 of 40")
    assert state_line(plan("30 days"), 0, 2.25) == "plan 1: on track (2.2 of 30 days)"
    assert math.isclose(measure([trade(1, "E", 1.0)])["pnl"], 1.0)
