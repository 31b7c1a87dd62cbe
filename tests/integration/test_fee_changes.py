"""Fee changes as Kalshi publishes them (#22): the series' schedule (GET /series/fee_changes), the
events' overrides (GET /events/fee_changes, an event's own fields, the WebSocket's
``event_fee_update``), applied in the order series, schedule, override, waiver, into the row the
engine trades on and the store keeps."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kakashi_tui.adapters.kalshi.client import KalshiClient
from kakashi_tui.adapters.kalshi.source import KalshiSource
from kakashi_tui.adapters.store.schema import MarketRow
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
from kakashi_tui.trading.engine import Engine, EngineConfig

T0 = 1_900_000_000_000  # the source's clock at the start (2030)
HOUR = 3_600_000
EVENT = "KXFAKE-26JAN05"
TICKER = "KXFAKE-26JAN05-T00"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def kalshi():
    with FakeKalshiServer(FakeKalshi.with_markets(2, page_size=100)) as srv:
        yield srv


def _source(srv, clock, **kw):
    c = KalshiClient(base_url=srv.base_url, backoff_base=0.01, timeout=2.0, reads_per_s=500, max_retries=1)
    source = KalshiSource(c, clock=clock, **kw)
    _LAST.clear()
    fetch = source.fetch

    def fetch_and_keep():  # every batch's rows are what the engine holds from then on
        b = fetch()
        for r in b.rows:
            if "fee_type" in r.market:
                _LAST[r.market["ticker"]] = r.market["fee_type"], r.market["fee_multiplier"]
        return b

    source.fetch = fetch_and_keep  # type: ignore[method-assign]
    return source, c


_LAST: dict[str, tuple] = {}  # each market's fee as last handed over


def _fee(batch, ticker=TICKER):
    """The fee the engine holds after ``batch``: its row's, or, not sent again (unchanged: issue
    #22, item 10), the row last sent."""
    return _LAST[ticker]


def test_a_scheduled_series_change_applies_from_its_time(kalshi):
    kalshi.state.series_fee_changes = [
        {"id": "c1", "series_ticker": "KXFAKE", "fee_type": "quadratic_with_maker_fees",
         "fee_multiplier": Decimal("0.5"), "scheduled_ts": _iso(T0 + HOUR)},
        {"id": "c2", "series_ticker": "KXFAKE", "fee_type": "quadratic",
         "fee_multiplier": Decimal("2"), "scheduled_ts": _iso(T0 + 3 * HOUR)},
    ]  # fmt: skip
    clock = Clock()
    source, c = _source(kalshi, clock)
    with c:
        assert _fee(source.fetch()) == ("quadratic", "1")  # the series' own: nothing due yet
        clock.ms = T0 + HOUR  # the first change is due (read an hour ago, not read again)
        assert _fee(source.fetch()) == ("quadratic_with_maker_fees", "0.5")
        kalshi.state.series_fee_changes = kalshi.state.series_fee_changes[1:]  # past: Kalshi drops it
        source.fee_changes_every_s = 0  # read again now
        clock.ms = T0 + 2 * HOUR
        # the series' own fee (cached) does not show it yet: the change is kept past its time
        assert _fee(source.fetch()) == ("quadratic_with_maker_fees", "0.5")
        clock.ms = T0 + 3 * HOUR
        assert _fee(source.fetch()) == ("quadratic", "2")
    got = [p for _m, p in kalshi.state.requests if "fee_changes" in p]
    # read at the start, not again within fee_changes_every_s, then at each fetch once it is 0
    assert len([p for p in got if p.startswith("/trade-api/v2/series/fee_changes")]) == 3


def test_a_withdrawn_change_is_forgotten(kalshi):
    kalshi.state.series_fee_changes = [
        {"id": "c1", "series_ticker": "KXFAKE", "fee_type": "quadratic", "fee_multiplier": Decimal("3"),
         "scheduled_ts": _iso(T0 + 2 * HOUR)},
    ]  # fmt: skip
    clock = Clock()
    source, c = _source(kalshi, clock, fee_changes_every_s=0)
    with c:
        source.fetch()
        kalshi.state.series_fee_changes = []  # withdrawn before its time
        source.fetch()
        clock.ms = T0 + 2 * HOUR
        assert _fee(source.fetch()) == ("quadratic", "1")


