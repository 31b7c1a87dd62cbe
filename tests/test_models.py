from decimal import Decimal

import pytest
from pydantic import ValidationError

from kakashi_tui.core.models import Market, Side, Snapshot, parse_utc_ms
from kakashi_tui.core.validate import validate_row

NOW = 1_767_571_200_000


def snap(**kw):
    row = {"ticker": "T", "ts": NOW, "yes_bid": Decimal("0.40"), "yes_ask": Decimal("0.43")}
    row.update(kw)
    return row


MARKET = {"ticker": "T", "status": "open"}


def reason(**kw):
    return validate_row(MARKET, snap(**kw), NOW).reason


def test_good_row_validates():
    v = validate_row(MARKET, snap(), NOW)
    assert v.reason is None and v.snapshot.yes_ask == Decimal("0.43")
    assert v.snapshot.ask(Side.NO) == Decimal("0.60") and v.snapshot.bid(Side.NO) == Decimal("0.57")


@pytest.mark.parametrize("kw, fragment", [
    ({"yes_bid": Decimal("1.2")}, "outside [0, 1]"),
    ({"yes_ask": Decimal("-0.1")}, "outside [0, 1]"),
    ({"yes_bid": Decimal("0.50"), "yes_ask": Decimal("0.45")}, "crossed"),
    ({"yes_bid": Decimal("0.45"), "yes_ask": Decimal("0.45")}, "crossed"),
    ({"yes_bid": Decimal("0"), "yes_ask": Decimal("1")}, "empty book"),
    ({"yes_bid": None, "yes_ask": None}, "empty book"),
    ({"ts": NOW + 60_000}, "in the future"),
    ({"ts": -5}, "positive"),
    ({"yes_bid": Decimal("0.405")}, "cent grid"),
    ({"ticker": "  "}, "ticker"),
])
def test_corrupt_snapshot_rejected_with_reason(kw, fragment):
    r = reason(**kw)
    assert r is not None and fragment in r


def test_missing_ticker_on_market_rejected():
    v = validate_row({"ticker": "", "status": "open"}, None, NOW)
    assert v.market is None and "ticker" in v.reason


def test_settled_market_without_result_rejected():
    v = validate_row({"ticker": "T", "status": "settled"}, None, NOW)
    assert v.market is None and "no result" in v.reason
    ok = validate_row({"ticker": "T", "status": "settled", "result": "no"}, None, NOW)
    assert ok.market.result is Side.NO


def test_depth_must_agree_with_top_of_book():
    r = reason(yes_bids=[{"price": "0.39", "qty": 5}])
    assert "depth disagrees" in r
    r = reason(no_bids=[{"price": "0.57", "qty": 5}, {"price": "0.58", "qty": 5}])
    assert "depth disagrees" in r or "best first" in r


def test_timestamps_must_be_utc():
    assert parse_utc_ms("2026-01-05T00:00:00Z") == NOW
    assert parse_utc_ms("2026-01-05T00:00:00+00:00") == NOW
    with pytest.raises(ValueError, match="not UTC"):
        parse_utc_ms("2026-01-05T01:00:00+01:00")
    with pytest.raises(ValueError, match="not UTC"):
        parse_utc_ms("2026-01-05T00:00:00")


def test_models_are_frozen():
    s = Snapshot.model_validate(snap())
    with pytest.raises(ValidationError):
        s.ticker = "X"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Market(ticker="T", status="open", nonsense=1)  # type: ignore[call-arg]
