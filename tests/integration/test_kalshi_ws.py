"""The WebSocket book feed against a loopback server speaking Kalshi's messages: snapshot +
deltas, sequence gaps, malformed frames, disconnects, refusal and the fallback to polling."""

import time
from decimal import Decimal

import pytest

from kakashi_tui.adapters.kalshi.ws import Book, BookFeed, LiveBookSource, Malformed
from kakashi_tui.adapters.source import FetchBatch, RawRow, Source
from kakashi_tui.core.validate import validate_row
from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS
from kakashi_tui.trading.view import feed_status
from tests.integration.loopback_ws import wait_for

TICKERS = ("KXA-1", "KXB-2")


@pytest.fixture
def server():
    s = FakeKalshiWS(TICKERS, interval=0.005)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def feed(server):
    f = BookFeed(server.url, backoff_base=0.02, backoff_max=0.2)
    f.watch(TICKERS)
    yield f
    f.stop()


def in_sync_with(server, feed):
    """Hold the server's books still and wait until the client's equal them."""
    server.paused = True
    try:

        def same():
            books = feed.books()
            return feed.live and all(
                t in books and {"yes": books[t].yes, "no": books[t].no} == server.book(t) for t in TICKERS
            )

        return wait_for(same)
    finally:
        server.paused = False


def test_book_from_snapshot_and_deltas_in_exact_units():
    b = Book.from_rules(
        {
            "market_ticker": "T",
            "yes_dollars_fp": [["0.4100", "5.00"], ["0.4200", "13.50"]],
            "no_dollars_fp": [["0.5500", "7.00"]],
        },
        1,
    )
    b.apply({"side": "yes", "price_dollars": "0.4200", "delta_fp": "-13.50"}, 2)
    b.apply({"side": "no", "price_dollars": "0.5600", "delta_fp": "2.00"}, 3)
    raw = b.raw_snapshot(99)
    assert raw["yes_bid"] == Decimal("0.41") and raw["yes_ask"] == Decimal("0.44")
    assert raw["yes_bids"] == [[Decimal("0.41"), 5]] and raw["no_bids"] == [[Decimal("0.56"), 2], [Decimal("0.55"), 7]]
    v = validate_row({"ticker": "T", "status": "open"}, raw, 99)
    assert v.reason is None and v.snapshot.ask_levels is not None
    for bad in (
        {"side": "maybe", "price_dollars": "0.4", "delta_fp": "1.00"},
        {"side": "yes", "price_dollars": "1.2000", "delta_fp": "1.00"},
        {"side": "yes", "price_dollars": "0.4100", "delta_fp": "-6.00"},  # below zero
        {"side": "yes", "price_dollars": "0.4100", "delta_fp": "0.001"},
    ):
        with pytest.raises(Malformed):
            b.apply(bad, 4)


def test_books_follow_the_server_from_snapshot_and_deltas(server, feed):
    feed.start()
    assert wait_for(lambda: feed.live and server.deltas_sent > 50)
    assert in_sync_with(server, feed)
    assert feed.health.gaps == 0 and feed.health.malformed == 0 and server.connections == 1
    assert wait_for(lambda: len(feed.take_trades()) > 0)


def snapshot_requests(server):
    return [c for c in list(server.commands) if c.get("cmd") == "update_subscription"]


def test_a_sequence_gap_asks_for_snapshots_on_the_same_subscription(server, feed):
    """Kalshi 3.34's cheaper resync: ``update_subscription`` / ``get_snapshot`` for the books
    concerned; no unsubscribe and no new subscription (the client used to resubscribe)."""
    feed.start()
    assert wait_for(lambda: feed.live and server.deltas_sent > 10)
    subs = len(server.subscribes)
    server.gap()
    assert wait_for(lambda: feed.health.gaps >= 1 and snapshot_requests(server))
    (asked,) = snapshot_requests(server)
    params = asked["params"]
    assert params["action"] == "get_snapshot" and params["market_tickers"] == sorted(TICKERS)
    assert len(params["sids"]) == 1 and params["sids"][0] in {s for c in server._conns for s in c.book_sids}
    assert in_sync_with(server, feed)
    assert len(server.subscribes) == subs and server.unsubscribes == 0 and server.connections == 1