def test_an_event_override_applies_over_the_series_and_a_null_clears_it(kalshi):
    kalshi.state.series_fee_changes = [
        {"id": "s1", "series_ticker": "KXFAKE", "fee_type": "quadratic_with_maker_fees",
         "fee_multiplier": Decimal("0.5"), "scheduled_ts": _iso(T0 - HOUR)},
    ]  # fmt: skip
    kalshi.state.event_fee_changes = [
        {"id": "e1", "event_ticker": EVENT, "series_ticker": "KXFAKE", "fee_type_override": None,
         "fee_multiplier_override": Decimal("0.25"), "scheduled_ts": _iso(T0 + HOUR)},
        {"id": "e2", "event_ticker": EVENT, "series_ticker": "KXFAKE", "fee_type_override": None,
         "fee_multiplier_override": None, "scheduled_ts": _iso(T0 + 2 * HOUR)},
        {"id": "e3", "event_ticker": "KXOTHER-1", "series_ticker": "KXOTHER", "fee_type_override": "flat",
         "fee_multiplier_override": 1, "scheduled_ts": _iso(T0 - HOUR)},
    ]  # fmt: skip
    kalshi.state.page_size = 2  # the event changes come in two cursor pages
    clock = Clock()
    source, c = _source(kalshi, clock)
    with c:
        assert _fee(source.fetch()) == ("quadratic_with_maker_fees", "0.5")  # the schedule, due
        clock.ms = T0 + HOUR
        assert _fee(source.fetch()) == ("quadratic_with_maker_fees", "0.25")  # the event's multiplier over it
        clock.ms = T0 + 2 * HOUR
        assert _fee(source.fetch()) == ("quadratic_with_maker_fees", "0.5")  # cleared: back to the series'


def test_an_events_own_override_is_read_with_it(kalshi):
    kalshi.state.event_fee_overrides = {EVENT: ("flat", Decimal("0.5"))}
    source, c = _source(kalshi, Clock())
    with c:
        assert _fee(source.fetch()) == ("flat", "0.5")


def test_the_websocket_event_fee_update_sets_and_clears_the_override(kalshi):
    clock = Clock()
    source, c = _source(kalshi, clock)
    frame = {
        "type": "event_fee_update",
        "sid": 8,
        "msg": {"event_ticker": EVENT, "fee_type_override": "quadratic", "fee_multiplier_override": 0.75},
    }
    with c:
        assert _fee(source.fetch()) == ("quadratic", "1")
        clock.ms += 1
        assert source.apply_ws(frame)
        assert _fee(source.fetch()) == ("quadratic", "0.75")
        clock.ms += 1
        assert source.apply_ws({**frame, "msg": {**frame["msg"], "fee_multiplier_override": None}})
        assert _fee(source.fetch()) == ("quadratic", "1")
        # a frame it cannot read changes nothing (never read as a clear)
        assert not source.apply_ws({**frame, "msg": {**frame["msg"], "fee_multiplier_override": "lots"}})
        assert not source.apply_ws({"type": "ticker", "msg": {}})
        assert _fee(source.fetch()) == ("quadratic", "1")


def test_a_failed_read_keeps_the_last_known_and_is_a_note(kalshi):
    kalshi.state.event_fee_changes = [
        {"id": "e1", "event_ticker": EVENT, "series_ticker": "KXFAKE", "fee_type_override": None,
         "fee_multiplier_override": Decimal("0.25"), "scheduled_ts": _iso(T0 - HOUR)},
        {"id": "bad", "event_ticker": EVENT, "fee_type_override": None, "fee_multiplier_override": "lots",
         "scheduled_ts": _iso(T0 - HOUR)},
    ]  # fmt: skip
    source, c = _source(kalshi, Clock(), fee_changes_every_s=0)
    with c:
        first = source.fetch()
        assert _fee(first) == ("quadratic", "0.25") and not first.errors
        assert any("1 change(s) Kakashi cannot read" in n for n in first.notes)
        kalshi.state.down = {"/series/fee_changes", "/events/fee_changes"}
        down = source.fetch()
    assert _fee(down) == ("quadratic", "0.25")  # the last known, kept
    assert not down.errors  # not a feed alarm
    assert sum("fee changes not read, the last known kept" in n for n in down.notes) == 2


def test_the_engine_charges_and_the_store_keeps_the_fee_in_force(kalshi, tmp_path):
    kalshi.state.event_fee_changes = [
        {"id": "e1", "event_ticker": EVENT, "series_ticker": "KXFAKE", "fee_type_override": None,
         "fee_multiplier_override": Decimal("0.5"), "scheduled_ts": _iso(T0 - HOUR)},
    ]  # fmt: skip
    source, c = _source(kalshi, Clock())
    store = Store(tmp_path / "k.db")
    with c:
        engine = Engine(store, source, [], EngineConfig())
        engine.tick()
    assert engine.fee_terms(TICKER).coefficient == Decimal("0.035")
    assert MarketRow.get(MarketRow.ticker == TICKER).fee_multiplier == "0.5"
    store.close()
