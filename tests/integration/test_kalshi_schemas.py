"""Kalshi's typed wire schemas (adapters/kalshi/schemas.py): every payload the loopback servers
send parses; one bad element is one rejected row with its reason; dollar strings and fractional
counts become integer units exactly."""

import asyncio
import json
from decimal import Decimal

import httpx
import pytest

from kakashi_tui.adapters.kalshi import schemas as s
from kakashi_tui.adapters.kalshi.client import KalshiClient
from kakashi_tui.adapters.kalshi.source import KalshiSource
from kakashi_tui.adapters.kalshi.wire import convert
from kakashi_tui.adapters.kalshi.ws import Book, Malformed
from kakashi_tui.core.validate import validate_row
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS

NOW_MS = 1_767_312_000_000


@pytest.mark.parametrize(("legacy", "spec"), [(False, "3.34"), (False, "3.20"), (True, "3.20")])
def test_every_rest_payload_the_loopback_server_sends_parses(legacy, spec):
    st = FakeKalshi.with_markets(6, legacy=legacy, require_signature=False, page_size=4, spec=spec)
    st.lifecycle_zoo()
    st.markets[0].archived = True  # served only by GET /historical/markets/{ticker}
    with FakeKalshiServer(st) as srv, httpx.Client(base_url=srv.base_url) as http:

        def get(path, params=None):
            r = http.get(path, params=params)
            assert r.status_code == 200, (path, r.text)
            return json.loads(r.content, parse_float=Decimal)

        markets, cursor = [], None
        while True:
            page = s.parse(s.MarketsPage, get("/markets", {"limit": 4, **({"cursor": cursor} if cursor else {})}))
            markets += [s.parse_market(m) for m in page.markets]
            if not page.cursor:
                break
            cursor = page.cursor
        live = [m for m in st.markets if not m.archived]
        assert [m.ticker for m in markets] == [m.ticker for m in live]
        for m in markets:
            assert m.status in s.LIFECYCLE and isinstance(m.close_time, int)
            assert isinstance(m.volume_fp, str) and Decimal(m.volume_fp) >= 0
        one = live[0].ticker
        assert s.parse_market(get(f"/markets/{one}")["market"]).ticker == one
        old = st.markets[0].ticker
        assert s.parse_market(get(f"/historical/markets/{old}")["market"]).ticker == old
        book = s.parse_book(get(f"/markets/{one}/orderbook")["orderbook_fp"])
        assert book.yes_dollars and book.no_dollars
        assert Decimal(book.yes_dollars[0][0]) > Decimal(book.yes_dollars[-1][0])  # best first
        batch = s.parse(s.BookList, get("/markets/orderbooks", [("tickers", m.ticker) for m in live[:5]]))
        entries = [s.BookEntry.model_validate(e) for e in batch.orderbooks]
        assert [e.ticker for e in entries] == [m.ticker for m in live[:5]]
        for e in entries:
            s.parse_book(e.book())
        events = s.parse(s.EventsPage, get("/events", {"limit": 200}))
        assert events.events and all(s.parse(s.Event, e).series_ticker for e in events.events)
        assert s.parse(s.Event, get("/events/KXFAKE-26JAN05")["event"]).series_ticker == "KXFAKE"
        series = [s.parse(s.Series, x) for x in s.parse(s.SeriesList, get("/series")).series]
        fees = {x.ticker: (x.fee_type, x.fee_multiplier) for x in series}
        assert fees == {
            "KXFAKE": ("quadratic", "1"),
            "KXZOO": ("quadratic_with_maker_fees", "0.5"),
            "KXSCAL": ("flat", "2"),
        }
        assert s.parse(s.Series, get("/series/KXZOO")["series"]).fee_multiplier == "0.5"