def test_a_server_refusing_get_snapshot_gets_a_resubscribe_instead(server, feed):
    server.refuse_get_snapshot = True
    feed.start()
    assert wait_for(lambda: feed.live and server.deltas_sent > 10)
    subs = len(server.subscribes)
    server.gap()
    assert wait_for(lambda: feed.health.gaps >= 1 and len(server.subscribes) > subs)
    assert snapshot_requests(server) and server.unsubscribes >= 1
    assert "get_snapshot refused" in feed.health.detail
    assert in_sync_with(server, feed)


def test_a_subscription_buffer_overflow_is_a_gap_not_a_drop_or_an_ignore(server, feed):
    """Kalshi's error 25 says the reader fell behind and frames were lost: the books are
    rebuilt as after a sequence gap, on the same connection (it used to be a detail only)."""
    feed.start()
    assert wait_for(lambda: feed.live and server.deltas_sent > 10)
    server.error(25)
    assert wait_for(lambda: feed.health.gaps >= 1 and snapshot_requests(server))
    assert in_sync_with(server, feed)
    assert server.connections == 1 and feed.health.connects == 1


def test_kalshis_heartbeat_pings_are_answered_and_the_connection_stays(server, feed):
    """Kalshi pings every 10 s with the body ``heartbeat``; the websockets library answers each
    ping with a pong of the same body by itself (protocol.py, always on), so the feed has no code
    of its own for it: this pins that down. Many pings in a row: each answered, the same
    connection live throughout, books still in sync."""
    feed.start()
    assert wait_for(lambda: feed.live and server.deltas_sent > 10)
    assert server.heartbeat(times=20) == [b"heartbeat"] * 20
    assert feed.live and feed.health.connects == 1 and server.connections == 1
    assert in_sync_with(server, feed)


@pytest.mark.parametrize("kind", ["json", "delta", "deep"])
def test_a_malformed_frame_is_counted_and_the_books_rebuilt(server, feed, kind):
    feed.start()
    assert wait_for(lambda: feed.live and server.deltas_sent > 10)
    server.malformed(kind)
    assert wait_for(lambda: feed.health.malformed >= 1)
    assert "malformed" in feed.health.detail or feed.health.resyncs > 0
    assert in_sync_with(server, feed)  # the change the bad frame carried is not lost


def test_malformed_frames_that_keep_coming_do_not_resubscribe_in_a_hot_loop(server):
    """A server that keeps sending frames the client cannot apply: the first rebuild is at once,
    the next ones wait the feed's backoff. The client used to ask for every book's snapshot
    again at each bad frame, about 90 times a second in a desk soak (a fake whose 50 markets
    were quoted past $1), which a real exchange would throttle or ban."""
    feed = BookFeed(server.url, backoff_base=0.4, backoff_max=0.4)
    feed.watch(TICKERS)
    try:
        feed.start()
        assert wait_for(lambda: feed.live and server.deltas_sent > 10)
        subscribed = feed.health.resubscribes + feed.health.resyncs
        t0 = time.monotonic()
        for _ in range(40):  # a bad delta every ~25 ms for a second
            server.malformed("delta")
            time.sleep(0.025)
        assert wait_for(lambda: feed.health.malformed >= 3)
        rebuilt = feed.health.resubscribes + feed.health.resyncs - subscribed
        # at once, then one per backoff wait (up to 0.4 s, jittered): a handful in the second;
        # the old client rebuilt at every bad frame (about 40)
        assert 1 <= rebuilt < 20, (rebuilt, feed.health.malformed, time.monotonic() - t0)
        assert wait_for(lambda: len(feed.books()) == len(TICKERS), timeout=10)  # and it recovers
    finally:
        feed.stop()


