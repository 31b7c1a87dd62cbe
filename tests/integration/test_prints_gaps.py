"""Trade prints across the WebSocket's gaps (issue #22): an error 25 or a sequence gap on the
trade subscription fetches the lost window once over REST, and a key whose WebSocket is down
polls GET /markets/trades until it is back; whichever way a print comes, it is recorded once."""

import time
from collections import Counter

import pytest

from kakashi_tui.adapters.kalshi.client import KalshiClient
from kakashi_tui.adapters.kalshi.source import KalshiSource
from kakashi_tui.adapters.kalshi.ws import BookFeed, LiveBookSource
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS
from tests.integration.loopback_ws import wait_for

T0, T1 = "KXFAKE-26JAN05-T00", "KXFAKE-26JAN05-T01"


@pytest.fixture
def rest():
    st = FakeKalshi.with_markets(4, require_signature=False, page_size=2)
    with FakeKalshiServer(st) as srv:
        yield srv


@pytest.fixture
def ws():
    s = FakeKalshiWS((T0, T1), interval=0.005)
    s.start()
    yield s
    s.stop()


def desk(rest, ws):
    """The source a keyed run records from: REST polled, the WebSocket's books and prints over it."""
    c = KalshiClient(base_url=rest.base_url, backoff_base=0.01, timeout=2.0, reads_per_s=500)
    polled = KalshiSource(c, watch_for=lambda: {T0, T1}, prints_every_s=0)
    feed = BookFeed(ws.url, backoff_base=0.02, backoff_max=0.1)
    got: list = []
    src = LiveBookSource(polled, feed, also=lambda: {T0, T1}, on_trades=got.extend)
    return src, got


def ids(got):
    return Counter(t.trade_id for t in got)


def trades_asked(st):
    return [p for _, p in st.requests if "/markets/trades" in p]


def over_ws(ws, tid, ticker, ts_ms):
    ws.send_trade(trade_id=tid, market_ticker=ticker, ts=ts_ms // 1000, ts_ms=ts_ms)


@pytest.mark.parametrize("fault", ["error 25", "sequence gap"])
def test_prints_lost_at_a_gap_are_fetched_once_over_rest_and_recorded_once(rest, ws, fault):
    st, now = rest.state, int(time.time() * 1000)
    st.add_print(T0, "0.4100", ts_ms=now - 60_000, trade_id="before")  # before the window: not asked for
    st.add_print(T0, "0.4200", ts_ms=now - 30_000, trade_id="p1")  # the stream delivers it
    st.add_print(T0, "0.4300", ts_ms=now - 20_000, trade_id="p2")  # lost
    st.add_print(T1, "0.4400", ts_ms=now - 10_000, trade_id="p3")  # lost
    st.add_print(T1, "0.4500", ts_ms=now - 5_000, trade_id="p4")  # the stream delivers it after the gap
    src, got = desk(rest, ws)
    src.start()
    try:
        assert wait_for(lambda: src.feed.live)
        over_ws(ws, "p1", T0, now - 30_000)
        assert wait_for(lambda: (src.fetch(), "p1" in ids(got))[1])
        assert not trades_asked(st)  # the stream is live: nothing polled
        if fault == "error 25":
            ws.error(25, channel="trade")
        else:
            ws.trade_gap()
        over_ws(ws, "p4", T1, now - 5_000)
        batches = []
        assert wait_for(lambda: (batches.append(src.fetch()), {"p2", "p3", "p4"} <= set(ids(got)))[1])
        for _ in range(3):
            batches.append(src.fetch())
    finally:
        src.stop()
    n = ids(got)
    assert (n["p1"], n["p2"], n["p3"], n["p4"], n["before"]) == (1, 1, 1, 1, 0)
    assert src.feed.health.trade_gaps == 1
    by_id = {t.trade_id: t for t in got}
    assert by_id["p2"].source == by_id["p3"].source == "kalshi-rest" and by_id["p1"].source == "kalshi-ws"
    asked = trades_asked(st)  # once for each market watched, from the newest print delivered (seconds)
    assert len(asked) == 2 and {p.split("ticker=")[1].split("&")[0] for p in asked} == {T0, T1}
    assert all(f"min_ts={(now - 30_000) // 1000}" in p for p in asked)
    said = [x for b in batches for x in b.notes if "lost at a gap" in x]
    assert len(said) == 1 and said[0].startswith("trade prints lost at a gap on the WebSocket: ")


def test_with_the_websocket_down_prints_are_polled_until_it_is_back(rest, ws):
    st, now = rest.state, int(time.time() * 1000)
    st.add_print(T0, "0.4200", ts_ms=now - 30_000, trade_id="p1")
    ws.refuse = True  # the handshake answered 503: the feed is down
    src, got = desk(rest, ws)
    src.start()
    try:
        assert wait_for(lambda: src.feed.health.detail != "")
        first, second = src.fetch(), src.fetch()
        assert src.feed_status()[0] == "polling" and ids(got)["p1"] == 1
        said = [x for x in first.notes + second.notes if "trade prints come by polling" in x]
        assert len(said) == 1 and "WebSocket is down" in said[0] and said[0] in first.notes
        st.add_print(T1, "0.4400", ts_ms=now - 10_000, trade_id="p2")
        src.fetch()
        assert ids(got)["p2"] == 1
        ws.refuse = False
        assert wait_for(lambda: src.feed.live)
        polls = len(trades_asked(st))
        st.add_print(T1, "0.4600", ts_ms=now - 2_000, trade_id="rest-only")  # the stream is back: not polled
        over_ws(ws, "p2", T1, now - 10_000)  # polled already: not recorded again
        over_ws(ws, "p5", T0, now - 1_000)
        assert wait_for(lambda: (src.fetch(), "p5" in ids(got))[1])
        src.fetch()
    finally:
        src.stop()
    assert len(trades_asked(st)) == polls
    n = ids(got)
    assert (n["p1"], n["p2"], n["p5"], n["rest-only"]) == (1, 1, 1, 0)
    assert {t.trade_id: t.source for t in got}["p5"] == "kalshi-ws"