@pytest.mark.parametrize("spec", ["3.34", "3.20"])
def test_every_websocket_frame_the_loopback_server_sends_parses(spec):
    server = FakeKalshiWS(("KXA-1", "KXB-2"), interval=0.002, spec=spec)
    server.start()
    server.send_trade(trade_id="sent-by-test")
    frames: list[str] = []

    async def listen():
        from websockets.asyncio.client import connect

        async with connect(server.url, proxy=None) as ws:
            await ws.send("not json")  # answered with an error frame
            await ws.send(json.dumps({"id": 1, "cmd": "subscribe", "params": {"channels": ["trade"]}}))
            await ws.send(
                json.dumps(
                    {
                        "id": 2,
                        "cmd": "subscribe",
                        "params": {"channels": ["orderbook_delta"], "market_tickers": ["KXA-1", "KXB-2"]},
                    }
                )
            )
            kinds: set[str] = set()
            while not {"error", "subscribed", "orderbook_snapshot", "orderbook_delta", "trade"} <= kinds:
                frame = await asyncio.wait_for(ws.recv(), timeout=10)
                frames.append(frame)
                kinds.add(json.loads(frame)["type"])
            await ws.send(json.dumps({"id": 3, "cmd": "unsubscribe", "params": {"sids": [2]}}))
            while json.loads(frame)["type"] != "unsubscribed":
                frame = await asyncio.wait_for(ws.recv(), timeout=10)
                frames.append(frame)

    try:
        asyncio.run(listen())
    finally:
        server.stop()
    seen: dict[str, int] = {}
    for frame in frames:
        env = s.parse(s.WsMessage, json.loads(frame))
        assert env.type is not None
        seen[env.type] = seen.get(env.type, 0) + 1
        body = {
            "subscribed": s.Subscribed,
            "error": s.WsError,
            "orderbook_snapshot": s.BookSnapshot,
            "orderbook_delta": s.BookDelta,
            "trade": s.TradePrint,
        }.get(env.type)
        if body is not None:
            parsed = s.parse(body, env.msg)
            if env.type == "orderbook_snapshot":
                assert parsed.yes_dollars_fp or parsed.no_dollars_fp
                assert all(
                    0 < p < 10_000 and q > 0
                    for side in (parsed.yes_dollars_fp, parsed.no_dollars_fp)
                    for p, q in side.items()
                )
            if env.type == "trade":
                assert parsed.count_fp == 300 and isinstance(parsed.ts, int)
        if env.type in ("orderbook_snapshot", "orderbook_delta"):
            assert s.serial("seq", env.seq) >= 1 and s.serial("sid", env.sid) >= 1
    assert set(seen) == {"error", "subscribed", "orderbook_snapshot", "orderbook_delta", "trade", "unsubscribed"}


def test_a_ticker_message_parses_and_later_spec_fields_are_read_leniently():
    t = s.parse(
        s.TickerMsg,
        {"market_ticker": "KXA-1", "price_dollars": "0.4200", "yes_bid_size_fp": "12.50", "ts": 1, "ts_ms": 1000},
    )
    assert t.yes_bid_size_fp == "12.50" and t.ts_ms == 1000
    st = s.ExchangeStatus.model_validate(
        {
            "exchange_active": True,
            "trading_active": True,
            "exchange_index_statuses": [{"exchange_index": 1, "trading_active": False}, "junk"],
        }
    )
    assert [(x.exchange_index, x.trading_active) for x in st.shards()] == [(1, False)]
    tr = s.parse(
        s.Trade,
        {
            "ticker": "KXA-1",
            "yes_price_dollars": "0.0150",
            "count_fp": "12.50",
            "taker_outcome_side": "yes",
            "is_block_trade": True,
        },
    )
    assert (tr.yes_price_dollars, tr.count_fp, tr.outcome_side(), tr.is_block_trade) == (150, 1250, "yes", True)


def market(ticker="KXA-26JAN05-T1", **kw):
    m = {
        "ticker": ticker,
        "event_ticker": "KXA-26JAN05",
        "status": "active",
        "title": "A market",
        "yes_sub_title": "Above 40",
        "open_time": "2026-01-01T00:00:00Z",
        "close_time": "2026-01-05T00:00:00Z",
        "yes_bid_dollars": "0.4200",
        "yes_ask_dollars": "0.4400",
        "last_price_dollars": "0.4300",
        "volume_fp": "100.00",
    }
    m.update(kw)
    return m