def test_a_disconnect_reconnects_with_backoff_and_rebuilds(server, feed):
    feed.start()
    assert wait_for(lambda: feed.live and server.deltas_sent > 10)
    server.disconnect()
    assert wait_for(lambda: server.connections >= 2 and feed.live)
    assert feed.health.connects >= 2
    assert in_sync_with(server, feed)


def polled_rows(now):
    """What a REST poll hands over: a row per market with an older, shallower book."""
    return [
        RawRow(
            market={"ticker": t, "status": "open"},
            snapshot={
                "ticker": t,
                "ts": now - 4000,
                "yes_bid": "0.10",
                "yes_ask": "0.90",
                "volume": 7,
                "yes_bids": [["0.10", 1]],
                "no_bids": [["0.10", 1]],
            },
            payload={"rest": t},
        )
        for t in TICKERS
    ]


class Polled(Source):
    name = "kalshi"

    def __init__(self):
        self.now = 1_795_651_200_000

    def now_ms(self):
        return self.now

    def fetch(self):
        self.now += 1000
        return FetchBatch(rows=polled_rows(self.now))

    def close(self):
        pass


class PolledUnchanged(Polled):
    """Kalshi's listing asked for what changed since the last pass: the live books' markets did
    not change, so no row of theirs is in this fetch."""

    def fetch(self):
        self.now += 1000
        return FetchBatch(rows=[])


def test_the_live_book_count_is_the_books_held_not_the_rows_this_fetch(server):
    """At 1,000 markets the status line said "websocket | 0 live books" most of an hour (a desk
    soak) while the feed held 50 books in sync: it counted the rows this fetch served from
    them, and an unchanged market has no row in an incremental listing."""
    feed = BookFeed(server.url, backoff_base=0.02, backoff_max=0.1)
    src = LiveBookSource(PolledUnchanged(), feed, also=lambda: set(TICKERS))
    feed.start()
    try:
        src.fetch()  # asks the feed for the believed markets' books
        assert wait_for(lambda: feed.live and len(feed.books()) == 2)
        batch = src.fetch()
        assert batch.rows == []
        assert feed_status(src).label == "websocket (2 live books)"
    finally:
        feed.stop()


def test_no_websocket_means_polling_and_the_feed_comes_in_when_it_can(server):
    server.refuse = True  # a server that speaks only REST
    feed = BookFeed(server.url, backoff_base=0.02, backoff_max=0.1)
    src = LiveBookSource(Polled(), feed)
    feed.start()
    try:
        assert wait_for(lambda: "503" in feed.health.detail)
        assert not feed.live
        batch = src.fetch()  # trading does not wait: the polled rows, as they were
        assert [r.snapshot["yes_bid"] for r in batch.rows] == ["0.10", "0.10"]
        assert feed_status(src).label.startswith("polling (websocket ") and "503" in feed_status(src).label
        server.refuse = False
        assert wait_for(lambda: feed.live and len(feed.books()) == 2)
        batch = src.fetch()
        assert feed_status(src).label == "websocket (2 live books)"
        for r in batch.rows:
            v = validate_row(r.market, r.snapshot, src.now_ms())
            assert v.reason is None, v.reason
            # a fresh book (as old as its frames were when they arrived: ms on loopback), polled volume
            assert src.now_ms() - 1_000 < v.snapshot.ts <= src.now_ms() and v.snapshot.volume == 7
            assert v.snapshot.yes_bid != Decimal("0.10") and len(v.snapshot.yes_bids) >= 2
    finally:
        feed.stop()
    assert not feed._thread.is_alive()


