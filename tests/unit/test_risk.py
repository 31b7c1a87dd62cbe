from dataclasses import replace
from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from kakashi_tui.core import risk
from kakashi_tui.core.models import MarketStatus, Side, TradeDecision
from kakashi_tui.core.risk import RiskContext, RiskLimits, check, daily_cap_hit

NOW = 1_767_571_200_000
LIMITS = RiskLimits()
CTX = RiskContext(
    now_ms=NOW,
    kill_switch=False,
    daily_stopped=False,
    open_positions=0,
    cash_cc=10_000_000,
    equity_cc=10_000_000,
    day_start_equity_cc=10_000_000,
    market_status=MarketStatus.ACTIVE,
    market_close_ts=NOW + 3_600_000,
    quote_ts=NOW - 1000,
    spread=D("0.02"),
)
DEC = TradeDecision(
    ticker="T",
    ts=NOW,
    side=Side.YES,
    contracts=D(10),
    limit_price=D("0.45"),
    best_ask=D("0.45"),
    p_hat=D("0.55"),
    ev_per_contract=D("0.08"),
    worst_case_cc=45_200,
)


def test_a_clean_decision_is_accepted():
    assert check(DEC, CTX, LIMITS) == (True, "accepted")


@pytest.mark.parametrize(
    "change, reason",
    [
        (dict(kill_switch=True), risk.KILL_SWITCH),
        (dict(daily_stopped=True), risk.DAILY_STOP),
        (dict(market_status=MarketStatus.CLOSED), risk.MARKET_NOT_OPEN),
        (dict(market_status=MarketStatus.DETERMINED), risk.MARKET_NOT_OPEN),
        (dict(market_status=MarketStatus.INITIALIZED), risk.MARKET_NOT_OPEN),
        (dict(market_status=MarketStatus.DISPUTED), risk.MARKET_NOT_OPEN),
        (dict(market_close_ts=NOW), risk.MARKET_CLOSED),
        (dict(quote_ts=NOW - 30_001), risk.STALE_QUOTE),
        (dict(spread=D("0.06")), risk.WIDE_SPREAD),
        (dict(spread=None), risk.NO_SPREAD),
        (dict(open_positions=5), risk.MAX_POSITIONS),
        (dict(equity_cc=4_500_000, cash_cc=4_500_000, day_start_equity_cc=4_500_000), risk.PER_TRADE_CAP),
        (dict(equity_cc=9_720_000), risk.DAILY_HEADROOM),  # $28.00 lost + $4.52 > $30.00
        (dict(cash_cc=40_000), risk.NO_CASH),
    ],
)
def test_each_guardrail_rejects_with_its_reason(change, reason):
    ok, why = check(DEC, replace(CTX, **change), LIMITS)
    assert not ok and why.startswith(reason)


def test_quote_exactly_at_max_age_passes_and_zero_size_rejects():
    assert check(DEC, replace(CTX, quote_ts=NOW - 30_000), LIMITS)[0]
    ok, why = check(DEC._replace(contracts=D(0), worst_case_cc=0), CTX, LIMITS)
    assert not ok and why == risk.ZERO_SIZE
    # Without order-book levels (Kalshi's books need an API key) the reason says so.
    ok, why = check(DEC._replace(contracts=D(0), worst_case_cc=0), replace(CTX, book_depth=False), LIMITS)
    assert not ok and why == risk.NO_DEPTH


def test_kill_switch_beats_everything():
    ctx = replace(CTX, kill_switch=True, daily_stopped=True, open_positions=9, cash_cc=0)
    assert check(DEC, ctx, LIMITS) == (False, risk.KILL_SWITCH)


def test_daily_cap_hit_at_three_percent():
    assert not daily_cap_hit(10_000_000, 9_700_001, LIMITS)
    assert daily_cap_hit(10_000_000, 9_700_000, LIMITS)
    assert not daily_cap_hit(0, -5, LIMITS)


@pytest.mark.parametrize(
    "field, value",
    [
        ("max_loss_per_trade_pct", D("1.5")),
        ("max_open_positions", 6),
        ("daily_loss_cap_pct", D("3.01")),
    ],
)
def test_limits_cannot_be_loosened_past_risk_limits_md(field, value):
    with pytest.raises(ValidationError, match="loosens"):
        RiskLimits(**{field: value})


def test_limits_can_be_tightened():
    tight = RiskLimits(max_loss_per_trade_pct=D("0.5"), max_open_positions=2, daily_loss_cap_pct=D("1"))
    ok, why = check(DEC, replace(CTX, open_positions=2), tight)
    assert not ok and why.startswith(risk.MAX_POSITIONS)