@pytest.mark.parametrize(
    "bad,reason",
    [
        ({"close_time": "tomorrow"}, "close_time is not an RFC 3339 time (tomorrow)"),
        ({"volume_fp": "lots"}, "volume_fp is not a count (lots)"),
        ({"title": ["x"]}, "title is not text (got list)"),
        ({"yes_bid": 41}, "inconsistent yes_bid: legacy 41 vs yes_bid_dollars 0.4200"),
        ({"status": "\x1b[31m"}, "status is not a word Kalshi uses (\\x1b[31m)"),
    ],
)
def test_a_malformed_market_in_a_page_is_one_rejected_row_with_its_reason(bad, reason):
    page = [market("KXA-1"), market("KXA-2", **bad), market("KXA-3")]
    body = json.dumps({"markets": page, "cursor": ""}).encode()

    def answer(req):
        if req.url.path.endswith("/markets"):
            return httpx.Response(200, content=body)
        if req.url.path.endswith("/series"):
            return httpx.Response(200, json={"series": []})
        return httpx.Response(200, json={"events": [], "cursor": ""})

    c = KalshiClient("https://kalshi.test/trade-api/v2", transport=httpx.MockTransport(answer), sleep=lambda s: None)
    b = KalshiSource(c).fetch()
    assert not b.errors
    assert [r.market["ticker"] for r in b.rows if r.reason is None] == ["KXA-1", "KXA-3"]
    rejected = [r for r in b.rows if r.reason is not None]
    assert len(rejected) == 1 and rejected[0].reason == reason
    assert rejected[0].market == {"ticker": "KXA-2"} and rejected[0].payload["ticker"] == "KXA-2"


def test_the_first_bad_field_names_the_reason():
    with pytest.raises(s.RowError, match="^event_ticker has a character"):
        s.parse_market(market(event_ticker="E/x", close_time="soon", volume_fp="lots"))
    with pytest.raises(s.RowError, match="^market is not an object"):
        s.parse_market(["KXA-1"])


def test_a_malformed_later_spec_field_never_rejects_a_row():
    m = market(settlement_bounds_type={"x": 1}, exchange_index="one", price_ranges="steps", liquidity_dollars=None)
    row = convert(m, NOW_MS)
    assert row.reason is None and row.snapshot["yes_bid"] == "0.4200"
    p = s.parse(  # a later spec's fields on a print, malformed
        s.TradePrint,
        {
            "market_ticker": "KXA-1",
            "yes_price_dollars": "0.4200",
            "count_fp": "1.00",
            "ts_ms": "x",
        },
    )
    assert p.ts_ms is None and p.is_block_trade is None and p.count_fp == 100
    # is_block_trade is acted on (a block print is never book liquidity): one it cannot read
    # refuses the print, which might have been a block print
    for bad in (0, "no", "true", 1):
        with pytest.raises(s.RowError, match="^is_block_trade .* is not true or false"):
            s.parse(
                s.TradePrint,
                {"market_ticker": "KXA-1", "yes_price_dollars": "0.42", "count_fp": "1.00", "is_block_trade": bad},
            )


def test_dollar_strings_and_fractional_counts_become_integer_units_exactly():
    assert s.price_cc("0.0150") == 150 and s.price_cc("0.9930") == 9930 and s.price_cc("0.42") == 4200
    assert (
        s.count_hundredths("12.50") == 1250
        and s.count_hundredths("0.01") == 1
        and s.count_hundredths("-3.25", signed=True) == -325
    )
    for bad in ("0.01501", "1.0000", "0", "-0.0100", "NaN", "Infinity", "1e999999", 0.015, None):
        with pytest.raises(s.RowError):
            s.price_cc(bad)
    for bad in ("12.501", "-1.00", "1" + "0" * 30, "Infinity", 12.5):
        with pytest.raises(s.RowError):
            s.count_hundredths(bad)
    # The WebSocket: levels and deltas in integer units at the edge.
    b = Book.from_rules({"market_ticker": "KXA-1", "yes_dollars_fp": [["0.0150", "12.50"]], "no_dollars_fp": []}, 1)
    assert b.yes == {150: 1250} and b.no == {}
    assert b.apply({"side": "yes", "price_dollars": "0.0150", "delta_fp": "-0.50"}, 2) == ("yes", 150, -50)
    for price, count in (("0.01501", "1.00"), ("1e999999", "1.00"), ("0.0150", "1e999999")):
        with pytest.raises(Malformed, match="bad (price|count)"):  # a frame refused, not the connection lost
            b.apply({"side": "yes", "price_dollars": price, "delta_fp": count}, 3)
    # REST: the text as sent reaches validation, which makes it centicents and hundredths once.
    row = convert(market(yes_bid_dollars="0.0150", yes_ask_dollars="0.0170", volume_fp="12.50"), NOW_MS)
    assert row.snapshot["yes_bid"] == "0.0150" and row.snapshot["volume"] == "12.50"
    v = validate_row(row.market, row.snapshot, NOW_MS)
    assert v.reason is None
    assert v.snapshot.prices_cc[:2] == (150, 170) and v.snapshot.volume_hundredths == 1250
    assert v.snapshot.yes_bid == Decimal("0.0150")