def test_trade_prints_go_into_the_catalog(server, tmp_path):
    import pyarrow.dataset as ds

    from kakashi_tui.adapters.catalog import CatalogWriter, Recorder

    rec = Recorder(CatalogWriter(tmp_path / "c"))
    # the feed's clock a minute after the server's prints (a print dated ahead of its arrival is refused)
    feed = BookFeed(server.url, backoff_base=0.02, clock=lambda: 1_795_651_260_000)
    src = LiveBookSource(Polled(), feed, on_trades=rec.trades)
    feed.start()
    try:
        assert wait_for(lambda: feed.live)
        got = 0
        end = time.monotonic() + 10
        while got < 3 and time.monotonic() < end:
            src.fetch()
            got = rec.writer.pending_rows
            time.sleep(0.02)
    finally:
        feed.stop()
        rec.close()
    t = ds.dataset(tmp_path / "c" / "trades", format="parquet", partitioning="hive").to_table().to_pylist()
    assert len(t) >= 3 and all(r["ticker"] in TICKERS and r["count_hundredths"] == 300 and r["trade_id"] for r in t)
    assert {r["date"] for r in t} == {"2026-11-26"}  # the print's own time, UTC


def test_the_handshake_carries_the_signed_headers(server):
    server.require_key = True
    calls = []

    def headers():
        calls.append(1)
        return {"KALSHI-ACCESS-KEY": "key-id", "KALSHI-ACCESS-TIMESTAMP": "1", "KALSHI-ACCESS-SIGNATURE": "sig"}

    unsigned = BookFeed(server.url, backoff_base=0.02, backoff_max=0.05)
    signed = BookFeed(server.url, headers, backoff_base=0.02, backoff_max=0.05)
    for f in (unsigned, signed):
        f.watch(TICKERS)
        f.start()
    try:
        assert wait_for(lambda: signed.live and "401" in unsigned.health.detail)
        assert not unsigned.live and unsigned.health.connects == 0
        assert calls  # fresh headers per connection attempt
    finally:
        signed.stop()
        unsigned.stop()


def test_stop_ends_the_feed_promptly_even_while_backing_off():
    feed = BookFeed("ws://127.0.0.1:9/trade-api/ws/v2", backoff_base=30, backoff_max=30)  # nothing listens
    feed.start()
    assert wait_for(lambda: feed.health.state == "down")
    t0 = time.monotonic()
    feed.stop()
    assert time.monotonic() - t0 < 3 and not feed._thread.is_alive()


def test_with_a_key_the_kalshi_source_takes_its_books_from_the_websocket(tmp_path, monkeypatch):
    from kakashi_tui.adapters.kalshi.ws import ws_url_for
    from kakashi_tui.trading.runtime import Options, build_engine
    from tests.integration.loopback_ws import signed_loopback

    assert (
        ws_url_for("https://external-api.kalshi.com/trade-api/v2") == "wss://external-api-ws.kalshi.com/trade-api/ws/v2"
    )
    assert ws_url_for("http://127.0.0.1:8765/trade-api/v2") == "ws://127.0.0.1:8765/trade-api/ws/v2"
    tickers = ("KXFAKE-26JAN05-T00", "KXFAKE-26JAN05-T01")
    with signed_loopback(tmp_path, monkeypatch, tickers) as (ws, cfg):
        engine = build_engine(Options(source="kalshi", db=str(tmp_path / "k.db"), tickers=list(tickers)), cfg)
        src = engine.source
        try:
            assert isinstance(src, LiveBookSource)
            assert wait_for(lambda: src.feed.live and len(src.feed.books()) == 2)
            ws.paused = True
            assert wait_for(lambda: all({"yes": b.yes, "no": b.no} == ws.book(t) for t, b in src.feed.books().items()))
            before = src.now_ms()
            batch = src.fetch()
            after = src.now_ms()
            got = {r.snapshot["ticker"]: r.snapshot for r in batch.rows if r.snapshot is not None}
            assert set(got) == set(tickers) and feed_status(src).label == "websocket (2 live books)"
            for t in tickers:
                best = max(ws.book(t)["yes"])
                assert got[t]["yes_bid"] == Decimal(best) / 10_000 and before <= got[t]["ts"] <= after
        finally:
            src.close()
            engine.store.close()


def test_the_fake_quotes_every_market_inside_a_dollar_however_many():
    """The loopback server priced market i at $0.30 + $0.10 i: with 50 markets (the desk soak's
    believed set) most were quoted past $1, and every frame for them was malformed."""
    s = FakeKalshiWS(tuple(f"KXS-{i}" for i in range(50)))
    for t, b in s.books.items():
        assert b["yes"] and b["no"], t
        assert max(b["yes"]) + max(b["no"]) < 10_000 and min(b["yes"]) > 0 and min(b["no"]) > 0, t


def test_lifecycle_fee_updates_go_to_the_source_and_the_rest_is_read_and_kept_out_of_the_way(server):
    """With ``lifecycle``, the feed subscribes to ``market_lifecycle_v2``: its ``event_fee_update``
    frames are handed, as sent and in order, to ``on_fee_update`` (the source's fee state) in
    the engine's thread at the next fetch; other lifecycle messages (``determined`` with its
    settlement value, a new price grid) are read and counted, and none of them touches a book."""
    feed = BookFeed(server.url, backoff_base=0.02, backoff_max=0.1, lifecycle=True)
    got: list = []
    src = LiveBookSource(Polled(), feed, also=lambda: TICKERS, on_fee_update=got.append)
    fee = {"event_ticker": "KXA", "fee_type_override": "quadratic", "fee_multiplier_override": "0.5"}
    try:
        src.start()
        assert wait_for(lambda: feed.live and len(feed.books()) == len(TICKERS))
        assert any("market_lifecycle_v2" in (s.get("channels") or []) for s in server.subscribes)
        server.send_lifecycle(
            "market_lifecycle_v2", {"market_ticker": "KXA-1", "event_type": "determined", "settlement_value": "1.0000"}
        )
        server.send_lifecycle("event_fee_update", fee)
        server.send_lifecycle(
            "market_lifecycle_v2",
            {
                "market_ticker": "KXA-1",
                "event_type": "price_level_structure_updated",
                "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0010"}],
            },
        )
        server.send_lifecycle("market_lifecycle_v2", "not a body")  # counted as malformed, books kept
        assert wait_for(
            lambda: feed.health.lifecycle == 2 and feed.health.fee_updates == 1 and feed.health.malformed == 1
        )
        assert got == []  # not from the feed's thread
        src.fetch()
        assert [(f["type"], f["msg"]) for f in got] == [("event_fee_update", fee)]
        src.fetch()
        assert len(got) == 1  # handed over once
        assert feed.health.resyncs == 0 and feed.health.resubscribes == 1 and feed.health.gaps == 0
        assert in_sync_with(server, feed)
    finally:
        feed.stop()


def test_with_a_key_an_event_fee_update_reaches_the_fees_of_the_next_fetch(tmp_path, monkeypatch):
    """The runtime wires the feed's ``event_fee_update`` frames to ``KalshiSource.apply_ws``."""
    from kakashi_tui.trading.runtime import Options, build_engine
    from tests.integration.loopback_ws import signed_loopback

    tickers = ("KXFAKE-26JAN05-T00", "KXFAKE-26JAN05-T01")
    with signed_loopback(tmp_path, monkeypatch, tickers) as (ws, cfg):
        engine = build_engine(Options(source="kalshi", db=str(tmp_path / "k.db"), tickers=list(tickers)), cfg)
        src = engine.source
        try:
            assert isinstance(src, LiveBookSource)
            assert wait_for(lambda: src.feed.live and len(src.feed.books()) == 2)

            def fee(batch):
                row = next(r for r in batch.rows if r.market.get("ticker") == tickers[0])
                return row.market["fee_type"], row.market["fee_multiplier"]

            assert fee(src.fetch()) == ("quadratic", "1")
            ws.send_lifecycle(
                "event_fee_update",
                {"event_ticker": "KXFAKE-26JAN05", "fee_type_override": "flat", "fee_multiplier_override": "0.25"},
            )
            assert wait_for(lambda: src.feed.health.fee_updates == 1)
            assert fee(src.fetch()) == ("flat", "0.25")
        finally:
            src.close()
            engine.store.close()
